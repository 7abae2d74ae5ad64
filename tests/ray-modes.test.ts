// `portico serve --ray-head` / `--ray-worker ADDRESS`: the argv they produce (--dry-run), their
// settings, `ray status` parsing, and the start path against a SIMULATION: fake `ray`, `vllm` and
// `nvidia-smi` executables first on PATH that record their argv and answer like the real ones
// (no Ray, no GPU, no vLLM exists on this machine). All traffic is on 127.0.0.1.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadSettings } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { main } from '../serve/main.js';
import { runRayHead } from '../serve/serve.js';
import { headAddress, parseRayStatus, rayStartCommand, runRayWorker } from '../launcher/ray.js';
import { freePort } from '../nginx/testing.js';
import { until } from './helpers/poll.js';

// `ray status` as Ray 2.x prints it (node ids shortened).
const RAY_STATUS_2_NODES = `======== Autoscaler status: 2026-11-22 00:00:00.000000 ========
Node status
---------------------------------------------------------------
Active:
 1 node_5f0e2c1d9a
 1 node_8b7d3e4f21
Pending:
 (no pending nodes)
Recent failures:
 (no failures)

Resources
---------------------------------------------------------------
Usage:
 0.0/208.0 CPU
 0.0/16.0 GPU
 0B/1.86TiB memory
 0B/372.53GiB object_store_memory

Demands:
 (no resource demands)
`;

let dir: string;
let bin: string;
let record: string;

/** The simulation's executables. Each appends `{"cmd": ..., "args": [...]}` to record.jsonl. */
function writeFakes(): void {
  // The record sits next to bin/: vLLM is spawned with the launcher's own process env, not the test's.
  const rec = `const fs = require('node:fs'); const path = require('node:path'); const SIM = path.join(__dirname, '..');
fs.appendFileSync(path.join(SIM, 'record.jsonl'), JSON.stringify({ cmd: path.basename(process.argv[1]), args: process.argv.slice(2) }) + '\\n');`;
  const fake = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/usr/bin/env node\n// SIMULATION of \`${name}\` for tests/ray-modes.test.ts.\n${rec}\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  fake(
    'ray',
    `const [verb, ...rest] = process.argv.slice(2);
const state = path.join(SIM, 'record.jsonl.status-calls');
if (verb === 'start' && rest.includes('--head')) { console.log('Ray runtime started.'); process.exit(0); }
if (verb === 'start' && rest.includes('--block')) {
  console.log('Ray runtime started (worker).');
  const tries = path.join(SIM, 'record.jsonl.worker-starts');
  const n = fs.existsSync(tries) ? Number(fs.readFileSync(tries, 'utf8')) + 1 : 1;
  fs.writeFileSync(tries, String(n));
  if (process.env.SIM_RAY_BLOCK_EXIT) setTimeout(() => process.exit(Number(process.env.SIM_RAY_BLOCK_EXIT)), 200);
  else if (process.env.SIM_RAY_HEAD_LATE && n === 1) { console.error('Failed to connect to GCS'); process.exit(1); }
  else { process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000); }
} else if (verb === 'status') {
  // The first call sees only the head; later calls see SIM_RAY_NODES nodes.
  const n = fs.existsSync(state) ? Number(fs.readFileSync(state, 'utf8')) + 1 : 1;
  fs.writeFileSync(state, String(n));
  const nodes = n === 1 ? 1 : Number(process.env.SIM_RAY_NODES ?? '2');
  const lines = Array.from({ length: nodes }, (_, i) => ' 1 node_' + String(i).padStart(10, 'a'));
  console.log('======== Autoscaler status ========\\nNode status\\n----\\nActive:\\n' + lines.join('\\n') + '\\nPending:\\n (no pending nodes)\\nRecent failures:\\n (no failures)\\n\\nResources\\n----\\nUsage:\\n 0.0/' + (8 * nodes) + '.0 GPU\\n');
} else if (verb === 'stop') { console.log('Stopped all Ray processes.'); }`,
  );
  fake(
    'vllm',
    `const args = process.argv.slice(2);
const port = Number(args[args.indexOf('--port') + 1]);
const name = args[args.indexOf('--served-model-name') + 1];
const http = require('node:http');
http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  if (req.url === '/health') return res.end('{}');
  if (req.url === '/v1/models') return res.end(JSON.stringify({ object: 'list', data: [{ id: name, object: 'model', max_model_len: 4096 }] }));
  res.statusCode = 404; res.end('{}');
}).listen(port, '127.0.0.1');
const exitFile = path.join(SIM, 'sim-vllm-exit-ms');
if (fs.existsSync(exitFile)) setTimeout(() => process.exit(3), Number(fs.readFileSync(exitFile, 'utf8')));
process.on('SIGTERM', () => process.exit(0));`,
  );
  fake(
    'nvidia-smi',
    `if (process.argv.includes('-L')) { for (let i = 0; i < 8; i++) console.log('GPU ' + i + ': NVIDIA H100 80GB HBM3 (UUID: GPU-0000000' + i + ')'); }
else { for (let i = 0; i < 8; i++) console.log(i + ', NVIDIA H100 80GB HBM3, 0x233010DE, 81559, 9.0'); }`,
  );
}

function records(): { cmd: string; args: string[] }[] {
  try {
    return readFileSync(record, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { cmd: string; args: string[] });
  } catch {
    return [];
  }
}

/** PATH with the simulation first (and node still reachable). */
const simPath = () => `${bin}${delimiter}${process.env.PATH ?? ''}`;

function baseEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: simPath(), HOME: dir, NIM_CACHE_PATH: join(dir, 'cache'), ...extra };
}

/** Run the CLI in-process; return its exit code and what it printed. */
async function cli(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((stdout += String(c)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((stderr += String(c)), true));
  try {
    const code = await main(argv, env);
    return { code, stdout, stderr };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'portico-ray-'));
  bin = join(dir, 'bin');
  record = join(dir, 'record.jsonl');
  mkdirSync(bin);
  writeFakes();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ray settings and commands (pure)', () => {
  it('takes the group size from NIM_NUM_COMPUTE_NODES, else LeaderWorkerSet’s LWS_GROUP_SIZE', () => {
    expect(loadSettings({ LWS_GROUP_SIZE: '3' }).ray.nodes).toBe(3);
    expect(loadSettings({ LWS_GROUP_SIZE: '3', NIM_NUM_COMPUTE_NODES: '2' }).ray.nodes).toBe(2);
    expect(loadSettings({}).ray).toEqual({ nodes: 1, gpusPerNode: undefined, port: 6379, startTimeoutS: 600 });
    expect(() => loadSettings({ NIM_NUM_COMPUTE_NODES: 'two' })).toThrow(/^NIM_NUM_COMPUTE_NODES="two": expected a whole number/);
    expect(() => loadSettings({ NIM_RAY_PORT: '70000' })).toThrow(/NIM_RAY_PORT/);
  });

  it('normalizes the head address a worker joins', () => {
    expect(headAddress('leader-0.portico', 6379)).toBe('leader-0.portico:6379');
    expect(headAddress('10.0.0.5:7000', 6379)).toBe('10.0.0.5:7000');
    expect(headAddress('fd00::1', 6379)).toBe('[fd00::1]:6379');
    expect(headAddress('[fd00::1]:7000', 6379)).toBe('[fd00::1]:7000');
    expect(() => headAddress('', 6379)).toThrow(/--ray-worker/);
    expect(() => headAddress('--dry-run', 6379)).toThrow(/--ray-worker/);
  });

  it('builds `ray start` for head and worker', () => {
    const rs = { nodes: 2, gpusPerNode: 8, port: 6379, startTimeoutS: 600 };
    expect(rayStartCommand({ role: 'head' }, rs).args).toEqual(['start', '--head', '--port=6379', '--disable-usage-stats', '--num-gpus=8']);
    expect(rayStartCommand({ role: 'worker', address: 'lead' }, { ...rs, gpusPerNode: undefined }).args).toEqual([
      'start',
      '--address=lead:6379',
      '--block',
      '--disable-usage-stats',
    ]);
  });

  it('reads active nodes and total GPUs from `ray status`', () => {
    expect(parseRayStatus(RAY_STATUS_2_NODES)).toEqual({ nodes: 2, gpus: 16 });
    expect(parseRayStatus('Node status\nActive:\n (no active nodes)\nPending:\n 1 node_x\n')).toEqual({ nodes: 0, gpus: undefined });
  });
});

describe('portico serve --ray-head / --ray-worker --dry-run', () => {
  const model = { NIM_MODEL_NAME: 'hf://acme/giant-405b-instruct', NIM_NUM_COMPUTE_NODES: '2' };

  it('--ray-head prints ray start, the cluster wait and vLLM with the Ray backend, tp within nodes × pp across', async () => {
    const r = await cli(['serve', '--ray-head', '--dry-run'], baseEnv(model));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      profile: { tags: Record<string, string> };
      engine: { command: string; args: string[] };
      ray: { role: string; start: { command: string; args: string[] }; status: { args: string[] }; nodes: number; tp: number; pp: number };
    };
    // The simulated nvidia-smi shows 8 GPUs on this node: tp 8, pp 2 (nodes).
    expect(out.ray).toMatchObject({ role: 'head', nodes: 2, tp: 8, pp: 2 });
    expect(out.ray.start.command).toBe(join(bin, 'ray'));
    expect(out.ray.start.args).toEqual(['start', '--head', '--port=6379', '--disable-usage-stats']);
    expect(out.ray.status.args).toEqual(['status', '--address=127.0.0.1:6379']);
    expect(out.engine.command).toBe(join(bin, 'vllm'));
    const a = out.engine.args;
    expect(a.slice(0, 2)).toEqual(['serve', 'acme/giant-405b-instruct']);
    expect(a[a.indexOf('--tensor-parallel-size') + 1]).toBe('8');
    expect(a[a.indexOf('--pipeline-parallel-size') + 1]).toBe('2');
    expect(a[a.indexOf('--distributed-executor-backend') + 1]).toBe('ray');
    expect(a[a.indexOf('--host') + 1]).toBe('127.0.0.1');
    expect(out.profile.tags).toMatchObject({ llm_engine: 'vllm', tp: '8', pp: '2', nodes: '2', distributed_executor_backend: 'ray' });
  });

  it('NIM_TENSOR_PARALLEL_SIZE / NIM_PIPELINE_PARALLEL_SIZE and NIM_GPUS_PER_NODE override the defaults', async () => {
    const r = await cli(
      ['serve', '--ray-head', '--dry-run'],
      baseEnv({ ...model, NIM_GPUS_PER_NODE: '4', NIM_PIPELINE_PARALLEL_SIZE: '1', NIM_TENSOR_PARALLEL_SIZE: '8', NIM_RAY_PORT: '7000', NIM_PASSTHROUGH_ARGS: '--enforce-eager' }),
    );
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { engine: { args: string[] }; ray: { tp: number; pp: number; start: { args: string[] } } };
    expect(out.ray).toMatchObject({ tp: 8, pp: 1 });
    expect(out.ray.start.args).toContain('--port=7000');
    expect(out.ray.start.args).toContain('--num-gpus=4');
    expect(out.engine.args.at(-1)).toBe('--enforce-eager');
  });

  it('--ray-worker ADDRESS prints the blocking `ray start --address`', async () => {
    const r = await cli(['serve', '--ray-worker', 'portico-0.portico.default', '--dry-run'], baseEnv());
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      ray: { role: 'worker', start: { command: join(bin, 'ray'), args: ['start', '--address=portico-0.portico.default:6379', '--block', '--disable-usage-stats'] } },
    });
  });

  it('refuses both modes at once, a missing model, a missing address and a bad setting, with one line', async () => {
    const both = await cli(['serve', '--ray-head', '--ray-worker', 'x', '--dry-run'], baseEnv(model));
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--ray-head and --ray-worker exclude each other/);
    const noModel = await cli(['serve', '--ray-head', '--dry-run'], baseEnv());
    expect(noModel.code).toBe(2);
    expect(noModel.stderr).toMatch(/^portico: --ray-head: set NIM_MODEL_PATH/);
    const noAddr = await cli(['serve', '--ray-worker'], baseEnv());
    expect(noAddr.code).toBe(2);
    const bad = await cli(['serve', '--ray-head', '--dry-run'], baseEnv({ ...model, NIM_CLUSTER_START_TIMEOUT: 'soon' }));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^portico: invalid setting NIM_CLUSTER_START_TIMEOUT="soon": expected a whole number/);
  });
});

describe('the start path against the simulation', () => {
  const quietLog = () => {
    let out = '';
    const sink = new Writable({ write: (c: Buffer, _e, cb) => ((out += c.toString()), cb()) });
    return { log: createLogger({ logLevel: 'info', jsonlLogging: false }, sink), text: () => out };
  };

  const waitReady = (url: string, log: () => string): Promise<void> =>
    until(() => fetch(`${url}/v1/health/ready`).then((r) => r.status === 200), 'the leader to become ready', { withinMs: 10_000, everyMs: 50, detail: log });

  it('leader: ray start --head, waits for the workers, runs vLLM over Ray, serves; shutdown stops vLLM then Ray', async () => {
    rmSync(record, { force: true });
    rmSync(`${record}.status-calls`, { force: true });
    const port = await freePort();
    const env = baseEnv({ NIM_MODEL_NAME: 'acme/giant', NIM_SERVED_MODEL_NAME: 'giant', NIM_SERVER_HOST: '127.0.0.1', NIM_SERVER_PORT: String(port) });
    const settings = loadSettings({ ...env, NIM_NUM_COMPUTE_NODES: '2' });
    const { log, text } = quietLog();
    const running = await runRayHead(settings, log, env, { pollIntervalMs: 20 });
    await waitReady(`http://127.0.0.1:${port}`, text);
    const models = (await (await fetch(`http://127.0.0.1:${port}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data[0]!.id).toBe('giant');

    const calls = records().filter((c) => c.cmd !== 'nvidia-smi');
    expect(calls[0]).toEqual({ cmd: 'ray', args: ['start', '--head', '--port=6379', '--disable-usage-stats'] });
    const statusCalls = calls.filter((c) => c.cmd === 'ray' && c.args[0] === 'status');
    expect(statusCalls.length).toBeGreaterThanOrEqual(2); // waited until the second node joined
    const vllm = calls.find((c) => c.cmd === 'vllm')!;
    expect(vllm.args).toEqual(expect.arrayContaining(['--distributed-executor-backend', 'ray']));
    expect(vllm.args[vllm.args.indexOf('--tensor-parallel-size') + 1]).toBe('8');
    expect(vllm.args[vllm.args.indexOf('--pipeline-parallel-size') + 1]).toBe('2');
    // vLLM starts only after the cluster is complete.
    expect(calls.indexOf(vllm)).toBeGreaterThan(calls.indexOf(statusCalls[1]!));

    expect(await running.shutdown('test')).toBe(0);
    expect(await running.done).toBe(0);
    expect(records().at(-1)).toEqual({ cmd: 'ray', args: ['stop'] });
    expect(text()).toContain('Ray cluster ready: 2 nodes, 16 GPUs');
  });

  it('leader: vLLM dying ends serving non-zero and stops Ray', async () => {
    rmSync(record, { force: true });
    rmSync(`${record}.status-calls`, { force: true });
    const port = await freePort();
    const env = baseEnv({ NIM_MODEL_NAME: 'acme/giant', NIM_SERVER_HOST: '127.0.0.1', NIM_SERVER_PORT: String(port) });
    writeFileSync(join(dir, 'sim-vllm-exit-ms'), '300');
    const { log } = quietLog();
    try {
      const running = await runRayHead(loadSettings({ ...env, NIM_NUM_COMPUTE_NODES: '2' }), log, env, { pollIntervalMs: 20 });
      expect(await running.done).toBe(3);
    } finally {
      rmSync(join(dir, 'sim-vllm-exit-ms'), { force: true });
    }
    expect(records().at(-1)).toEqual({ cmd: 'ray', args: ['stop'] });
  });

  it('leader: gives up with exit 1 when the workers do not join within NIM_CLUSTER_START_TIMEOUT', async () => {
    rmSync(record, { force: true });
    rmSync(`${record}.status-calls`, { force: true });
    const port = await freePort();
    const env = baseEnv({ NIM_MODEL_NAME: 'acme/giant', NIM_SERVER_HOST: '127.0.0.1', NIM_SERVER_PORT: String(port), SIM_RAY_NODES: '1' });
    const { log, text } = quietLog();
    const running = await runRayHead(loadSettings({ ...env, NIM_NUM_COMPUTE_NODES: '2', NIM_CLUSTER_START_TIMEOUT: '1' }), log, env, { pollIntervalMs: 100 });
    expect(await running.done).toBe(1);
    expect(text()).toMatch(/the Ray cluster has 1 of 2 nodes after 1 s/);
    expect(records().some((c) => c.cmd === 'vllm')).toBe(false);
    expect(records().at(-1)).toEqual({ cmd: 'ray', args: ['stop'] });
  });

  it('worker: joins with a blocking ray start and leaves on shutdown', async () => {
    rmSync(record, { force: true });
    rmSync(`${record}.worker-starts`, { force: true });
    const { log } = quietLog();
    const running = runRayWorker('leader-0.portico', loadSettings({}).ray, log, baseEnv());
    for (let i = 0; i < 100 && !records().length; i++) await new Promise((r) => setTimeout(r, 50));
    expect(records()[0]).toEqual({ cmd: 'ray', args: ['start', '--address=leader-0.portico:6379', '--block', '--disable-usage-stats'] });
    expect(await running.shutdown('test')).toBe(0);
    expect(records().at(-1)).toEqual({ cmd: 'ray', args: ['stop'] });
  });

  it('worker: retries while the head is not up yet (within NIM_CLUSTER_START_TIMEOUT)', async () => {
    rmSync(record, { force: true });
    rmSync(`${record}.worker-starts`, { force: true });
    const { log, text } = quietLog();
    const running = runRayWorker('leader-0.portico', loadSettings({}).ray, log, baseEnv({ SIM_RAY_HEAD_LATE: '1' }), { retryMs: 20 });
    const starts = () => records().filter((c) => c.args[0] === 'start').length;
    for (let i = 0; i < 100 && starts() < 2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(starts()).toBe(2);
    expect(text()).toMatch(/the head may not be up yet; retrying/);
    expect(await running.shutdown('test')).toBe(0);
  });

  it('worker: exits non-zero when Ray stops under it after the start window (the head went away)', async () => {
    rmSync(record, { force: true });
    const { log, text } = quietLog();
    const running = runRayWorker('leader-0.portico', loadSettings({ NIM_CLUSTER_START_TIMEOUT: '1' }).ray, log, baseEnv({ SIM_RAY_BLOCK_EXIT: '5' }), { retryMs: 100 });
    expect(await running.done).toBe(5);
    expect(text()).toMatch(/ray exited \(code 5\): the head is gone or unreachable/);
    expect(records().at(-1)).toEqual({ cmd: 'ray', args: ['stop'] });
  });

  it('worker: fails at once when ray is not installed', async () => {
    const { log } = quietLog();
    const running = runRayWorker('leader-0.portico', loadSettings({}).ray, log, { PATH: '/nonexistent' });
    expect(await running.done).toBe(127);
  });
});
