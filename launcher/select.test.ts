// Selection over simulated inventories: each case is what `nvidia-smi --query-gpu=...` would print
// on that machine, plus which engines are installed, and the exact profile (or refusal) expected.
import { describe, expect, it } from 'vitest';
import { filterVisible, loadGpuCatalog, mergeListing, parseNvidiaSmiCsv, parseNvidiaSmiList, type GpuInfo } from './gpus.js';
import { gpuCatalogFile, loadShippedManifests, type Manifest } from './manifest.js';
import {
  SelectionError,
  evaluateProfiles,
  findProfile,
  listProfileGroups,
  selectProfile,
  type EngineAvailability,
  type SelectOptions,
  type SystemInfo,
} from './select.js';

const catalog = loadGpuCatalog(gpuCatalogFile());
const manifests = loadShippedManifests();
const byId = (id: string): Manifest => manifests.find((m) => m.model.id === id)!;
const LLAMA = byId('meta/llama-3.1-8b-instruct');
// Llama 3.2 Vision's profiles are refused by the pinned vLLM (manifest `unsupported`); the same
// profiles without that mark still exercise GPU-specific selection and the memory estimate.
const VISION_SHIPPED = byId('meta/llama-3.2-11b-vision-instruct');
const VISION: Manifest = { ...VISION_SHIPPED, profiles: VISION_SHIPPED.profiles.map((p) => ({ ...p, unsupported: undefined })) };
const QWEN = byId('qwen/qwen2.5-vl-7b-instruct');
const DEMO = byId('portico/tiny-vlm');

const ROW = {
  H100: 'NVIDIA H100 80GB HBM3, 0x233010DE, 81559, 9.0',
  H100_PCIE: 'NVIDIA H100 PCIe, 0x233110DE, 81559, 9.0',
  H200: 'NVIDIA H200, 0x233510DE, 143771, 9.0',
  B200: 'NVIDIA B200, 0x290110DE, 183359, 10.0',
  A100_40: 'NVIDIA A100-SXM4-40GB, 0x20B010DE, 40960, 8.0',
  A100_80: 'NVIDIA A100-SXM4-80GB, 0x20B210DE, 81920, 8.0',
  L40S: 'NVIDIA L40S, 0x26B910DE, 46068, 8.9',
  L4: 'NVIDIA L4, 0x27B810DE, 23034, 8.9',
} as const;

/** What nvidia-smi prints for these GPUs, parsed as the launcher parses it. */
function smi(...rows: (keyof typeof ROW)[]): GpuInfo[] {
  return parseNvidiaSmiCsv(rows.map((r, i) => `${i}, ${ROW[r]}`).join('\n'), catalog);
}
const times = (n: number, r: keyof typeof ROW) => Array.from({ length: n }, () => r);

const ALL_ENGINES: EngineAvailability = {
  vllm: { available: true, detail: '/usr/local/bin/vllm' },
  tensorrt_llm: { available: true, detail: '/usr/local/bin/trtllm-serve' },
  llamacpp: { available: true, detail: '/cache/llama-server' },
};
const NO_TRTLLM: EngineAvailability = { ...ALL_ENGINES, tensorrt_llm: { available: false, detail: '`trtllm-serve` not found on PATH' } };

const OPTS: SelectOptions = { preference: 'latency', lora: false, allowUnsafe: false };
const sys = (gpus: GpuInfo[], engines = ALL_ENGINES): SystemInfo => ({ gpus, engines, gpuSource: gpus.length ? 'nvidia-smi' : 'nvidia-smi not found on PATH' });
const pick = (m: Manifest, s: SystemInfo, o: Partial<SelectOptions> = {}) => selectProfile(m, s, { ...OPTS, ...o });
const reasonOf = (m: Manifest, s: SystemInfo, name: string, o: Partial<SelectOptions> = {}) => {
  const e = evaluateProfiles(m, s, { ...OPTS, ...o }).find((x) => x.profile.name === name);
  if (!e) throw new Error(`no profile ${name}`);
  return `${e.status}: ${e.reason}`;
};

describe('selection over simulated inventories (llama-3.1-8b-instruct unless noted)', () => {
  it('1. no GPU: a GPU-only manifest refuses, saying how to run on the CPU', () => {
    expect(() => pick(LLAMA, sys([]))).toThrow(
      new SelectionError(
        'no profile of meta/llama-3.1-8b-instruct can run on no GPU (nvidia-smi not found on PATH): every profile needs a GPU; to run on the CPU, point NIM_MODEL_PATH at a .gguf file',
      ),
    );
    expect(reasonOf(LLAMA, sys([]), 'vllm-generic-bf16-tp1-pp1-throughput')).toBe('incompatible: needs a GPU; no GPU is visible (nvidia-smi not found on PATH)');
    expect(reasonOf(LLAMA, sys([]), 'tensorrt_llm-h100-fp8-tp1-pp1-throughput')).toBe('incompatible: needs H100 (2330:10de); no GPU is visible (nvidia-smi not found on PATH)');
  });

  it('1b. no GPU: the demo manifest runs llama.cpp', () => {
    const s = pick(DEMO, sys([]));
    expect(s.chosen.profile.name).toBe('llamacpp-generic-gguf-tp1-pp1-latency');
    expect(s.chosen.reason).toBe('runs on the CPU');
    expect(s.chosen.gpus).toEqual([]);
  });

  it('2. 1× L40S 48 GB: the L40S FP8 TensorRT-LLM profile', () => {
    const s = pick(LLAMA, sys(smi('L40S')));
    expect(s.chosen.profile.name).toBe('tensorrt_llm-l40s-fp8-tp1-pp1-throughput');
    expect(s.chosen.reason).toBe('1× L40S (GPU 0); ~25.5 of 40.5 GiB per GPU');
    expect(reasonOf(LLAMA, sys(smi('L40S')), 'tensorrt_llm-l40s-fp8-tp2-pp1-latency')).toBe('incompatible: needs 2 GPUs (tp2 × pp1); 1 L40S visible');
    expect(reasonOf(LLAMA, sys(smi('L40S')), 'tensorrt_llm-h100-fp8-tp1-pp1-throughput')).toBe('incompatible: needs H100 (2330:10de); this system has 1× L40S (45.0 GiB)');
  });

  it('3. 1× A100 40 GB: bf16 on one GPU; fp8 needs compute capability 8.9', () => {
    const s = pick(LLAMA, sys(smi('A100_40')));
    expect(s.chosen.profile.name).toBe('tensorrt_llm-a100-bf16-tp1-pp1-throughput');
    expect(s.chosen.reason).toBe('1× A100 (GPU 0); ~32.0 of 36.0 GiB per GPU');
    expect(reasonOf(LLAMA, sys(smi('A100_40')), 'vllm-generic-fp8-tp1-pp1-throughput')).toBe('incompatible: fp8 needs compute capability ≥ 8.9; A100 has 8.0');
  });

  it('4. 2× A100 80 GB: the tp2 latency profile', () => {
    const s = pick(LLAMA, sys(smi('A100_80', 'A100_80')));
    expect(s.chosen.profile.name).toBe('tensorrt_llm-a100-bf16-tp2-pp1-latency');
    expect(s.chosen.gpus.map((g) => g.cudaId)).toEqual(['0', '1']);
    expect(s.runnable.map((e) => e.profile.name)).toEqual([
      'tensorrt_llm-a100-bf16-tp2-pp1-latency',
      'tensorrt_llm-a100-bf16-tp1-pp1-throughput',
      'vllm-generic-bf16-tp2-pp1-latency',
      'vllm-generic-bf16-tp1-pp1-throughput',
      'vllm-generic-bf16-tp1-pp1-throughput-lora',
    ]);
  });

  it('5. 4× L4: bf16 tp2 runs; fp8 tp1 is low on memory and says which max_model_len fits', () => {
    const s = pick(LLAMA, sys(smi(...times(4, 'L4'))));
    expect(s.chosen.profile.name).toBe('tensorrt_llm-l4-bf16-tp2-pp1-latency');
    expect(s.lowMemory.map((e) => `${e.profile.name}@${e.fitMaxModelLen}`)).toEqual([
      'tensorrt_llm-l4-fp8-tp1-pp1-throughput@88064',
      'vllm-generic-fp8-tp1-pp1-throughput@88064',
      'vllm-generic-bf16-tp1-pp1-throughput@34816',
      'vllm-generic-bf16-tp1-pp1-throughput-lora@34816',
    ]);
    expect(s.lowMemory[0]!.reason).toBe(
      'needs 25.5 GiB per GPU for max_model_len 131072 (weights 8.5 + KV cache 16.0 + overhead 1.0); L4 offers 20.2 GiB; max_model_len 88064 fits (NIM_MAX_MODEL_LEN=88064)',
    );
  });

  it('5b. 4× L4 with NIM_MAX_MODEL_LEN=32768: the FP8 single-GPU profile becomes runnable and wins', () => {
    const s = pick(LLAMA, sys(smi(...times(4, 'L4'))), { maxModelLen: 32768 });
    expect(s.chosen.profile.name).toBe('tensorrt_llm-l4-fp8-tp1-pp1-throughput');
    expect(s.chosen.maxModelLen).toBe(32768);
    expect(s.lowMemory).toEqual([]);
  });

  it('6. 8× H100 80 GB: FP8 tp2 latency; throughput preference picks FP8 tp1', () => {
    const gpus = smi(...times(8, 'H100'));
    expect(pick(LLAMA, sys(gpus)).chosen.profile.name).toBe('tensorrt_llm-h100-fp8-tp2-pp1-latency');
    expect(pick(LLAMA, sys(gpus), { preference: 'throughput' }).chosen.profile.name).toBe('tensorrt_llm-h100-fp8-tp1-pp1-throughput');
  });

  it('6b. H100 PCIe (2331:10de) does not match the SXM profiles (gpu_device 2330:10de): generic vLLM', () => {
    const gpus = smi('H100_PCIE');
    expect(pick(LLAMA, sys(gpus)).chosen.profile.name).toBe('vllm-generic-fp8-tp1-pp1-throughput');
    expect(reasonOf(LLAMA, sys(gpus), 'tensorrt_llm-h100-fp8-tp1-pp1-throughput')).toBe('incompatible: needs H100 (2330:10de); this system has 1× H100 (79.6 GiB)');
  });

  it('7. 8× H200: the H200 FP8 tp2 latency profile', () => {
    const s = pick(LLAMA, sys(smi(...times(8, 'H200'))));
    expect(s.chosen.profile.name).toBe('tensorrt_llm-h200-fp8-tp2-pp1-latency');
    expect(s.chosen.reason).toBe('2× H200 (GPU 0,1); ~13.2 of 126.4 GiB per GPU');
  });

  it('8. 1× B200: NVFP4 (compute capability 10.0) before FP8', () => {
    const s = pick(LLAMA, sys(smi('B200')));
    expect(s.chosen.profile.name).toBe('tensorrt_llm-b200-nvfp4-tp1-pp1-throughput');
    expect(s.runnable.map((e) => e.profile.name).slice(0, 2)).toEqual(['tensorrt_llm-b200-nvfp4-tp1-pp1-throughput', 'tensorrt_llm-b200-fp8-tp1-pp1-throughput']);
    // NVFP4 on Hopper: too old.
    const hopper = { ...LLAMA, profiles: LLAMA.profiles.map((p) => (p.name === 'tensorrt_llm-b200-nvfp4-tp1-pp1-throughput' ? { ...p, tags: { ...p.tags, gpu: 'H100', gpu_device: undefined } } : p)) };
    expect(reasonOf(hopper, sys(smi('H100')), 'tensorrt_llm-b200-nvfp4-tp1-pp1-throughput')).toBe('incompatible: nvfp4 needs compute capability ≥ 10.0; H100 has 9.0');
  });

  it('9. mixed GPU models (A100 80 GB + L40S): the L40S profile, pinned to GPU 1', () => {
    const s = pick(LLAMA, sys(smi('A100_80', 'L40S')));
    expect(s.chosen.profile.name).toBe('tensorrt_llm-l40s-fp8-tp1-pp1-throughput');
    expect(s.chosen.gpus.map((g) => g.cudaId)).toEqual(['1']);
  });

  it('9b. mixed models: the VLM manifests on the same machines', () => {
    expect(pick(VISION, sys(smi('A100_80', 'L40S'))).chosen.profile.name).toBe('vllm-a100-bf16-tp1-pp1-throughput');
    expect(pick(VISION, sys(smi(...times(8, 'H100')))).chosen.profile.name).toBe('vllm-h100-fp8-tp1-pp1-throughput');
    expect(pick(VISION, sys(smi('L40S'))).chosen.profile.name).toBe('vllm-generic-fp8-tp1-pp1-throughput');
    expect(pick(QWEN, sys(smi('L40S'))).chosen.profile.name).toBe('tensorrt_llm-l40s-bf16-tp1-pp1-throughput');
    expect(pick(QWEN, sys(smi(...times(8, 'H100')))).chosen.profile.name).toBe('tensorrt_llm-h100-fp8-tp1-pp1-throughput');
    expect(pick(QWEN, sys(smi('A100_40'))).chosen.profile.name).toBe('vllm-generic-bf16-tp1-pp1-throughput');
    // The 11B vision model at 128k context does not fit an A100 40 GB: refuse, naming what fits.
    expect(() => pick(VISION, sys(smi('A100_40')))).toThrow(
      'no profile of meta/llama-3.2-11b-vision-instruct can run on 1× A100 (40.0 GiB) with max_model_len 131072 (2 profiles low on GPU memory); vllm-a100-bf16-tp1-pp1-throughput fits with NIM_MAX_MODEL_LEN=98304',
    );
  });

  it('9c. shipped Llama 3.2 Vision: every profile is vLLM, which v0.11.0 refuses for Mllama: listed as incompatible with why', () => {
    expect(() => pick(VISION_SHIPPED, sys(smi(...times(8, 'H100'))))).toThrow(/no profile of meta\/llama-3\.2-11b-vision-instruct can run/);
    const evals = evaluateProfiles(VISION_SHIPPED, sys(smi(...times(8, 'H100'))), { preference: 'latency', lora: false, allowUnsafe: false });
    expect(evals.map((e) => [e.status, e.reason])).toEqual(VISION_SHIPPED.profiles.map(() => ['incompatible', 'vLLM v0.11.0 no longer supports Llama 3.2 Vision (MllamaForConditionalGeneration, last in v0.10.2)']));
  });

  it('10. CUDA_VISIBLE_DEVICES=3 on 8× H100: one GPU, so the tp1 FP8 profile on GPU 3', () => {
    const visible = filterVisible(smi(...times(8, 'H100')), { cuda: '3' }).gpus;
    const s = pick(LLAMA, sys(visible));
    expect(s.chosen.profile.name).toBe('tensorrt_llm-h100-fp8-tp1-pp1-throughput');
    expect(s.chosen.gpus.map((g) => g.cudaId)).toEqual(['3']);
    expect(reasonOf(LLAMA, sys(visible), 'tensorrt_llm-h100-fp8-tp2-pp1-latency')).toBe('incompatible: needs 2 GPUs (tp2 × pp1); 1 H100 visible');
  });

  it('11. a MIG slice (A100 3g.20gb): nothing fits at 128k; the refusal names the max_model_len that does', () => {
    const gpus = mergeListing(
      smi('A100_40'),
      parseNvidiaSmiList('GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5d5b)\n  MIG 3g.20gb     Device  0: (UUID: MIG-c6d4)\n'),
    );
    const s = sys(gpus, NO_TRTLLM);
    expect(() => pick(LLAMA, s)).toThrow(
      'no profile of meta/llama-3.1-8b-instruct can run on 1× A100 MIG 3g.20gb with max_model_len 131072 (2 profiles low on GPU memory); vllm-generic-bf16-tp1-pp1-throughput fits with NIM_MAX_MODEL_LEN=9216',
    );
    expect(reasonOf(LLAMA, s, 'vllm-generic-bf16-tp2-pp1-latency')).toBe('incompatible: needs 2 GPUs (tp2 × pp1); 1 visible; a MIG slice is a single device');
    const ok = pick(LLAMA, s, { maxModelLen: 8192 });
    expect(ok.chosen.profile.name).toBe('vllm-generic-bf16-tp1-pp1-throughput');
    expect(ok.chosen.gpus.map((g) => g.cudaId)).toEqual(['MIG-c6d4']);
  });

  it('12. an engine not installed (no trtllm-serve) on 8× H100: vLLM FP8 tp2', () => {
    const s = pick(LLAMA, sys(smi(...times(8, 'H100')), NO_TRTLLM));
    expect(s.chosen.profile.name).toBe('vllm-generic-fp8-tp2-pp1-latency');
    expect(reasonOf(LLAMA, sys(smi(...times(8, 'H100')), NO_TRTLLM), 'tensorrt_llm-h100-fp8-tp2-pp1-latency')).toBe(
      'incompatible: tensorrt_llm is not available: `trtllm-serve` not found on PATH',
    );
  });

  it('12b. no engine at all on a GPU box: the refusal says which engine to install for which profile', () => {
    const none: EngineAvailability = { ...NO_TRTLLM, vllm: { available: false, detail: '`vllm` not found on PATH' } };
    expect(() => pick(LLAMA, sys(smi('L40S'), none))).toThrow(
      'no profile of meta/llama-3.1-8b-instruct can run on 1× L40S (45.0 GiB): this hardware suits 4 profiles (best: tensorrt_llm-l40s-fp8-tp1-pp1-throughput) but their engine is not installed: tensorrt_llm (`trtllm-serve` not found on PATH), vllm (`vllm` not found on PATH)',
    );
    // llama.cpp still runs the demo on that box.
    expect(pick(DEMO, sys(smi('L40S'), none)).chosen.profile.name).toBe('llamacpp-generic-gguf-tp1-pp1-latency');
  });
});

describe('ranking and overrides', () => {
  const h100x8 = sys(smi(...times(8, 'H100')));

  it('NIM_PEFT_SOURCE prefers LoRA profiles', () => {
    expect(pick(LLAMA, h100x8, { lora: true }).chosen.profile.name).toBe('tensorrt_llm-h100-bf16-tp1-pp1-throughput-lora');
    expect(pick(LLAMA, sys(smi('A100_80')), { lora: true }).chosen.profile.name).toBe('vllm-generic-bf16-tp1-pp1-throughput-lora');
  });

  it('NIM_TENSOR_PARALLEL_SIZE prefers profiles built for it, and applies to the chosen one', () => {
    const two = sys(smi('L40S', 'L40S'));
    expect(pick(LLAMA, two).chosen.profile.name).toBe('tensorrt_llm-l40s-fp8-tp2-pp1-latency');
    const s1 = pick(LLAMA, two, { tensorParallelSize: 1, preference: 'latency' });
    expect(s1.chosen.profile.name).toBe('tensorrt_llm-l40s-fp8-tp1-pp1-throughput');
    expect(s1.chosen.tp).toBe(1);
    const s4 = pick(LLAMA, sys(smi(...times(4, 'L40S'))), { tensorParallelSize: 4 });
    expect(s4.chosen.profile.name).toBe('tensorrt_llm-l40s-fp8-tp2-pp1-latency');
    expect([s4.chosen.tp, s4.chosen.gpus.length]).toEqual([4, 4]);
    expect(() => pick(LLAMA, two, { tensorParallelSize: 4 })).toThrow(/needs 4 GPUs \(tp4 × pp1\); 2 visible/);
  });

  it('is deterministic whatever the manifest order', () => {
    const shuffled = { ...LLAMA, profiles: [...LLAMA.profiles].reverse() };
    for (const g of [smi(...times(8, 'H100')), smi('A100_80', 'A100_80'), smi(...times(4, 'L4'))]) {
      expect(pick(shuffled, sys(g)).runnable.map((e) => e.profile.id)).toEqual(pick(LLAMA, sys(g)).runnable.map((e) => e.profile.id));
    }
  });

  it('TensorRT-LLM over vLLM over llama.cpp at equal hardware specificity', () => {
    const m: Manifest = { ...LLAMA, profiles: [...LLAMA.profiles.filter((p) => !p.tags.gpu), ...DEMO.profiles] };
    const s = pick(m, sys(smi('L40S')));
    // (LoRA profiles go last when NIM_PEFT_SOURCE is not set.)
    expect(s.runnable.map((e) => e.profile.name)).toEqual([
      'vllm-generic-fp8-tp1-pp1-throughput',
      'vllm-generic-bf16-tp1-pp1-throughput',
      'llamacpp-generic-gguf-tp1-pp1-latency',
      'vllm-generic-bf16-tp1-pp1-throughput-lora',
    ]);
  });
});

describe('NIM_MODEL_PROFILE', () => {
  const l40s = sys(smi('L40S'));
  const h100fp8 = LLAMA.profiles.find((p) => p.name === 'tensorrt_llm-h100-fp8-tp1-pp1-throughput')!;
  const generic = LLAMA.profiles.find((p) => p.name === 'vllm-generic-bf16-tp1-pp1-throughput')!;

  it('selects by id, id prefix, or readable name; `default` is automatic', () => {
    expect(pick(LLAMA, l40s, { requested: generic.id }).chosen.profile).toBe(generic);
    expect(pick(LLAMA, l40s, { requested: generic.id.slice(0, 10) }).how).toBe('requested');
    expect(pick(LLAMA, l40s, { requested: 'VLLM-generic-bf16-tp1-pp1-throughput' }).chosen.profile).toBe(generic);
    const d = pick(LLAMA, l40s, { requested: 'default' });
    expect([d.how, d.chosen.profile.name]).toEqual(['automatic', 'tensorrt_llm-l40s-fp8-tp1-pp1-throughput']);
    expect(findProfile(LLAMA, 'nope')).toBeUndefined();
  });

  it('an unknown profile fails, listing the runnable ones', () => {
    expect(() => pick(LLAMA, l40s, { requested: 'tensorrt_llm-l40s-int4-tp1-pp1-latency' })).toThrow(
      /^NIM_MODEL_PROFILE=tensorrt_llm-l40s-int4-tp1-pp1-latency: no such profile in .*llama-3\.1-8b-instruct\.yaml \(24 profiles\); runnable here: tensorrt_llm-l40s-fp8-tp1-pp1-throughput \([0-9a-f]{12}\), vllm-generic-fp8-tp1-pp1-throughput \([0-9a-f]{12}\), vllm-generic-bf16-tp1-pp1-throughput/,
    );
  });

  it('an incompatible profile fails with its reason; NIM_MANIFEST_ALLOW_UNSAFE forces it', () => {
    expect(() => pick(LLAMA, l40s, { requested: h100fp8.name })).toThrow(
      /^NIM_MODEL_PROFILE=tensorrt_llm-h100-fp8-tp1-pp1-throughput \(tensorrt_llm-h100-fp8-tp1-pp1-throughput\) cannot run on 1× L40S \(45\.0 GiB\): needs H100 \(2330:10de\); this system has 1× L40S \(45\.0 GiB\); runnable here: .*; NIM_MANIFEST_ALLOW_UNSAFE=1 starts it anyway$/,
    );
    const forced = pick(LLAMA, l40s, { requested: h100fp8.id, allowUnsafe: true });
    expect(forced.how).toBe('forced');
    expect(forced.chosen.profile).toBe(h100fp8);
    expect(forced.warnings).toEqual(['NIM_MANIFEST_ALLOW_UNSAFE: starting tensorrt_llm-h100-fp8-tp1-pp1-throughput although needs H100 (2330:10de); this system has 1× L40S (45.0 GiB)']);
  });

  it('a low-memory profile is refused with the max_model_len that fits', () => {
    expect(() => pick(LLAMA, sys(smi('L4')), { requested: 'vllm-generic-bf16-tp1-pp1-throughput' })).toThrow(/low memory: .*max_model_len 34816 fits \(NIM_MAX_MODEL_LEN=34816\)/);
  });
});

describe('listProfileGroups', () => {
  it('groups every profile once and marks the selected one', () => {
    const l = listProfileGroups(LLAMA, sys(smi(...times(4, 'L4'))), OPTS);
    expect(l.runnable.length + l.lowMemory.length + l.incompatible.length).toBe(LLAMA.profiles.length);
    expect(l.runnable.filter((p) => p.selected).map((p) => p.name)).toEqual(['tensorrt_llm-l4-bf16-tp2-pp1-latency']);
    expect(l.selected?.name).toBe('tensorrt_llm-l4-bf16-tp2-pp1-latency');
    expect(l.error).toBeUndefined();
    expect(l.runnable[0]!.tags).toEqual({ feat_lora: 'false', gpu: 'L4', llm_engine: 'tensorrt_llm', number_of_gpus: '2', pp: '1', precision: 'bf16', profile: 'latency', tp: '2' });
  });

  it('reports why nothing is selected instead of throwing', () => {
    const l = listProfileGroups(LLAMA, sys([]), OPTS);
    expect(l.selected).toBeUndefined();
    expect(l.error).toMatch(/every profile needs a GPU/);
    expect(l.incompatible).toHaveLength(LLAMA.profiles.length);
  });
});
