// Multi-model planning over simulated inventories: what `nvidia-smi --query-gpu=...` prints on
// each machine, the models of a models file, and the exact plan (or refusal) expected.
import { describe, expect, it } from 'vitest';
import { loadGpuCatalog, parseNvidiaSmiCsv, type GpuInfo } from './gpus.js';
import { gpuCatalogFile, loadShippedManifests, type Manifest } from './manifest.js';
import { SelectionError, type EngineAvailability, type SelectOptions, type SystemInfo } from './select.js';
import { planModels, type ModelRequest, type MultiPlan } from './select-many.js';

const catalog = loadGpuCatalog(gpuCatalogFile());
const manifests = loadShippedManifests();
const byId = (id: string): Manifest => manifests.find((m) => m.model.id === id)!;
const L70 = byId('meta/llama-3.1-70b-instruct');
const L8 = byId('meta/llama-3.1-8b-instruct');
// A vision model vLLM v0.11.0 runs (it dropped Llama 3.2 Vision, so that manifest's vLLM profiles are incompatible).
const VISION = byId('qwen/qwen2.5-vl-7b-instruct');
const EMBED = byId('nvidia/llama-3.2-nv-embedqa-1b-v2');
const DEMO = byId('portico/tiny-vlm');

const ROW = {
  H100: 'NVIDIA H100 80GB HBM3, 0x233010DE, 81559, 9.0',
  L40S: 'NVIDIA L40S, 0x26B910DE, 46068, 8.9',
  L4: 'NVIDIA L4, 0x27B810DE, 23034, 8.9',
} as const;
const smi = (n: number, r: keyof typeof ROW): GpuInfo[] => parseNvidiaSmiCsv(Array.from({ length: n }, (_, i) => `${i}, ${ROW[r]}`).join('\n'), catalog);
const ALL_ENGINES: EngineAvailability = {
  vllm: { available: true, detail: '/usr/local/bin/vllm' },
  tensorrt_llm: { available: true, detail: '/usr/local/bin/trtllm-serve' },
  llamacpp: { available: true, detail: '/cache/llama-server' },
};
const sys = (gpus: GpuInfo[], engines = ALL_ENGINES): SystemInfo => ({ gpus, engines, gpuSource: gpus.length ? 'nvidia-smi' : 'nvidia-smi not found on PATH' });
const OPTS: SelectOptions = { preference: 'latency', lora: false, allowUnsafe: false };
const model = (name: string, manifest: Manifest, extra: Partial<ModelRequest> = {}, opts: Partial<SelectOptions> = {}): ModelRequest => ({ name, manifest, opts: { ...OPTS, ...opts }, ...extra });
const summary = (p: MultiPlan) => ({
  mode: p.mode,
  placements: p.placements.map((x) => ({ name: x.name, profile: x.chosen.profile.name, gpus: x.cudaVisibleDevices, util: x.gpuMemoryUtilization })),
});
const refusal = (reqs: ModelRequest[], s: SystemInfo) => {
  try {
    planModels(reqs, s);
  } catch (err) {
    expect(err).toBeInstanceOf(SelectionError);
    return (err as Error).message;
  }
  throw new Error('expected the plan to be refused');
};

describe('simulation: planModels on simulated inventories', () => {
  it('simulation: 8× H100 serves a 70B chat model, a vision model (Qwen2.5-VL 7B) and an embedding model, each on its own GPUs', () => {
    const plan = planModels([model('chat', L70), model('vision', VISION), model('embed', EMBED)], sys(smi(8, 'H100')));
    expect(summary(plan)).toEqual({
      mode: 'exclusive',
      placements: [
        { name: 'chat', profile: 'tensorrt_llm-h100-fp8-tp4-pp1-latency', gpus: '0,1,2,3', util: undefined },
        { name: 'vision', profile: 'tensorrt_llm-h100-fp8-tp1-pp1-throughput', gpus: '4', util: undefined },
        { name: 'embed', profile: 'vllm-generic-bf16-tp1-pp1-throughput', gpus: '5', util: undefined },
      ],
    });
    // each engine's GPUs are exactly the ones it was judged on, and no GPU is given twice
    const ids = plan.placements.flatMap((p) => p.chosen.gpus.map((g) => g.cudaId));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('simulation: 4× H100: the 70B model gives up its 4-GPU latency profile so the other two fit', () => {
    const plan = planModels([model('chat', L70), model('vision', VISION), model('embed', EMBED)], sys(smi(4, 'H100')));
    expect(summary(plan).placements).toEqual([
      { name: 'chat', profile: 'tensorrt_llm-h100-fp8-tp2-pp1-throughput', gpus: '0,1', util: undefined },
      { name: 'vision', profile: 'tensorrt_llm-h100-fp8-tp1-pp1-throughput', gpus: '2', util: undefined },
      { name: 'embed', profile: 'vllm-generic-bf16-tp1-pp1-throughput', gpus: '3', util: undefined },
    ]);
  });

  it('simulation: 1× L40S: an 8B chat model and an embedding model share the GPU, each held to its memory share', () => {
    const plan = planModels([model('chat', L8), model('embed', EMBED)], sys(smi(1, 'L40S')));
    // TensorRT-LLM's L40S profile would rank first alone, but only vLLM engines can share a GPU
    expect(summary(plan)).toEqual({
      mode: 'shared',
      placements: [
        { name: 'chat', profile: 'vllm-generic-fp8-tp1-pp1-throughput', gpus: '0', util: 0.57 },
        { name: 'embed', profile: 'vllm-generic-bf16-tp1-pp1-throughput', gpus: '0', util: 0.08 },
      ],
    });
    // the shares cover each engine's estimated need and stay within the 90% budget together
    const [chat, embed] = plan.placements;
    const total = chat!.chosen.memory!.totalGiB;
    for (const p of plan.placements) expect(p.gpuMemoryUtilization! * total).toBeGreaterThanOrEqual(p.chosen.memory!.needGiB);
    expect(chat!.chosen.memory!.needGiB + embed!.chosen.memory!.needGiB).toBeLessThanOrEqual(0.9 * total);
    // alone, the chat model keeps its best profile (nothing to share)
    expect(summary(planModels([model('chat', L8)], sys(smi(1, 'L40S')))).placements[0]!.profile).toBe('tensorrt_llm-l40s-fp8-tp1-pp1-throughput');
  });

  it('simulation: 2× H100 cannot hold the 70B and the vision model: one line names the model and what would fit', () => {
    expect(refusal([model('chat', L70), model('vision', VISION)], sys(smi(2, 'H100')))).toBe(
      'model vision does not fit on 2× H100 (79.6 GiB) next to the models before it (chat takes tensorrt_llm-h100-fp8-tp2-pp1-throughput on GPU 0,1): ' +
        '0 GPUs left, and the smallest profile that runs it alone is tensorrt_llm-h100-fp8-tp1-pp1-throughput, needing 1 GPU (add 1 GPU, remove a model, or pin a smaller profile)',
    );
  });

  it('simulation: a model that cannot run even alone says so with select.ts\'s reason', () => {
    const msg = refusal([model('chat', L8, {}, { maxModelLen: 8192 }), model('big', L70)], sys(smi(1, 'L4')));
    expect(msg).toMatch(/^model big cannot run here even alone: no profile of meta\/llama-3\.1-70b-instruct can run on 1× L4/);
    expect(msg.split('\n')).toHaveLength(1);
  });

  it('simulation: no GPU: the CPU demo model runs on the CPU; a GPU-only embedding model is refused', () => {
    const plan = planModels([model('portico/tiny-vlm', DEMO)], sys([]));
    expect(summary(plan)).toEqual({ mode: 'exclusive', placements: [{ name: 'portico/tiny-vlm', profile: 'llamacpp-generic-gguf-tp1-pp1-latency', gpus: undefined, util: undefined }] });
    expect(refusal([model('portico/tiny-vlm', DEMO), model('embed', EMBED)], sys([]))).toMatch(/^model embed cannot run here even alone: .*every profile needs a GPU/);
  });

  it('simulation: gpus pins: exact indices are honoured, counts select the profile size, unknown indices are refused', () => {
    const pinned = planModels([model('embed', EMBED, { gpus: { indices: [7] } }), model('chat', L70, { gpus: { count: 2 } })], sys(smi(8, 'H100')));
    expect(summary(pinned).placements).toEqual([
      { name: 'embed', profile: 'vllm-generic-bf16-tp1-pp1-throughput', gpus: '7', util: undefined },
      { name: 'chat', profile: 'tensorrt_llm-h100-fp8-tp2-pp1-throughput', gpus: '0,1', util: undefined },
    ]);
    expect(refusal([model('embed', EMBED, { gpus: { indices: [9] } })], sys(smi(8, 'H100')))).toBe('model embed: gpus [9]: GPU 9 is not visible; this system has 8× H100 (79.6 GiB)');
  });
});
