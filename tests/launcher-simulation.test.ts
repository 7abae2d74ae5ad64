// Simulations of GPU machines: a fake `nvidia-smi` and a fake `vllm` go first on PATH, and the real
// CLI (dist/serve/main.js) runs against them. The fake vllm records its argv and then runs the
// real llama-server with the equivalent arguments, so `portico serve` takes the whole GPU start
// path (inventory → manifest → profile → vLLM argv → spawn → health → gateway) end to end.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CLI, ROOT, startStack, type Stack } from './helpers/stack.js';

const MODEL = 'meta/llama-3.1-8b-instruct';
const CONTRACT_QUERY = '--query-gpu=index,name,pci.device_id,memory.total,compute_cap';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'portico-sim-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let n = 0;
interface Machine {
  bin: string;
  argvFile: string;
  env: Record<string, string>;
}

/** A simulated machine: nvidia-smi printing `csv`, and a fake vllm that records argv then runs llama-server. */
function machine(csv: string, extraEnv: Record<string, string> = {}): Machine {
  const bin = join(dir, `machine${n++}`);
  mkdirSync(bin, { recursive: true });
  const argvFile = join(bin, 'vllm.argv');
  const exe = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  writeFileSync(join(bin, 'gpus.csv'), csv);
  exe(
    'nvidia-smi',
    `case "$1" in
  ${CONTRACT_QUERY}) cat '${join(bin, 'gpus.csv')}' ;;
  -L) awk -F', ' '{ printf "GPU %s: %s (UUID: GPU-0000000%s)\\n", $1, $2, $1 }' '${join(bin, 'gpus.csv')}' ;;
  *) exit 0 ;;
esac`,
  );
  exe(
    'vllm',
    `# fake vllm: record argv (one per line), then serve the tiny model with llama-server
printf '%s\\n' "$@" > '${argvFile}'
[ "$1" = serve ] || exit 64
shift 2
port=; name=
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port="$2"; shift 2 ;;
    --served-model-name) name="$2"; shift 2 ;;
    *) shift ;;
  esac
done
exec '${inject('llamaServer')}' -m '${inject('tinyModel')}' --mmproj '${inject('tinyMmproj')}' -c 4096 -np 2 -t 2 --host 127.0.0.1 --port "$port" --alias "$name"`,
  );
  return {
    bin,
    argvFile,
    env: { PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`, NIM_CACHE_PATH: inject('cachePath'), NIM_MODEL_PATH: MODEL, ...extraEnv },
  };
}

const L40S = '0, NVIDIA L40S, 0x26B910DE, 46068, 8.9\n';

/** Run the CLI once (bounded), as a user would. */
function cli(args: string[], env: Record<string, string>) {
  return execa('node', [CLI, ...args], { env, extendEnv: false, reject: false, timeout: 30_000, cwd: ROOT });
}
const baseEnv = () => ({ HOME: process.env.HOME ?? '/tmp' });

describe('simulation: portico serve --dry-run on simulated GPU machines', () => {
  it('simulation: 1× L40S with vLLM installed prints the vLLM FP8 argv and spawns nothing', async () => {
    const m = machine(L40S);
    const r = await cli(['serve', '--dry-run'], { ...baseEnv(), ...m.env, NIM_MAX_MODEL_LEN: '4096', NIM_PASSTHROUGH_ARGS: '--max-num-seqs 8' });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const out = JSON.parse(r.stdout) as { profile: Record<string, unknown>; engine: { command: string; args: string[]; env: Record<string, string> } };
    expect(out.profile).toMatchObject({
      name: 'vllm-generic-fp8-tp1-pp1-throughput',
      tags: { feat_lora: 'false', llm_engine: 'vllm', number_of_gpus: '1', pp: '1', precision: 'fp8', profile: 'throughput', tp: '1' },
      selected: 'automatic',
      model: MODEL,
    });
    expect(out.profile.id).toMatch(/^[0-9a-f]{64}$/);
    expect(out.engine.command).toBe(join(m.bin, 'vllm'));
    expect(out.engine.args).toEqual([
      'serve', 'meta-llama/Llama-3.1-8B-Instruct',
      '--host', '127.0.0.1', '--port', '0',
      '--served-model-name', MODEL,
      '--tensor-parallel-size', '1', '--pipeline-parallel-size', '1',
      '--max-model-len', '4096',
      '--quantization', 'fp8',
      '--allowed-media-domains', 'portico.invalid',
      '--enable-auto-tool-choice', '--tool-call-parser', 'llama3_json',
      '--max-num-seqs', '8',
    ]);
    expect(out.engine.env).toMatchObject({ CUDA_VISIBLE_DEVICES: '0', CUDA_DEVICE_ORDER: 'PCI_BUS_ID' });
    expect(existsSync(m.argvFile)).toBe(false);
  });

  it('simulation: 8× H100 with CUDA_VISIBLE_DEVICES=2,5 picks a tp2 profile on those GPUs', async () => {
    const csv = Array.from({ length: 8 }, (_, i) => `${i}, NVIDIA H100 80GB HBM3, 0x233010DE, 81559, 9.0`).join('\n');
    const m = machine(csv, { CUDA_VISIBLE_DEVICES: '2,5' });
    const r = await cli(['serve', '--dry-run'], { ...baseEnv(), ...m.env });
    expect(r.exitCode).toBe(0);
    const out = JSON.parse(r.stdout) as { profile: { name: string }; engine: { args: string[]; env: Record<string, string> } };
    // No trtllm-serve on this machine: the best vLLM profile.
    expect(out.profile.name).toBe('vllm-generic-fp8-tp2-pp1-latency');
    expect(out.engine.env.CUDA_VISIBLE_DEVICES).toBe('2,5');
    expect(out.engine.args.slice(8, 12)).toEqual(['--tensor-parallel-size', '2', '--pipeline-parallel-size', '1']);
  });
});

describe('simulation: list-model-profiles on simulated GPU machines', () => {
  const LIST = join(ROOT, 'dist', 'serve', 'list-model-profiles.js');

  it('simulation: 4× L4 — runnable (selected marked), low memory (with the max_model_len that fits), incompatible', async () => {
    const m = machine(Array.from({ length: 4 }, (_, i) => `${i}, NVIDIA L4, 0x27B810DE, 23034, 8.9`).join('\n'));
    const r = await execa('node', [LIST], { env: { ...baseEnv(), ...m.env }, extendEnv: false, reject: false, timeout: 30_000 });
    expect(r.exitCode).toBe(0);
    const text = r.stdout;
    expect(text).toContain('- Compatible with system and runnable:\n');
    expect(text).toMatch(/^ {2}- [0-9a-f]{64} \(vllm-generic-fp8-tp2-pp1-latency\) \[selected\]: 2× L4 \(GPU 0,1\)/m);
    expect(text).toContain('- Compatible with system but low memory:\n');
    expect(text).toMatch(/\(vllm-generic-fp8-tp1-pp1-throughput\): max_model_len 88064 fits \(set NIM_MAX_MODEL_LEN=88064\)/);
    expect(text).toContain('- Incompatible with system:\n');
    expect(text).toMatch(/\(tensorrt_llm-l4-bf16-tp2-pp1-latency\): tensorrt_llm is not available: `trtllm-serve` not found on PATH$/m);
    expect(text).toMatch(/\(tensorrt_llm-h100-fp8-tp1-pp1-throughput\): needs H100 \(2330:10de\); this system has 4× L4 \(22\.5 GiB\)$/m);
    expect(existsSync(m.argvFile)).toBe(false);
  });

  it('simulation: --json through `portico list-model-profiles`', async () => {
    const m = machine(L40S);
    const r = await cli(['list-model-profiles', '--json'], { ...baseEnv(), ...m.env });
    expect(r.exitCode).toBe(0);
    const l = JSON.parse(r.stdout) as { selected: { name: string }; runnable: { name: string; selected: boolean }[]; lowMemory: unknown[]; incompatible: { reason: string }[] };
    expect(l.selected.name).toBe('vllm-generic-fp8-tp1-pp1-throughput');
    expect(l.runnable.map((p) => p.name)).toEqual(['vllm-generic-fp8-tp1-pp1-throughput', 'vllm-generic-bf16-tp1-pp1-throughput', 'vllm-generic-bf16-tp1-pp1-throughput-lora']);
    expect(l.runnable[0]!.selected).toBe(true);
    expect(l.incompatible).toHaveLength(21);
  });
});

describe('simulation: refusals before anything is spawned', () => {
  const expectOneLine = (r: { exitCode?: number | undefined; stderr: string }, pattern: RegExp) => {
    expect(r.exitCode).not.toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(pattern);
  };

  it('simulation: a bad manifest names the file and field', async () => {
    const m = machine(L40S);
    const bad = join(m.bin, 'bad.yaml');
    writeFileSync(bad, 'version: 1\nmodel: {id: x, source: hf://x/y, max_model_len: 4096, license: {name: MIT, text: t}, parameters: 1B}\nprofiles: [{llm_engine: vllm, precision: fp9, profile: latency}]\n');
    const r = await cli(['serve'], { ...baseEnv(), ...m.env, NIM_MANIFEST_PATH: bad });
    expectOneLine(r, new RegExp(`^portico: ${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: profiles\\[0\\]\\.precision: Invalid option: expected one of`));
    expect(existsSync(m.argvFile)).toBe(false);
  });

  it('simulation: bad env values name the variable', async () => {
    const m = machine(L40S);
    expectOneLine(await cli(['serve'], { ...baseEnv(), ...m.env, NIM_TENSOR_PARALLEL_SIZE: 'two' }), /^portico: invalid setting NIM_TENSOR_PARALLEL_SIZE="two": expected a whole number/);
    expectOneLine(await cli(['serve'], { ...baseEnv(), ...m.env, NIM_PROFILE_PREFERENCE: 'fastest' }), /^portico: invalid setting NIM_PROFILE_PREFERENCE="fastest"/);
    expectOneLine(await cli(['serve'], { ...baseEnv(), ...m.env, NIM_PASSTHROUGH_ARGS: '--x 1; reboot' }), /^portico: NIM_PASSTHROUGH_ARGS: shell operator ";" is not allowed/);
    expect(existsSync(m.argvFile)).toBe(false);
  });

  it('simulation: an incompatible NIM_MODEL_PROFILE lists the runnable ones', async () => {
    const m = machine(L40S);
    const r = await cli(['serve'], { ...baseEnv(), ...m.env, NIM_MODEL_PROFILE: 'tensorrt_llm-h100-fp8-tp2-pp1-latency' });
    expectOneLine(
      r,
      /^portico: NIM_MODEL_PROFILE=tensorrt_llm-h100-fp8-tp2-pp1-latency \(tensorrt_llm-h100-fp8-tp2-pp1-latency\) cannot run on 1× L40S \(45\.0 GiB\): needs H100 \(2330:10de\); this system has 1× L40S \(45\.0 GiB\); runnable here: vllm-generic-fp8-tp1-pp1-throughput \([0-9a-f]{12}\), .*; NIM_MANIFEST_ALLOW_UNSAFE=1 starts it anyway$/,
    );
    expect(existsSync(m.argvFile)).toBe(false);
  });

  it('simulation: an unknown NIM_MODEL_PROFILE', async () => {
    const m = machine(L40S);
    expectOneLine(await cli(['serve'], { ...baseEnv(), ...m.env, NIM_MODEL_PROFILE: 'fastest-please' }), /^portico: NIM_MODEL_PROFILE=fastest-please: no such profile in .*llama-3\.1-8b-instruct\.yaml \(24 profiles\); runnable here: /);
    expect(existsSync(m.argvFile)).toBe(false);
  });

  it('simulation: a GPU-only model on a machine whose nvidia-smi finds no driver', async () => {
    const m = machine('');
    writeFileSync(join(m.bin, 'nvidia-smi'), "#!/bin/sh\necho \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\" >&2\nexit 9\n");
    expectOneLine(
      await cli(['serve'], { ...baseEnv(), ...m.env }),
      /^portico: no profile of meta\/llama-3\.1-8b-instruct can run on no GPU \(nvidia-smi failed: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver\.\): every profile needs a GPU; to run on the CPU, point NIM_MODEL_PATH at a \.gguf file$/,
    );
    expect(existsSync(m.argvFile)).toBe(false);
  });
});

describe('simulation: portico serve on 1× L40S through a fake vllm running llama-server', () => {
  let m: Machine;
  let stack: Stack;
  beforeAll(async () => {
    m = machine(L40S);
    stack = await startStack({ ...m.env, NIM_MAX_MODEL_LEN: '4096' });
  }, 90_000);
  afterAll(async () => {
    const code = await stack?.stop();
    expect(code).toBe(0);
  });

  it('simulation: the launcher chose the vLLM profile and started `vllm serve` with its argv', () => {
    expect(readFileSync(m.argvFile, 'utf8').trim().split('\n')).toEqual([
      'serve', 'meta-llama/Llama-3.1-8B-Instruct',
      '--host', '127.0.0.1', '--port', String(stack.enginePort()),
      '--served-model-name', MODEL,
      '--tensor-parallel-size', '1', '--pipeline-parallel-size', '1',
      '--max-model-len', '4096',
      '--quantization', 'fp8',
      '--allowed-media-domains', 'portico.invalid',
      '--enable-auto-tool-choice', '--tool-call-parser', 'llama3_json',
    ]);
    expect(stack.output()).toContain('[profile] selected vllm-generic-fp8-tp1-pp1-throughput');
  });

  it('simulation: the gateway serves the model under its NIM name', async () => {
    const res = await fetch(`${stack.url}/v1/models`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { data: { id: string; max_model_len: number }[] };
    expect(body.data[0]).toMatchObject({ id: MODEL, max_model_len: 4096 });
  });

  it('simulation: chat completions flow through the gateway to the engine', async () => {
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8, temperature: 0 }),
      signal: AbortSignal.timeout(30_000),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { model: string; choices: { message: { role: string; content: string } }[]; usage: { completion_tokens: number } };
    expect(body.model).toBe(MODEL);
    expect(body.choices[0]!.message.role).toBe('assistant');
    expect(body.usage.completion_tokens).toBeGreaterThan(0);
  });
});
