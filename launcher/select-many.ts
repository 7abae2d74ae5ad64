// Several models on one machine, as a pure function: a profile per model AND the GPUs
// each engine gets (CUDA_VISIBLE_DEVICES), so that all fit. Each model's profiles are judged and
// ranked by select.ts's rules (evaluateProfile / compareEvaluations), against the GPUs still free.
//
//   1. exclusive: every engine gets its own GPUs. Depth-first over the models in file order, each
//      trying its runnable profiles best first: the first complete plan wins, so an earlier model
//      keeps its best profile unless that leaves no room for a later one (a 70B latency profile
//      that would take all 8 GPUs falls back to its 4-GPU one when two more models must fit).
//   2. shared, only if 1 finds nothing: single-GPU vLLM engines may share a GPU, each limited by
//      --gpu-memory-utilization to its estimated need (weights + KV for max_model_len + overhead),
//      the needs summing to at most select.ts's GPU_MEMORY_UTILIZATION of the GPU. Only vLLM:
//      it sizes itself from that fraction; TensorRT-LLM and multi-GPU engines claim whole GPUs.
//      E.g. 1× L40S with an 8B chat model and an embedding model. vLLM checks at start that the
//      GPU has total × fraction free, so engines sharing a GPU must be started one after another.
//   3. otherwise one line: the first model that does not fit, what the models before it took,
//      and what it would need (its best profile alone on this machine).
// GPU topology (NVLink islands, NUMA) is not considered: an engine gets the lowest free indices.
import { describeGpus, type GpuInfo } from './gpus.js';
import type { Manifest } from './manifest.js';
import { compareEvaluations, evaluateProfiles, selectProfile, SelectionError, type Evaluation, type SelectOptions, type SystemInfo } from './select.js';

export interface ModelRequest {
  name: string;
  manifest: Manifest;
  opts: SelectOptions;
  /** From the models file: a GPU count, or the exact GPU indices (nvidia-smi numbering). */
  gpus?: { count: number } | { indices: number[] } | undefined;
}

export interface Placement {
  name: string;
  chosen: Evaluation;
  /** The engine's CUDA_VISIBLE_DEVICES; undefined for a CPU engine. */
  cudaVisibleDevices: string | undefined;
  /** Set when the GPU is shared: the engine's --gpu-memory-utilization. */
  gpuMemoryUtilization: number | undefined;
}

export interface MultiPlan {
  mode: 'exclusive' | 'shared';
  placements: Placement[];
}

/** Depth-first search steps before giving up (each step evaluates one model's profiles). */
const SEARCH_BUDGET = 20_000;

interface Slot {
  eval: Evaluation;
  /** GPU cudaIds this engine uses. */
  gpuIds: string[];
  /** GiB this engine needs on its (single, shared) GPU; undefined for exclusive use. */
  sharedNeedGiB: number | undefined;
}

const gpuIdsOf = (e: Evaluation) => e.gpus.map((g) => g.cudaId);
const shareable = (e: Evaluation) => e.profile.tags.llm_engine === 'vllm' && e.gpus.length === 1 && e.memory !== undefined;

/** The GPUs a model may use at all (its pin), before anything is taken. */
function allowedGpus(req: ModelRequest, system: SystemInfo): GpuInfo[] {
  const pin = req.gpus;
  if (pin && 'indices' in pin) return system.gpus.filter((g) => pin.indices.includes(g.index));
  return system.gpus;
}

function fitsPin(req: ModelRequest, e: Evaluation): boolean {
  const pin = req.gpus;
  if (!pin || e.profile.tags.llm_engine === 'llamacpp') return true;
  return 'count' in pin ? e.gpus.length === pin.count : e.gpus.length === pin.indices.length;
}

function ranked(req: ModelRequest, system: SystemInfo, gpus: GpuInfo[]): Evaluation[] {
  return evaluateProfiles(req.manifest, { ...system, gpus }, req.opts)
    .filter((e) => e.status === 'runnable' && fitsPin(req, e))
    .sort((a, b) => compareEvaluations(a, b, req.opts));
}

function search(reqs: ModelRequest[], system: SystemInfo, share: boolean): { slots: Slot[] | undefined; deepest: number; deepestSlots: Slot[] } {
  let steps = 0;
  let deepest = -1;
  let deepestSlots: Slot[] = [];
  const visit = (i: number, slots: Slot[]): Slot[] | undefined => {
    if (i > deepest) {
      deepest = i;
      deepestSlots = slots;
    }
    if (i === reqs.length) return slots;
    if (++steps > SEARCH_BUDGET) return undefined;
    const req = reqs[i]!;
    const used = new Set(slots.flatMap((s) => s.gpuIds));
    const allowed = allowedGpus(req, system);
    // Exclusive candidates: profiles judged against the GPUs nobody uses yet.
    for (const e of ranked(req, system, allowed.filter((g) => !used.has(g.cudaId)))) {
      const r = visit(i + 1, [...slots, { eval: e, gpuIds: gpuIdsOf(e), sharedNeedGiB: share && shareable(e) ? e.memory!.needGiB : undefined }]);
      if (r) return r;
    }
    if (!share) return undefined;
    // Shared candidates: a single-GPU vLLM profile on a GPU whose occupants are all shareable.
    for (const g of allowed.filter((x) => used.has(x.cudaId))) {
      const occupants = slots.filter((s) => s.gpuIds.includes(g.cudaId));
      if (occupants.some((s) => s.sharedNeedGiB === undefined)) continue;
      const taken = occupants.reduce((sum, s) => sum + s.sharedNeedGiB!, 0);
      for (const e of ranked(req, system, [g]).filter(shareable)) {
        if (taken + e.memory!.needGiB > e.memory!.usableGiB) continue;
        const r = visit(i + 1, [...slots, { eval: e, gpuIds: [g.cudaId], sharedNeedGiB: e.memory!.needGiB }]);
        if (r) return r;
      }
    }
    return undefined;
  };
  return { slots: visit(0, []), deepest, deepestSlots };
}

function toPlan(reqs: ModelRequest[], slots: Slot[], mode: MultiPlan['mode']): MultiPlan {
  const placements = slots.map((s, i): Placement => {
    const sharedWith = slots.filter((o) => o !== s && o.gpuIds.some((id) => s.gpuIds.includes(id)));
    // Whole percent, rounded up so the engine gets at least its estimated need; the needs sum to
    // at most 90% of the GPU, so n sharing engines stay below 90% + n%.
    const fraction = sharedWith.length && s.eval.memory ? Math.ceil((s.sharedNeedGiB! / s.eval.memory.totalGiB) * 100 - 1e-9) / 100 : undefined;
    return {
      name: reqs[i]!.name,
      chosen: s.eval,
      cudaVisibleDevices: s.gpuIds.length ? s.gpuIds.join(',') : undefined,
      gpuMemoryUtilization: fraction,
    };
  });
  return { mode, placements };
}

const profileText = (e: Evaluation) => `${e.profile.name} on ${e.gpus.length ? `GPU ${gpuIdsOf(e).join(',')}` : 'the CPU'}`;

/**
 * Plan every model, or throw SelectionError with one line saying which model does not fit and
 * what would.
 */
export function planModels(reqs: ModelRequest[], system: SystemInfo): MultiPlan {
  for (const r of reqs) {
    if (r.gpus && 'indices' in r.gpus) {
      const missing = r.gpus.indices.filter((i) => !system.gpus.some((g) => g.index === i));
      if (missing.length) throw new SelectionError(`model ${r.name}: gpus [${r.gpus.indices.join(', ')}]: GPU ${missing.join(', ')} is not visible; this system has ${describeGpus(system.gpus)}`);
    }
  }
  const exclusive = search(reqs, system, false);
  if (exclusive.slots) return toPlan(reqs, exclusive.slots, 'exclusive');
  const shared = search(reqs, system, true);
  if (shared.slots) return toPlan(reqs, shared.slots, 'shared');

  // Report the first model the best attempt could not place.
  const best = shared.deepest >= exclusive.deepest ? shared : exclusive;
  const failing = reqs[best.deepest]!;
  const aloneGpus = allowedGpus(failing, system);
  const alone = ranked(failing, system, aloneGpus);
  if (!alone.length) {
    try {
      selectProfile(failing.manifest, { ...system, gpus: aloneGpus }, failing.opts);
    } catch (err) {
      if (err instanceof SelectionError) throw new SelectionError(`model ${failing.name} cannot run here even alone: ${err.message}`);
      throw err;
    }
    throw new SelectionError(`model ${failing.name} cannot run here even alone: no profile fits its gpus setting`);
  }
  // What would do: its profile needing the fewest GPUs (best ranked among those).
  const smallest = alone.reduce((m, e) => (e.gpus.length < m.gpus.length ? e : m));
  const taken = best.deepestSlots.map((s, i) => `${reqs[i]!.name} takes ${profileText(s.eval)}`);
  const used = new Set(best.deepestSlots.flatMap((s) => s.gpuIds));
  const free = system.gpus.filter((g) => !used.has(g.cudaId)).length;
  const need = smallest.gpus.length;
  throw new SelectionError(
    `model ${failing.name} does not fit on ${describeGpus(system.gpus)} next to the models before it` +
      `${taken.length ? ` (${taken.join('; ')})` : ''}: ${free} GPU${free === 1 ? '' : 's'} left, ` +
      `and the smallest profile that runs it alone is ${smallest.profile.name}, needing ${need} GPU${need === 1 ? '' : 's'}` +
      `${need > free ? ` (add ${need - free} GPU${need - free === 1 ? '' : 's'}, remove a model, or pin a smaller profile)` : ' (it could share a GPU only as a single-GPU vLLM profile within the free memory)'}`,
  );
}
