// Several models on simulated GPU machines: a fake `nvidia-smi` (and fake `vllm` / `trtllm-serve`
// that only need to exist) first on PATH, a models file, and the real CLI entry (`serve --dry-run`,
// `list-model-profiles`) run in-process. Each engine's argv and CUDA_VISIBLE_DEVICES come from the
// joint plan (launcher/select-many.ts); a bad file or a plan that cannot fit stops with one line.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import YAML from 'yaml';
import { STARTUP_ERRORS } from '../core/startup-errors.js';
import { main } from '../serve/main.js';
import { ROOT } from './helpers/stack.js';

const CONTRACT_QUERY = '--query-gpu=index,name,pci.device_id,memory.total,compute_cap';
const GPU = {
  H100: 'NVIDIA H100 80GB HBM3, 0x233010DE, 81559, 9.0',
  L40S: 'NVIDIA L40S, 0x26B910DE, 46068, 8.9',
};
const manifest = (f: string) => join(ROOT, 'manifests', f);

let dir: string;
let n = 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'portico-models-sim-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A simulated machine with `count` GPUs of one kind; returns its environment. */
function machine(count: number, kind: keyof typeof GPU, models: string): NodeJS.ProcessEnv {
  const root = join(dir, `m${n++}`);
  const bin = join(root, 'bin');
  mkdirSync(bin, { recursive: true });
  const csv = Array.from({ length: count }, (_, i) => `${i}, ${GPU[kind]}`).join('\n');
  writeFileSync(join(root, 'gpus.csv'), `${csv}\n`);
  const exe = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  exe('nvidia-smi', `case "$1" in\n  ${CONTRACT_QUERY}) cat '${join(root, 'gpus.csv')}' ;;\n  *) exit 0 ;;\nesac`);
  // Dry runs spawn nothing: the engines only need to be found on PATH.
  exe('vllm', 'exit 0');
  exe('trtllm-serve', 'exit 0');
  const file = join(root, 'models.yaml');
  writeFileSync(file, models);
  return { PATH: `${bin}:/usr/bin:/bin`, HOME: root, NIM_CACHE_PATH: join(root, 'cache'), NIM_LOG_LEVEL: 'ERROR', NIM_MODELS_FILE: file };
}

async function cli(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((stdout += String(c)), true));
  const w = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((stderr += String(c)), true));
  try {
    return { code: await main(argv, env), stdout, stderr };
  } finally {
    o.mockRestore();
    w.mockRestore();
  }
}

interface DryModel {
  name: string;
  task: string;
  profile: { name: string };
  engine: { command: string; args: string[]; env: Record<string, string> };
  cuda_visible_devices?: string;
  gpu_memory_utilization?: number;
}
const dryRun = async (env: NodeJS.ProcessEnv) => {
  const r = await cli(['serve', '--dry-run'], env);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as { mode: string; models: DryModel[]; profile: unknown; engine: unknown };
};
const argAfter = (args: string[], flag: string) => args[args.indexOf(flag) + 1];

describe('simulation: several models from NIM_MODELS_FILE, serve --dry-run', () => {
  it('simulation: 8× H100 runs a 70B chat model, a vision model and an embedding model, each engine on its own GPUs', async () => {
    const env = machine(
      8,
      'H100',
      `- name: meta/llama-3.1-70b-instruct\n  manifest: ${manifest('llama-3.1-70b-instruct.yaml')}\n` +
        `- name: qwen/qwen2.5-vl-7b-instruct\n  manifest: ${manifest('qwen2.5-vl-7b-instruct.yaml')}\n` +
        `- name: nvidia/llama-3.2-nv-embedqa-1b-v2\n  manifest: ${manifest('llama-3.2-nv-embedqa-1b-v2.yaml')}\n  task: embedding\n`,
    );
    const plan = await dryRun(env);
    expect(plan.mode).toBe('exclusive');
    expect(plan.models.map((m) => [m.name, m.task, m.profile.name, m.engine.env.CUDA_VISIBLE_DEVICES, m.cuda_visible_devices])).toEqual([
      ['meta/llama-3.1-70b-instruct', 'chat', 'tensorrt_llm-h100-fp8-tp4-pp1-latency', '0,1,2,3', '0,1,2,3'],
      ['qwen/qwen2.5-vl-7b-instruct', 'chat', 'tensorrt_llm-h100-fp8-tp1-pp1-throughput', '4', '4'],
      ['nvidia/llama-3.2-nv-embedqa-1b-v2', 'embedding', 'vllm-generic-bf16-tp1-pp1-throughput', '5', '5'],
    ]);
    for (const m of plan.models) expect(m.engine.env.CUDA_DEVICE_ORDER).toBe('PCI_BUS_ID');
    const [chat, vision, embed] = plan.models;
    expect(chat!.engine.command).toMatch(/trtllm-serve$/);
    expect(vision!.engine.command).toMatch(/trtllm-serve$/);
    expect(embed!.engine.command).toMatch(/vllm$/);
    expect(embed!.engine.args).toEqual(expect.arrayContaining(['--runner', 'pooling', '--served-model-name', 'nvidia/llama-3.2-nv-embedqa-1b-v2']));
    // The one-model shape stays readable: the first model's profile and engine at the top.
    expect(plan.profile).toEqual(chat!.profile);
    expect(plan.engine).toEqual(chat!.engine);
  });

  it('simulation: 1× L40S runs an 8B chat model and an embedding model on one GPU, each vLLM held to its share', async () => {
    const env = machine(
      1,
      'L40S',
      `- name: meta/llama-3.1-8b-instruct\n  manifest: ${manifest('llama-3.1-8b-instruct.yaml')}\n  passthrough_args: --enforce-eager\n` +
        `- name: embed\n  manifest: ${manifest('llama-3.2-nv-embedqa-1b-v2.yaml')}\n  task: embedding\n`,
    );
    const plan = await dryRun(env);
    expect(plan.mode).toBe('shared');
    expect(plan.models.map((m) => [m.name, m.profile.name, m.engine.env.CUDA_VISIBLE_DEVICES, m.gpu_memory_utilization])).toEqual([
      ['meta/llama-3.1-8b-instruct', 'vllm-generic-fp8-tp1-pp1-throughput', '0', 0.57],
      ['embed', 'vllm-generic-bf16-tp1-pp1-throughput', '0', 0.08],
    ]);
    const [chat, embed] = plan.models;
    expect(argAfter(chat!.engine.args, '--gpu-memory-utilization')).toBe('0.57');
    expect(argAfter(embed!.engine.args, '--gpu-memory-utilization')).toBe('0.08');
    // The entry's own passthrough_args come after the plan's, and only to its engine.
    expect(chat!.engine.args.at(-1)).toBe('--enforce-eager');
    expect(embed!.engine.args).not.toContain('--enforce-eager');
    expect(argAfter(embed!.engine.args, '--served-model-name')).toBe('embed');
  });

  it('simulation: 2× H100 cannot hold a 70B and a vision model: one line names the model and what would fit (no_profile)', async () => {
    const env = machine(
      2,
      'H100',
      `- name: chat\n  manifest: ${manifest('llama-3.1-70b-instruct.yaml')}\n- name: vision\n  manifest: ${manifest('qwen2.5-vl-7b-instruct.yaml')}\n`,
    );
    for (const argv of [['serve', '--dry-run'], ['serve']]) {
      const r = await cli(argv, env);
      expect(r.code, argv.join(' ')).toBe(STARTUP_ERRORS.no_profile.exit);
      const lines = r.stderr.trim().split('\n');
      expect(lines, argv.join(' ')).toHaveLength(1);
      expect(lines[0]).toMatch(/^portico: model vision does not fit on 2× H100 .*chat takes tensorrt_llm-h100-fp8-tp2-pp1-throughput on GPU 0,1.*smallest profile that runs it alone is /);
    }
  });

  it('list-model-profiles shows every model, where it runs, then its own listing', async () => {
    const env = machine(
      8,
      'H100',
      `- name: chat\n  manifest: ${manifest('llama-3.1-70b-instruct.yaml')}\n- name: embed\n  manifest: ${manifest('llama-3.2-nv-embedqa-1b-v2.yaml')}\n  task: embedding\n  gpus: [7]\n`,
    );
    const r = await cli(['list-model-profiles'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^MODELS \(2, from NIM_MODELS_FILE=.*models\.yaml\)\n- chat \(chat\): tensorrt_llm-h100-fp8-tp4-pp1-latency \([0-9a-f]{12}\) on GPU 0,1,2,3\n/);
    expect(r.stdout).toContain('- embed (embedding): vllm-generic-bf16-tp1-pp1-throughput');
    expect(r.stdout).toMatch(/on GPU 7\n/);
    expect(r.stdout).toContain('== chat ==\nMODEL\n- meta/llama-3.1-70b-instruct');
    expect(r.stdout).toContain('== embed ==\nMODEL\n- nvidia/llama-3.2-nv-embedqa-1b-v2');
    const j = await cli(['list-model-profiles', '--json'], env);
    const listing = JSON.parse(j.stdout) as { models: { name: string; placement: { cuda_visible_devices?: string } }[] };
    expect(listing.models.map((m) => [m.name, m.placement.cuda_visible_devices])).toEqual([
      ['chat', '0,1,2,3'],
      ['embed', '7'],
    ]);
  });
});

describe('NIM_MODELS_FILE and a one-model source together', () => {
  it('stop the start with one line (invalid_setting): the file names every source', async () => {
    const env: NodeJS.ProcessEnv = { ...machine(1, 'H100', `- name: a\n  engine_url: http://127.0.0.1:9\n`), NIM_MODEL_PATH: 'meta/llama-3.1-8b-instruct' };
    for (const argv of [['serve', '--dry-run'], ['serve'], ['list-model-profiles']]) {
      const r = await cli(argv, env);
      expect(r.code, argv.join(' ')).toBe(STARTUP_ERRORS.invalid_setting.exit);
      expect(r.stderr).toBe(`portico: NIM_MODELS_FILE=${env.NIM_MODELS_FILE}: not with NIM_MODEL_PATH (each model's source is in the file)\n`);
    }
  });
});

describe('NIM_MODELS_FILE with --ray-head', () => {
  it('is refused in one line (a Ray group serves one model)', async () => {
    const env = machine(1, 'H100', `- name: a\n  engine_url: http://127.0.0.1:9\n`);
    for (const argv of [['serve', '--ray-head', '--dry-run'], ['serve', '--ray-head']]) {
      const r = await cli(argv, env);
      expect(r.code, argv.join(' ')).toBe(STARTUP_ERRORS.invalid_setting.exit);
      expect(r.stderr).toBe(`portico: NIM_MODELS_FILE=${env.NIM_MODELS_FILE}: not with --ray-head / --ray-worker (a Ray group serves one model)\n`);
    }
  });
});

describe('the shipped examples (compose, Helm) plan on a simulated 1× L40S', () => {
  it.each([
    ['models.example.yaml (compose)', () => readFileSync(join(ROOT, 'models.example.yaml'), 'utf8')],
    ['helm/portico/ci/models-values.yaml', () => YAML.stringify((YAML.parse(readFileSync(join(ROOT, 'helm/portico/ci/models-values.yaml'), 'utf8')) as { models: { list: unknown } }).models.list)],
  ])('simulation: %s', async (_name, text) => {
    const plan = await dryRun(machine(1, 'L40S', text()));
    expect(plan.mode).toBe('shared');
    expect(plan.models.map((m) => [m.name, m.task, m.engine.env.CUDA_VISIBLE_DEVICES, m.gpu_memory_utilization])).toEqual([
      ['meta/llama-3.1-8b-instruct', 'chat', '0', 0.57],
      ['nvidia/llama-3.2-nv-embedqa-1b-v2', 'embedding', '0', 0.08],
    ]);
  });
});

describe('a bad models file stops the start with one line naming the file, the model and the field', () => {
  it.each([
    ['a field of the wrong type', `- name: a\n  model_path: /m/a.gguf\n- name: b\n  model_path: /m/b.gguf\n  max_model_len: lots\n`, /: model "b" \(#2\): max_model_len: expected a whole number ≥ 1$/],
    ['two sources', `- name: a\n  model_path: /m/a.gguf\n  engine_url: http://127.0.0.1:9\n`, /: model "a" \(#1\): engine_url: give one of model_path, manifest or engine_url, not model_path and engine_url$/],
    ['a duplicate name', `- name: a\n  engine_url: http://127.0.0.1:9\n- name: a\n  engine_url: http://127.0.0.1:10\n`, /: model "a" \(#2\): name: already used by model #1$/],
    ['a manifest that does not exist', `- name: a\n  manifest: ./nope.yaml\n`, /^portico: model a: .*nope\.yaml/],
  ])('%s', async (_what, yaml, line) => {
    const env = machine(1, 'H100', yaml);
    for (const argv of [['serve', '--dry-run'], ['serve'], ['list-model-profiles']]) {
      const r = await cli(argv, env);
      const lines = r.stderr.trim().split('\n');
      expect(lines, argv.join(' ')).toHaveLength(1);
      expect(lines[0]).toMatch(line);
      if (!/manifest/.test(_what)) {
        expect(lines[0]).toContain(`NIM_MODELS_FILE=${env.NIM_MODELS_FILE}`);
        expect(r.code, argv.join(' ')).toBe(STARTUP_ERRORS.invalid_models_file.exit);
      } else expect(r.code).toBe(STARTUP_ERRORS.invalid_manifest.exit);
    }
  });
});
