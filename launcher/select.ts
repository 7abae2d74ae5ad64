// Profile selection, as pure functions: (manifest, system, options) → each profile's verdict with
// a reason, the ranked runnable ones, and the choice. No I/O here: the system (GPUs, installed
// engines) is probed elsewhere and passed in, so every case is a unit test.
//
// A profile is
//   incompatible  when its engine is unsupported or not installed, it needs a GPU and there is
//                 none, its `gpu`/`gpu_device` is not present, tp × pp exceeds the matching GPUs,
//                 the GPU cannot run its precision (fp8 needs compute capability ≥ 8.9, nvfp4 and
//                 mxfp4 ≥ 10.0), or the weights alone do not fit;
//   low memory    when the weights fit but the KV cache for one max_model_len sequence does not
//                 (vLLM refuses to start then); the reason names the max_model_len that fits;
//   runnable      otherwise.
// Runnable profiles are ranked as NIM documents: hardware-specific over generic, TensorRT-LLM
// over vLLM (over llama.cpp), lower precision first, latency over throughput unless
// NIM_PROFILE_PREFERENCE=throughput, then most GPUs for latency / fewest for throughput, then id.
// LoRA profiles come first when NIM_PEFT_SOURCE is set and last otherwise.
import { ConfigError, type Settings } from '../core/config.js';
import type { EngineKind } from '../core/engine.js';
import { describeGpus, sameProduct, type GpuInfo } from './gpus.js';
import { ENGINES, PRECISIONS, nimTags, type Manifest, type Precision, type Profile } from './manifest.js';

export interface EngineProbe {
  available: boolean;
  /** Why not, or where it was found: "`vllm` not found on PATH", "/usr/bin/vllm". */
  detail: string;
}
export type EngineAvailability = Record<EngineKind, EngineProbe>;

export interface SystemInfo {
  /** GPUs the engine can use (after CUDA_VISIBLE_DEVICES). */
  gpus: GpuInfo[];
  engines: EngineAvailability;
  /** How the GPU inventory was obtained ("nvidia-smi not found on PATH", ...). */
  gpuSource?: string | undefined;
  /** What CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES did to the inventory. */
  notes?: string[] | undefined;
}

export interface SelectOptions {
  preference: 'latency' | 'throughput';
  /** NIM_MAX_MODEL_LEN: overrides the manifest's for the memory check and the engine. */
  maxModelLen?: number | undefined;
  tensorParallelSize?: number | undefined;
  pipelineParallelSize?: number | undefined;
  /** NIM_PEFT_SOURCE is set: prefer LoRA profiles. */
  lora: boolean;
  /** NIM_MODEL_PROFILE: id, id prefix (≥ 8 hex), readable name, or `default`. */
  requested?: string | undefined;
  allowUnsafe: boolean;
}

export function selectOptions(settings: Settings): SelectOptions {
  return {
    preference: settings.profilePreference,
    maxModelLen: settings.maxModelLen,
    tensorParallelSize: settings.tensorParallelSize,
    pipelineParallelSize: settings.pipelineParallelSize,
    lora: settings.peftSource !== undefined,
    requested: settings.modelProfile,
    allowUnsafe: settings.manifestAllowUnsafe,
  };
}

/** Minimum compute capability per precision (×10: 8.9 → 89). */
export const MIN_COMPUTE_CAPABILITY: Partial<Record<Precision, number>> = {
  fp8: 89,
  nvfp4: 100,
  mxfp4: 100,
};

/** vLLM's default --gpu-memory-utilization; TensorRT-LLM reserves a similar share. */
export const GPU_MEMORY_UTILIZATION = 0.9;
/** Per-GPU memory for the CUDA context, activations and CUDA graphs, beyond weights and KV. */
export const RUNTIME_OVERHEAD_GIB = 1;
/** Below this, a profile that fits only a shorter context is not worth offering. */
export const MIN_USEFUL_MODEL_LEN = 1024;

const GIB = 1024 ** 3;

export interface MemoryEstimate {
  /** Per GPU, GiB. */
  weightsGiB: number;
  kvCacheGiB: number;
  overheadGiB: number;
  needGiB: number;
  /** Usable per GPU: smallest assigned GPU × GPU_MEMORY_UTILIZATION. */
  usableGiB: number;
  totalGiB: number;
}

export type ProfileStatus = 'runnable' | 'low_memory' | 'incompatible';

export interface Evaluation {
  profile: Profile;
  status: ProfileStatus;
  /** incompatible: the first reason it cannot run; low_memory: what would fit; runnable: what it uses. */
  reason: string;
  /** Effective tensor / pipeline parallelism (profile, or NIM_TENSOR_PARALLEL_SIZE / NIM_PIPELINE_PARALLEL_SIZE). */
  tp: number;
  pp: number;
  /** Effective max_model_len (NIM_MAX_MODEL_LEN or the manifest's), when known. */
  maxModelLen: number | undefined;
  /** low_memory: the largest max_model_len that fits (a multiple of 1024). */
  fitMaxModelLen?: number | undefined;
  /** GPUs the engine would run on (empty for llama.cpp). */
  gpus: GpuInfo[];
  memory?: MemoryEstimate | undefined;
}

const fmt = (n: number) => n.toFixed(1);
const ccValue = (cc: string | undefined) => {
  const m = cc ? /^(\d+)\.(\d+)/.exec(cc) : null;
  return m ? Number(m[1]) * 10 + Number(m[2]) : undefined;
};
const ccText = (v: number) => `${Math.floor(v / 10)}.${v % 10}`;

function isHardwareSpecific(p: Profile): boolean {
  return Boolean(p.tags.gpu || p.tags.gpu_device);
}

function gpuMatches(p: Profile, g: GpuInfo): boolean {
  if (p.tags.gpu_device && g.deviceId !== p.tags.gpu_device) return false;
  if (p.tags.gpu && !sameProduct(p.tags.gpu, g.product)) return false;
  return true;
}

function wanted(p: Profile): string {
  const t = p.tags;
  if (t.gpu && t.gpu_device) return `${t.gpu} (${t.gpu_device})`;
  return t.gpu ?? `GPU ${t.gpu_device}`;
}

/** Judge one profile against the system. */
export function evaluateProfile(manifest: Manifest, profile: Profile, system: SystemInfo, opts: SelectOptions): Evaluation {
  const t = profile.tags;
  const gpuEngine = t.llm_engine !== 'llamacpp';
  const tp = gpuEngine ? (opts.tensorParallelSize ?? t.tp) : 1;
  const pp = gpuEngine ? (opts.pipelineParallelSize ?? t.pp) : 1;
  const maxModelLen = opts.maxModelLen ?? manifest.model.maxModelLen;
  const base = { profile, tp, pp, maxModelLen, gpus: [] as GpuInfo[] };
  const no = (reason: string): Evaluation => ({ ...base, status: 'incompatible', reason });

  if (profile.unsupported) return no(profile.unsupported);
  const engine = system.engines[t.llm_engine];

  if (!gpuEngine) {
    if (!engine.available) return no(`${t.llm_engine} is not available: ${engine.detail}`);
    return { ...base, status: 'runnable', reason: 'runs on the CPU' };
  }

  const visible = system.gpus;
  if (!visible.length) return no(`needs ${t.gpu || t.gpu_device ? wanted(profile) : 'a GPU'}; no GPU is visible${system.gpuSource ? ` (${system.gpuSource})` : ''}`);
  const matching = visible.filter((g) => gpuMatches(profile, g));
  if (!matching.length) return no(`needs ${wanted(profile)}; this system has ${describeGpus(visible)}`);
  const needGpus = opts.tensorParallelSize || opts.pipelineParallelSize ? tp * pp : Math.max(t.number_of_gpus, tp * pp);
  const usable = matching.some((g) => g.mig) ? matching.filter((g) => g.mig).slice(0, 1) : matching;
  if (usable.length < needGpus) {
    const what = isHardwareSpecific(profile) ? `${usable.length} ${profile.tags.gpu ?? wanted(profile)}` : String(usable.length);
    const mig = usable.some((g) => g.mig) ? '; a MIG slice is a single device' : '';
    return no(`needs ${needGpus} GPUs (tp${tp} × pp${pp}); ${what} visible${mig}`);
  }
  const gpus = usable.slice(0, needGpus);
  const minCc = MIN_COMPUTE_CAPABILITY[t.precision];
  if (minCc !== undefined) {
    const weakest = gpus.reduce<GpuInfo | undefined>((w, g) => ((ccValue(g.computeCapability) ?? 0) < (ccValue(w?.computeCapability) ?? Infinity) ? g : w), undefined);
    const cc = ccValue(weakest?.computeCapability);
    if (cc === undefined) return no(`${t.precision} needs compute capability ≥ ${ccText(minCc)}; ${weakest?.product ?? 'the GPU'}'s is unknown`);
    if (cc < minCc) return no(`${t.precision} needs compute capability ≥ ${ccText(minCc)}; ${weakest!.product} has ${ccText(cc)}`);
  }

  const mem = estimateMemory(manifest, profile, gpus, tp * pp, maxModelLen);
  const gpuName = gpus[0]!.mig ? `${gpus[0]!.product} MIG ${gpus[0]!.mig.profile}` : gpus[0]!.product;
  if (mem && mem.weightsGiB + mem.overheadGiB > mem.usableGiB) {
    return no(`weights need ${fmt(mem.weightsGiB)} GiB per GPU; ${gpuName} offers ${fmt(mem.usableGiB)} GiB (${Math.round(GPU_MEMORY_UTILIZATION * 100)}% of ${fmt(mem.totalGiB)})`);
  }
  if (!engine.available) return { ...base, gpus, memory: mem, status: 'incompatible', reason: `${t.llm_engine} is not available: ${engine.detail}` };

  const where = `${gpus.length}× ${gpuName} (GPU ${gpus.map((g) => g.cudaId).join(',')})`;
  if (mem && maxModelLen !== undefined && mem.needGiB > mem.usableGiB) {
    const kvPerGpuPerToken = (manifest.model.kvBytesPerToken ?? 0) / (tp * pp) / GIB;
    const room = mem.usableGiB - mem.weightsGiB - mem.overheadGiB;
    const fitRaw = Math.floor(room / kvPerGpuPerToken);
    const fit = Math.floor(fitRaw / 1024) * 1024;
    if (fit < Math.min(MIN_USEFUL_MODEL_LEN, maxModelLen)) {
      return { ...base, gpus, memory: mem, status: 'incompatible', reason: `weights need ${fmt(mem.weightsGiB)} GiB per GPU, leaving room for only ${Math.max(0, fitRaw)} tokens of KV cache on ${gpuName}` };
    }
    return {
      ...base,
      gpus,
      memory: mem,
      status: 'low_memory',
      fitMaxModelLen: fit,
      reason: `needs ${fmt(mem.needGiB)} GiB per GPU for max_model_len ${maxModelLen} (weights ${fmt(mem.weightsGiB)} + KV cache ${fmt(mem.kvCacheGiB)} + overhead ${fmt(mem.overheadGiB)}); ${gpuName} offers ${fmt(mem.usableGiB)} GiB; max_model_len ${fit} fits (NIM_MAX_MODEL_LEN=${fit})`,
    };
  }
  const memText = mem ? `; ~${fmt(mem.needGiB)} of ${fmt(mem.usableGiB)} GiB per GPU` : '; memory not estimated (the manifest gives no parameter count)';
  return { ...base, gpus, memory: mem, status: 'runnable', reason: `${where}${memText}` };
}

/** Per-GPU memory need of a profile on these GPUs; undefined when the manifest lacks the numbers. */
export function estimateMemory(manifest: Manifest, profile: Profile, gpus: GpuInfo[], shards: number, maxModelLen: number | undefined): MemoryEstimate | undefined {
  const m = manifest.model;
  if (!m.parameters || !gpus.length) return undefined;
  const totalMiB = Math.min(...gpus.map((g) => g.memoryMiB));
  if (!totalMiB) return undefined;
  const weightsGiB = (m.parameters * m.bytesPerWeight[profile.tags.precision]) / shards / GIB;
  const kvCacheGiB = m.kvBytesPerToken && maxModelLen ? (m.kvBytesPerToken * maxModelLen) / shards / GIB : 0;
  const totalGiB = totalMiB / 1024;
  return {
    weightsGiB,
    kvCacheGiB,
    overheadGiB: RUNTIME_OVERHEAD_GIB,
    needGiB: weightsGiB + kvCacheGiB + RUNTIME_OVERHEAD_GIB,
    usableGiB: totalGiB * GPU_MEMORY_UTILIZATION,
    totalGiB,
  };
}

export function evaluateProfiles(manifest: Manifest, system: SystemInfo, opts: SelectOptions): Evaluation[] {
  return manifest.profiles.map((p) => evaluateProfile(manifest, p, system, opts));
}

/** NIM's order (see the top of this file). Negative: `a` is preferred. */
export function compareEvaluations(a: Evaluation, b: Evaluation, opts: SelectOptions): number {
  const pa = a.profile.tags;
  const pb = b.profile.tags;
  const by = (x: number, y: number) => x - y;
  const loraRank = (e: Evaluation) => (e.profile.tags.feat_lora === opts.lora ? 0 : 1);
  const nativeRank = (e: Evaluation) =>
    (opts.tensorParallelSize !== undefined && e.profile.tags.tp !== opts.tensorParallelSize ? 1 : 0) +
    (opts.pipelineParallelSize !== undefined && e.profile.tags.pp !== opts.pipelineParallelSize ? 1 : 0);
  const kindRank = (e: Evaluation) => (e.profile.tags.profile === opts.preference ? 0 : 1);
  const gpuCount = (e: Evaluation) => e.tp * e.pp;
  return (
    by(loraRank(a), loraRank(b)) ||
    by(isHardwareSpecific(a.profile) ? 0 : 1, isHardwareSpecific(b.profile) ? 0 : 1) ||
    by(ENGINES.indexOf(pa.llm_engine), ENGINES.indexOf(pb.llm_engine)) ||
    by(PRECISIONS.indexOf(pa.precision), PRECISIONS.indexOf(pb.precision)) ||
    by(nativeRank(a), nativeRank(b)) ||
    by(kindRank(a), kindRank(b)) ||
    (opts.preference === 'latency' ? by(gpuCount(b), gpuCount(a)) : by(gpuCount(a), gpuCount(b))) ||
    (a.profile.id < b.profile.id ? -1 : a.profile.id > b.profile.id ? 1 : 0)
  );
}

export function rankEvaluations(evals: Evaluation[], opts: SelectOptions): Evaluation[] {
  return [...evals].sort((a, b) => compareEvaluations(a, b, opts));
}

export interface ProfileGroups {
  /** Runnable, best first. */
  runnable: Evaluation[];
  /** Low memory, in manifest order ranked the same way. */
  lowMemory: Evaluation[];
  incompatible: Evaluation[];
}

export function groupEvaluations(evals: Evaluation[], opts: SelectOptions): ProfileGroups {
  return {
    runnable: rankEvaluations(evals.filter((e) => e.status === 'runnable'), opts),
    lowMemory: rankEvaluations(evals.filter((e) => e.status === 'low_memory'), opts),
    incompatible: evals.filter((e) => e.status === 'incompatible'),
  };
}

/** Find a profile by full id, unique id prefix (≥ 8 hex), or readable name. `default` → undefined. */
export function findProfile(manifest: Manifest, requested: string): Profile | undefined | 'ambiguous' {
  const r = requested.trim();
  const lower = r.toLowerCase();
  const exact = manifest.profiles.find((p) => p.id === lower || p.name.toLowerCase() === lower);
  if (exact) return exact;
  if (/^[0-9a-f]{8,63}$/i.test(r)) {
    const hits = manifest.profiles.filter((p) => p.id.startsWith(lower));
    if (hits.length > 1) return 'ambiguous';
    return hits[0];
  }
  return undefined;
}

export class SelectionError extends ConfigError {
  constructor(message: string) {
    super(message, 'no_profile');
    this.name = 'SelectionError';
  }
}

export interface Selection extends ProfileGroups {
  chosen: Evaluation;
  /** automatic: ranked first; requested: NIM_MODEL_PROFILE; forced: requested but not runnable (NIM_MANIFEST_ALLOW_UNSAFE). */
  how: 'automatic' | 'requested' | 'forced';
  /** Things worth logging (forced profiles, overrides). */
  warnings: string[];
}

const short = (e: Evaluation) => `${e.profile.name} (${e.profile.id.slice(0, 12)})`;

function runnableHint(groups: ProfileGroups): string {
  if (groups.runnable.length) {
    const list = groups.runnable.slice(0, 5).map(short).join(', ');
    return `runnable here: ${list}${groups.runnable.length > 5 ? `, and ${groups.runnable.length - 5} more` : ''}`;
  }
  return 'no profile of this manifest can run here';
}

function lowMemoryHint(groups: ProfileGroups): string {
  const e = groups.lowMemory[0];
  return e ? `; with less context ${e.profile.name} would: set NIM_MAX_MODEL_LEN=${e.fitMaxModelLen}` : '';
}

function systemText(system: SystemInfo): string {
  return system.gpus.length ? describeGpus(system.gpus) : `no GPU${system.gpuSource ? ` (${system.gpuSource})` : ''}`;
}

/** Pick the profile to run, or throw SelectionError with one line that says why and what would work. */
export function selectProfile(manifest: Manifest, system: SystemInfo, opts: SelectOptions): Selection {
  const evals = evaluateProfiles(manifest, system, opts);
  const groups = groupEvaluations(evals, opts);
  const warnings: string[] = [];
  const requested = opts.requested?.trim();
  if (requested && requested.toLowerCase() !== 'default') {
    const found = findProfile(manifest, requested);
    if (found === 'ambiguous') throw new SelectionError(`NIM_MODEL_PROFILE=${requested}: that id prefix matches several profiles; give more of the id or the readable name`);
    if (!found) {
      throw new SelectionError(`NIM_MODEL_PROFILE=${requested}: no such profile in ${manifest.file} (${manifest.profiles.length} profiles); ${runnableHint(groups)}`);
    }
    const e = evals.find((x) => x.profile === found)!;
    if (e.status === 'runnable') return { ...groups, chosen: e, how: 'requested', warnings };
    if (!opts.allowUnsafe) {
      const why = e.status === 'low_memory' ? `low memory: ${e.reason}` : e.reason;
      throw new SelectionError(`NIM_MODEL_PROFILE=${requested} (${found.name}) cannot run on ${systemText(system)}: ${why}; ${runnableHint(groups)}; NIM_MANIFEST_ALLOW_UNSAFE=1 starts it anyway`);
    }
    warnings.push(`NIM_MANIFEST_ALLOW_UNSAFE: starting ${found.name} although ${e.reason}`);
    return { ...groups, chosen: e, how: 'forced', warnings };
  }
  const best = groups.runnable[0];
  if (best) return { ...groups, chosen: best, how: 'automatic', warnings };
  throw new SelectionError(noRunnableMessage(manifest, system, groups));
}

function noRunnableMessage(manifest: Manifest, system: SystemInfo, groups: ProfileGroups): string {
  const head = `no profile of ${manifest.model.id} can run on ${systemText(system)}`;
  if (groups.lowMemory.length) {
    const e = groups.lowMemory[0]!;
    const n = groups.lowMemory.length;
    return `${head} with max_model_len ${e.maxModelLen} (${n} profile${n > 1 ? 's' : ''} low on GPU memory); ${e.profile.name} fits with NIM_MAX_MODEL_LEN=${e.fitMaxModelLen}`;
  }
  if (!system.gpus.length && !manifest.profiles.some((p) => p.tags.llm_engine === 'llamacpp')) {
    return `${head}: every profile needs a GPU; to run on the CPU, point NIM_MODEL_PATH at a .gguf file`;
  }
  // Hardware fits but the engine is missing: the engine check comes after the hardware ones, so
  // these profiles would run once it is installed. That is the actionable news.
  const engineBlocked = rankEvaluations(groups.incompatible.filter((e) => !system.engines[e.profile.tags.llm_engine].available && !e.profile.unsupported && e.reason.includes(' is not available: ')), {
    preference: 'latency',
    lora: false,
    allowUnsafe: false,
  });
  if (engineBlocked.length) {
    const missing = [...new Set(engineBlocked.map((e) => e.profile.tags.llm_engine))].map((k) => `${k} (${system.engines[k].detail})`);
    return `${head}: this hardware suits ${engineBlocked.length} profile${engineBlocked.length > 1 ? 's' : ''} (best: ${engineBlocked[0]!.profile.name}) but their engine is not installed: ${missing.join(', ')}`;
  }
  // The most common reasons, each once.
  const counts = new Map<string, number>();
  for (const e of groups.incompatible) counts.set(e.reason, (counts.get(e.reason) ?? 0) + 1);
  const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([r, n]) => (n > 1 ? `${r} (${n} profiles)` : r));
  return `${head}: ${top.join('; ')}${lowMemoryHint(groups)}`;
}

// ---------------------------------------------------------------------------------------------
// listing (list-model-profiles)

export interface ListedProfile {
  id: string;
  name: string;
  tags: Record<string, string>;
  status: ProfileStatus;
  reason: string;
  selected: boolean;
  /** low_memory: the max_model_len that fits. */
  fitMaxModelLen?: number | undefined;
  gpus: string[];
  /** Tool-call / reasoning parsers and chat template the engine would start with (plan.ts fills it). */
  chat?: Record<string, string> | undefined;
}

export interface ProfileListing {
  manifest: { file: string; format: Manifest['format']; model: string; servedName: string };
  system: {
    gpus: { index: number; cudaId: string; name: string; product: string; deviceId: string | undefined; memoryMiB: number; computeCapability: string | undefined; mig?: string | undefined }[];
    gpuSource: string | undefined;
    notes: string[];
    engines: EngineAvailability;
  };
  preference: 'latency' | 'throughput';
  /** The profile `serve` would start, or undefined with `error` saying why none. */
  selected: { id: string; name: string; how: Selection['how'] } | undefined;
  error: string | undefined;
  runnable: ListedProfile[];
  lowMemory: ListedProfile[];
  incompatible: ListedProfile[];
}

/** Everything list-model-profiles shows; never throws for an unrunnable system (it says so). */
export function listProfileGroups(manifest: Manifest, system: SystemInfo, opts: SelectOptions): ProfileListing {
  let selection: Selection | undefined;
  let error: string | undefined;
  let groups: ProfileGroups;
  try {
    selection = selectProfile(manifest, system, opts);
    groups = selection;
  } catch (err) {
    if (!(err instanceof SelectionError)) throw err;
    error = err.message;
    groups = groupEvaluations(evaluateProfiles(manifest, system, opts), opts);
  }
  const chosenId = selection?.chosen.profile.id;
  const item = (e: Evaluation): ListedProfile => ({
    id: e.profile.id,
    name: e.profile.name,
    tags: { ...nimTags(e.profile.tags), ...(e.profile.extraTags ?? {}) },
    status: e.status,
    reason: e.reason,
    selected: e.profile.id === chosenId,
    fitMaxModelLen: e.fitMaxModelLen,
    gpus: e.gpus.map((g) => g.cudaId),
  });
  return {
    manifest: { file: manifest.file, format: manifest.format, model: manifest.model.id, servedName: manifest.model.servedName },
    system: {
      gpus: system.gpus.map((g) => ({
        index: g.index,
        cudaId: g.cudaId,
        name: g.name,
        product: g.product,
        deviceId: g.deviceId,
        memoryMiB: g.memoryMiB,
        computeCapability: g.computeCapability,
        mig: g.mig?.profile,
      })),
      gpuSource: system.gpuSource,
      notes: system.notes ?? [],
      engines: system.engines,
    },
    preference: opts.preference,
    selected: selection ? { id: selection.chosen.profile.id, name: selection.chosen.profile.name, how: selection.how } : undefined,
    error,
    runnable: groups.runnable.map(item),
    lowMemory: groups.lowMemory.map(item),
    incompatible: groups.incompatible.map(item),
  };
}
