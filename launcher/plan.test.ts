// planLaunch / listProfiles with a fake nvidia-smi and fake engines on an explicit PATH.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../core/config.js';
import { loadShippedManifests } from './manifest.js';
import {
  PlanError,
  buildEngineCommand,
  engineModelArg,
  findLoraAdapters,
  findMmproj,
  listProfiles,
  planLaunch,
  probeEngines,
  resolveManifest,
  splitPassthrough,
} from './plan.js';
import { renderProfilesJson, renderProfilesTable } from './profiles-table.js';
import { selectProfile, type SystemInfo } from './select.js';
import { llamaServerPath } from './prepare/build-engine.js';
import { loadGpuCatalog, parseNvidiaSmiCsv } from './gpus.js';
import { gpuCatalogFile, repoRoot } from './manifest.js';

const tmp = mkdtempSync(join(tmpdir(), 'portico-plan-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const CACHE = join(tmp, 'cache');

let n = 0;
/** A bin dir with a fake nvidia-smi printing `csv` (none if undefined) and the named fake engines. */
function fakeBin(csv: string | undefined, engines: string[] = []): string {
  const dir = join(tmp, `bin${n++}`);
  mkdirSync(dir, { recursive: true });
  const exe = (name: string, body: string) => {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  };
  if (csv !== undefined) {
    writeFileSync(join(dir, 'gpus.csv'), csv);
    exe('nvidia-smi', 'case "$1" in -L) exit 0 ;; esac\ncat "$(dirname "$0")/gpus.csv"');
  }
  for (const e of engines) exe(e, 'exit 0');
  return dir;
}
// Real tools (cmake, git, npm) stay reachable so llama.cpp counts as buildable.
const envWith = (bin: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`, NIM_CACHE_PATH: CACHE, ...extra });
const settingsOf = (env: NodeJS.ProcessEnv) => loadSettings(env);
const L40S = '0, NVIDIA L40S, 0x26B910DE, 46068, 8.9\n';
const H100x8 = Array.from({ length: 8 }, (_, i) => `${i}, NVIDIA H100 80GB HBM3, 0x233010DE, 81559, 9.0`).join('\n');
const ctx = (env: NodeJS.ProcessEnv) => ({ enginePort: 9100, dryRun: true, log: () => {}, env });

describe('splitPassthrough (NIM_PASSTHROUGH_ARGS)', () => {
  it('splits like a shell, keeps $VARS and globs literal', () => {
    expect(splitPassthrough(`--max-num-seqs 8 --chat-template "a b" '$HOME' $X --json '{"a": 1}' *.txt`)).toEqual([
      '--max-num-seqs', '8', '--chat-template', 'a b', '$HOME', '$X', '--json', '{"a": 1}', '*.txt',
    ]);
    expect(splitPassthrough(undefined)).toEqual([]);
    expect(splitPassthrough('  ')).toEqual([]);
  });
  it('refuses shell operators and comments', () => {
    expect(() => splitPassthrough('--a 1; rm -rf /')).toThrow(new PlanError('NIM_PASSTHROUGH_ARGS: shell operator ";" is not allowed (arguments go to the engine, not to a shell)'));
    expect(() => splitPassthrough('--a $(id)')).toThrow(/shell operator/);
    expect(() => splitPassthrough('--a 1 # no')).toThrow('NIM_PASSTHROUGH_ARGS: "#" starts a comment; quote it if it belongs to an argument');
  });
});

describe('resolveManifest', () => {
  const s = (env: Record<string, string>) => settingsOf({ NIM_CACHE_PATH: CACHE, ...env });

  it('no NIM_MODEL_PATH: the CPU demo manifest', () => {
    const r = resolveManifest(s({}));
    expect(r.manifest.model.id).toBe('portico/tiny-vlm');
    expect(r.how).toBe('no NIM_MODEL_PATH: the CPU demo model');
  });

  it('a .gguf NIM_MODEL_PATH: synthesized llama.cpp manifest, with the one mmproj next to it', () => {
    const dir = join(tmp, 'gguf');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'model-Q4.gguf'), '');
    writeFileSync(join(dir, 'mmproj-model-f16.gguf'), '');
    const r = resolveManifest(s({ NIM_MODEL_PATH: join(dir, 'model-Q4.gguf') }));
    expect(r.manifest.format).toBe('synthesized');
    expect(r.manifest.model).toMatchObject({ id: 'model-Q4', source: join(dir, 'model-Q4.gguf'), mmproj: join(dir, 'mmproj-model-f16.gguf') });
    writeFileSync(join(dir, 'mmproj-other.gguf'), '');
    expect(findMmproj(join(dir, 'model-Q4.gguf'))).toBeUndefined(); // two candidates: guess nothing
    expect(() => resolveManifest(s({ NIM_MODEL_PATH: join(dir, 'missing.gguf') }))).toThrow(`NIM_MODEL_PATH=${join(dir, 'missing.gguf')}: no such file`);
  });

  it('a NIM_MODEL_PATH naming a shipped model: that manifest (local weights override its source)', () => {
    expect(resolveManifest(s({ NIM_MODEL_PATH: 'meta/llama-3.1-8b-instruct' }))).toMatchObject({ manifest: { model: { id: 'meta/llama-3.1-8b-instruct' } }, sourceOverride: undefined });
    const local = join(tmp, 'Qwen2.5-VL-7B-Instruct');
    mkdirSync(local, { recursive: true });
    const r = resolveManifest(s({ NIM_MODEL_NAME: local }));
    expect(r.manifest.model.id).toBe('qwen/qwen2.5-vl-7b-instruct');
    expect(r.sourceOverride).toBe(local);
  });

  it('an unknown model: generic vLLM profiles; a missing local path: refused', () => {
    expect(resolveManifest(s({ NIM_MODEL_PATH: 'mistralai/Mistral-7B-Instruct-v0.3' })).manifest.profiles[0]!.name).toBe('vllm-generic-bf16-tp1-pp1-latency');
    expect(() => resolveManifest(s({ NIM_MODEL_PATH: '/nonexistent/model' }))).toThrow('NIM_MODEL_PATH=/nonexistent/model: no such file or directory');
  });

  it('NIM_MANIFEST_PATH: a NIM v2 manifest needs NIM_MODEL_PATH', () => {
    const f = join(tmp, 'model_manifest.yaml');
    writeFileSync(f, "schema_version: '2.0'\nprofiles:\n- id: 3bb4e8fe78e5037b05dd618cebb1053347325ad6a1e709e0eb18bb8558362ac5\n  tags: {llm_engine: vllm, precision: bf16, tp: '1', pp: '1'}\n  workspace: {components: [{src: {repo_id: 'ngc://nim/meta/llama-3.1-8b-instruct:1'}}]}\n");
    expect(() => resolveManifest(s({ NIM_MANIFEST_PATH: f }))).toThrow(
      `NIM_MANIFEST_PATH=${f} is a NIM model_manifest.yaml whose weights (ngc://nim/meta/llama-3.1-8b-instruct:1) portico cannot fetch; set NIM_MODEL_PATH to a local copy or a Hugging Face id`,
    );
    const dir = join(tmp, 'hfmodel');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ num_hidden_layers: 2, num_attention_heads: 4, hidden_size: 64, max_position_embeddings: 4096 }));
    const r = resolveManifest(s({ NIM_MANIFEST_PATH: f, NIM_MODEL_PATH: dir }));
    expect(r.manifest.model.maxModelLen).toBe(4096);
    expect(r.sourceOverride).toBe(dir);
  });

  it('NIM_MANIFEST_PATH: errors name the file and field', () => {
    const f = join(tmp, 'bad.yaml');
    writeFileSync(f, 'version: 1\nmodel: {id: x, source: y, max_model_len: 10, license: {name: MIT, text: t}, parameters: 1}\nprofiles: [{llm_engine: vllm, precision: fp9, profile: latency}]\n');
    expect(() => resolveManifest(s({ NIM_MANIFEST_PATH: f }))).toThrow(new RegExp(`^${f}: profiles\\[0\\]\\.precision: Invalid option`));
  });
});

describe('probeEngines', () => {
  it('looks for vllm and trtllm-serve on the given PATH only', () => {
    const bin = fakeBin(undefined, ['vllm']);
    const e = probeEngines(settingsOf({ NIM_CACHE_PATH: CACHE }), { PATH: bin });
    expect(e.vllm).toEqual({ available: true, detail: join(bin, 'vllm') });
    expect(e.tensorrt_llm).toEqual({ available: false, detail: '`trtllm-serve` not found on PATH' });
    expect(e.llamacpp).toEqual({ available: false, detail: `llama-server is not built (${llamaServerPath(CACHE)}) and cmake, git, npm are missing to build it` });
  });
});

describe('container layout (NIM_LLAMA_SERVER_PATH, the package root)', () => {
  it('NIM_LLAMA_SERVER_PATH: a prebuilt llama-server is used as is, never built', async () => {
    const bin = fakeBin(undefined, ['llama-server']);
    const env: NodeJS.ProcessEnv = { PATH: bin, NIM_CACHE_PATH: CACHE, NIM_LLAMA_SERVER_PATH: join(bin, 'llama-server') };
    expect(settingsOf(env).llamaServerPath).toBe(join(bin, 'llama-server'));
    expect(probeEngines(settingsOf(env), env).llamacpp).toEqual({ available: true, detail: join(bin, 'llama-server') });
    const plan = await planLaunch(settingsOf(env), ctx(env));
    expect(plan.engine.command).toBe(join(bin, 'llama-server'));
  });

  it('NIM_LLAMA_SERVER_PATH naming a missing file: llama.cpp is reported unavailable, naming the setting', () => {
    const env: NodeJS.ProcessEnv = { PATH: fakeBin(undefined), NIM_CACHE_PATH: CACHE, NIM_LLAMA_SERVER_PATH: '/nonexistent/llama-server' };
    expect(probeEngines(settingsOf(env), env).llamacpp).toEqual({ available: false, detail: 'NIM_LLAMA_SERVER_PATH=/nonexistent/llama-server: no such file' });
  });

  it('the package root is found from the module in the image layout too (/opt/portico/dist/launcher)', () => {
    const image = join(tmp, 'opt', 'portico');
    mkdirSync(join(image, 'manifests'), { recursive: true });
    mkdirSync(join(image, 'dist', 'launcher'), { recursive: true });
    writeFileSync(join(image, 'package.json'), '{}');
    expect(repoRoot(join(image, 'dist', 'launcher', 'manifest.js'))).toBe(image);
  });

  it('ctx.root points at the manifests and GPU catalog', async () => {
    const home = join(tmp, 'home');
    mkdirSync(join(home, 'manifests'), { recursive: true });
    mkdirSync(join(home, 'profiles'), { recursive: true });
    writeFileSync(join(home, 'profiles', 'gpus.yaml'), 'gpus: []\n');
    writeFileSync(
      join(home, 'manifests', 'portico-tiny-vlm.yaml'),
      'version: 1\nmodel: {id: home/demo, source: portico://tiny-vlm, max_model_len: 512, license: {name: MIT, text: t}, parameters: 1}\nprofiles: [{llm_engine: llamacpp, precision: gguf, profile: latency}]\n',
    );
    const env = envWith(fakeBin(undefined));
    const l = await listProfiles(settingsOf(env), { env, root: home });
    expect(l.manifest.model).toBe('home/demo');
    const plan = await planLaunch(settingsOf(env), { ...ctx(env), root: home });
    expect(plan.profile.model).toBe('home/demo');
  });
});

describe('buildEngineCommand', () => {
  const catalog = loadGpuCatalog(gpuCatalogFile());
  const llama = loadShippedManifests().find((m) => m.model.id === 'meta/llama-3.1-8b-instruct')!;
  const system: SystemInfo = {
    gpus: parseNvidiaSmiCsv(H100x8, catalog),
    engines: { vllm: { available: true, detail: 'x' }, tensorrt_llm: { available: true, detail: 'x' }, llamacpp: { available: true, detail: 'x' } },
  };

  it('applies NIM_TENSOR_PARALLEL_SIZE / NIM_MAX_MODEL_LEN / NIM_SERVED_MODEL_NAME / NIM_PASSTHROUGH_ARGS and pins the GPUs', () => {
    const settings = settingsOf({
      NIM_CACHE_PATH: CACHE,
      NIM_TENSOR_PARALLEL_SIZE: '4',
      NIM_MAX_MODEL_LEN: '8192',
      NIM_SERVED_MODEL_NAME: 'llama',
      NIM_PASSTHROUGH_ARGS: '--max-num-seqs 64',
      NIM_MODEL_PROFILE: 'vllm-generic-fp8-tp2-pp1-latency',
    });
    const chosen = selectProfile(llama, system, { preference: 'latency', lora: false, allowUnsafe: false, requested: settings.modelProfile, tensorParallelSize: 4, maxModelLen: 8192 }).chosen;
    const c = buildEngineCommand({ manifest: llama, chosen, settings, port: 7000, model: 'meta-llama/Llama-3.1-8B-Instruct', command: 'vllm', parentEnv: {} });
    expect(c.args).toEqual([
      'serve', 'meta-llama/Llama-3.1-8B-Instruct',
      '--host', '127.0.0.1', '--port', '7000',
      '--served-model-name', 'llama',
      '--tensor-parallel-size', '4', '--pipeline-parallel-size', '1',
      '--max-model-len', '8192',
      '--quantization', 'fp8',
      '--allowed-media-domains', 'portico.invalid',
      '--enable-auto-tool-choice', '--tool-call-parser', 'llama3_json',
      '--max-num-seqs', '64',
    ]);
    expect(c.env).toEqual({ VLLM_NO_USAGE_STATS: '1', DO_NOT_TRACK: '1', CUDA_DEVICE_ORDER: 'PCI_BUS_ID', CUDA_VISIBLE_DEVICES: '0,1,2,3', HF_HOME: join(CACHE, 'huggingface') });
    // HF_HOME already set: leave it.
    expect(buildEngineCommand({ manifest: llama, chosen, settings, port: 7000, model: 'm', command: 'vllm', parentEnv: { HF_HOME: '/hf' } }).env.HF_HOME).toBeUndefined();
  });

  it('TensorRT-LLM profiles run trtllm-serve', () => {
    const settings = settingsOf({ NIM_CACHE_PATH: CACHE });
    const chosen = selectProfile(llama, system, { preference: 'latency', lora: false, allowUnsafe: false }).chosen;
    const c = buildEngineCommand({ manifest: llama, chosen, settings, port: 7001, model: 'nvidia/Llama-3.1-8B-Instruct-FP8', command: '/usr/bin/trtllm-serve', parentEnv: {} });
    expect(c.command).toBe('/usr/bin/trtllm-serve');
    expect(c.args).toEqual([
      'nvidia/Llama-3.1-8B-Instruct-FP8',
      '--host', '127.0.0.1', '--port', '7001',
      '--backend', 'pytorch', '--tp_size', '2', '--pp_size', '1', '--max_seq_len', '131072',
      '--config', join(CACHE, 'trtllm', `${chosen.profile.id.slice(0, 12)}.yaml`),
    ]);
  });

  it('engine model arguments', () => {
    expect(engineModelArg('hf://meta-llama/Llama-3.1-8B-Instruct')).toBe('meta-llama/Llama-3.1-8B-Instruct');
    expect(engineModelArg('file:///models/x')).toBe('/models/x');
    expect(engineModelArg('s3://bucket/x')).toBe('s3://bucket/x');
  });

  it('LoRA adapters under NIM_PEFT_SOURCE', () => {
    const peft = join(tmp, 'loras');
    for (const a of ['sql', 'chat', 'empty']) mkdirSync(join(peft, a), { recursive: true });
    writeFileSync(join(peft, 'sql', 'adapter_config.json'), '{}');
    writeFileSync(join(peft, 'chat', 'adapter_config.json'), '{}');
    expect(findLoraAdapters(peft)).toEqual([
      { name: 'chat', path: join(peft, 'chat') },
      { name: 'sql', path: join(peft, 'sql') },
    ]);
    expect(findLoraAdapters(undefined)).toEqual([]);
  });
});

describe('planLaunch (dry run)', () => {
  it('no GPU and no model: the demo llama.cpp plan, as `npm start` runs it', async () => {
    const env = envWith(fakeBin(undefined));
    const plan = await planLaunch(settingsOf(env), ctx(env));
    expect(plan.profile).toMatchObject({ name: 'llamacpp-generic-gguf-tp1-pp1-latency', selected: 'automatic', model: 'portico/tiny-vlm' });
    expect(plan.engine.command).toBe(llamaServerPath(CACHE));
    expect(plan.engine.args.slice(0, 4)).toEqual(['-m', join(CACHE, 'models', 'portico-tiny-vlm.gguf'), '--mmproj', join(CACHE, 'models', 'portico-tiny-vlm-mmproj.gguf')]);
    expect(plan.engine.args).toContain('--alias');
    expect(plan.engine.env).toEqual({});
    expect(plan.model).toEqual({ id: 'portico/tiny-vlm', root: join(CACHE, 'models', 'portico-tiny-vlm.gguf'), maxModelLen: 2048 });
  });

  it('1× L40S with only vLLM installed: vLLM FP8 with its argv', async () => {
    const bin = fakeBin(L40S, ['vllm']);
    const env = envWith(bin, { NIM_MODEL_PATH: 'meta/llama-3.1-8b-instruct', NIM_MAX_MODEL_LEN: '8192' });
    const lines: string[] = [];
    const plan = await planLaunch(settingsOf(env), { ...ctx(env), log: (l) => lines.push(l) });
    expect(plan.profile).toMatchObject({ name: 'vllm-generic-fp8-tp1-pp1-throughput', gpus: ['0'] });
    expect(plan.engine.command).toBe(join(bin, 'vllm'));
    expect(plan.engine.args).toEqual([
      'serve', 'meta-llama/Llama-3.1-8B-Instruct',
      '--host', '127.0.0.1', '--port', '9100',
      '--served-model-name', 'meta/llama-3.1-8b-instruct',
      '--tensor-parallel-size', '1', '--pipeline-parallel-size', '1',
      '--max-model-len', '8192',
      '--quantization', 'fp8',
      '--allowed-media-domains', 'portico.invalid',
      '--enable-auto-tool-choice', '--tool-call-parser', 'llama3_json',
    ]);
    // A text model (manifest modalities [text]): the gateway refuses media parts before vLLM sees them.
    expect(plan.model).toEqual({ id: 'meta/llama-3.1-8b-instruct', root: 'hf://meta-llama/Llama-3.1-8B-Instruct', maxModelLen: 8192, modalities: { image: false, video: false, audio: false } });
    expect(lines.some((l) => l.startsWith('[profile] selected vllm-generic-fp8-tp1-pp1-throughput'))).toBe(true);
  });

  it("a manifest's media_resize_max_pixels reaches the served model; NIM_MEDIA_RESIZE_MAX_PIXELS overrides it", async () => {
    const bin = fakeBin(L40S, ['vllm']);
    const env = envWith(bin, { NIM_MODEL_PATH: 'qwen/qwen2.5-vl-7b-instruct' });
    expect((await planLaunch(settingsOf(env), ctx(env))).model.resizeMaxPixels).toBe(1003520);
    const set = { ...env, NIM_MEDIA_RESIZE_MAX_PIXELS: '2000000' };
    // The operator's setting applies to every model through the media policy: no per-model value.
    expect((await planLaunch(settingsOf(set), ctx(set))).model.resizeMaxPixels).toBeUndefined();
  });

  it('8× H100 with trtllm-serve: the FP8 checkpoint the profile names', async () => {
    const env = envWith(fakeBin(H100x8, ['vllm', 'trtllm-serve']), { NIM_MODEL_PATH: 'hf://meta-llama/Llama-3.1-8B-Instruct' });
    const plan = await planLaunch(settingsOf(env), ctx(env));
    expect(plan.profile.name).toBe('tensorrt_llm-h100-fp8-tp2-pp1-latency');
    expect(plan.engine.args[0]).toBe('nvidia/Llama-3.1-8B-Instruct-FP8');
    expect(plan.engine.env.CUDA_VISIBLE_DEVICES).toBe('0,1');
  });

  it('an incompatible NIM_MODEL_PROFILE is refused before anything runs', async () => {
    const env = envWith(fakeBin(L40S, ['vllm']), { NIM_MODEL_PATH: 'meta/llama-3.1-8b-instruct', NIM_MODEL_PROFILE: 'tensorrt_llm-h100-fp8-tp2-pp1-latency' });
    await expect(planLaunch(settingsOf(env), ctx(env))).rejects.toThrow(/^NIM_MODEL_PROFILE=tensorrt_llm-h100-fp8-tp2-pp1-latency \(tensorrt_llm-h100-fp8-tp2-pp1-latency\) cannot run on 1× L40S/);
  });

  it('a GPU-only model on a machine without GPUs is refused with what would work', async () => {
    const env = envWith(fakeBin(undefined, ['vllm']), { NIM_MODEL_PATH: 'meta/llama-3.1-8b-instruct' });
    await expect(planLaunch(settingsOf(env), ctx(env))).rejects.toThrow(
      'no profile of meta/llama-3.1-8b-instruct can run on no GPU (nvidia-smi not found on PATH): every profile needs a GPU; to run on the CPU, point NIM_MODEL_PATH at a .gguf file',
    );
  });
});

describe('listProfiles + rendering', () => {
  it('groups like NIM, marks the selection, and renders text and JSON', async () => {
    const env = envWith(fakeBin(L40S, ['vllm']), { NIM_MODEL_PATH: 'meta/llama-3.1-8b-instruct' });
    const l = await listProfiles(settingsOf(env), { env });
    expect(l.selected?.name).toBe('vllm-generic-fp8-tp1-pp1-throughput');
    const text = renderProfilesTable(l);
    expect(text).toContain('MODEL PROFILES (preference: latency; NIM_PROFILE_PREFERENCE)\n- Compatible with system and runnable:\n');
    expect(text).toMatch(/^ {2}- [0-9a-f]{64} \(vllm-generic-fp8-tp1-pp1-throughput\) \[selected\]: 1× L40S \(GPU 0\); ~25\.5 of 40\.5 GiB per GPU$/m);
    expect(text).toContain('- Incompatible with system:\n');
    expect(text).toMatch(/\(tensorrt_llm-l40s-fp8-tp1-pp1-throughput\): tensorrt_llm is not available: `trtllm-serve` not found on PATH$/m);
    expect(text).toContain('  - [26b9:10de] (0) NVIDIA L40S: 45.0 GiB, compute capability 8.9');
    expect(text).toMatch(/^SELECTED: [0-9a-f]{64} \(vllm-generic-fp8-tp1-pp1-throughput\)$/m);
    const json = JSON.parse(renderProfilesJson(l)) as typeof l;
    expect(json.runnable.map((p) => p.name)).toEqual(['vllm-generic-fp8-tp1-pp1-throughput', 'vllm-generic-bf16-tp1-pp1-throughput', 'vllm-generic-bf16-tp1-pp1-throughput-lora']);
    expect(json.incompatible).toHaveLength(21);
  });

  it('low-memory profiles get their own section with the max_model_len that fits', async () => {
    const env = envWith(fakeBin('0, NVIDIA L4, 0x27B810DE, 23034, 8.9\n', ['vllm']), { NIM_MODEL_PATH: 'meta/llama-3.1-8b-instruct' });
    const text = renderProfilesTable(await listProfiles(settingsOf(env), { env }));
    expect(text).toContain('- Compatible with system but low memory:\n');
    expect(text).toMatch(/\(vllm-generic-fp8-tp1-pp1-throughput\): max_model_len 88064 fits \(set NIM_MAX_MODEL_LEN=88064\); needs 25\.5 GiB per GPU/);
    expect(text).toMatch(/^NOT STARTABLE: no profile of meta\/llama-3\.1-8b-instruct can run on 1× L4/m);
  });
});
