// Several models behind one gateway, on the start path: which models (NIM_MODELS_FILE, or the CPU
// demo's two when nothing names a model), a profile and GPUs for each (select-many.ts, the same
// rules as one model's selection), then each model's engine command (plan.ts planEngine).
//
// Per-model settings come from the models file entry only (name, source, max_model_len, tp/pp,
// passthrough_args, peft_source); the global settings still give everything shared (cache, media,
// engine threads, timeouts). The CPU demo's chat model takes the global settings as one model
// does today (NIM_SERVED_MODEL_NAME, NIM_PASSTHROUGH_ARGS, ... apply to it).
import { join } from 'node:path';
import { quote } from 'shell-quote';
import { ConfigError, type Settings } from '../core/config.js';
import type { ModelTask } from '../core/engine.js';
import { StartupError } from '../core/startup-errors.js';
import { listProfileGroups, selectOptions, type ProfileListing } from './select.js';
import { DEMO_MANIFEST, manifestsDir } from './manifest.js';
import { loadModelsFile, type ModelEntry } from './models-file.js';
import { planEngine, probeSystem, resolveManifest, withChatFeatures, type LaunchPlan, type PlanContext, type ResolvedManifest } from './plan.js';
import { planModels, type ModelRequest } from './select-many.js';
import { TINY_EMBED_NAME } from './prepare/tiny-embed.js';
import { describeGpus } from './gpus.js';

export const DEMO_EMBED_MANIFEST = 'portico-tiny-embed.yaml';

export interface ModelLaunch {
  name: string;
  task: ModelTask;
  /** The model's own settings (what its engine was planned from). */
  settings: Settings;
  /** A spawned engine: its plan; undefined for an engine_url model. */
  plan: LaunchPlan | undefined;
  /** An engine someone else runs (models file `engine_url`). */
  engineUrl: string | undefined;
  /** The engine's CUDA_VISIBLE_DEVICES (GPU engines). */
  cudaVisibleDevices: string | undefined;
  /** Set when engines share a GPU: this engine's --gpu-memory-utilization. */
  gpuMemoryUtilization: number | undefined;
  /** Everything list-model-profiles shows for this model (spawned engines). */
  listing: ProfileListing | undefined;
}

export interface ModelsPlan {
  /** exclusive: every engine has its own GPUs (or the CPU); shared: some share a GPU, so they start one after another. */
  mode: 'exclusive' | 'shared';
  /** `NIM_MODELS_FILE=...`, or the CPU demo. */
  source: string;
  models: ModelLaunch[];
}

/** The models to serve when there are several: the models file's, or the CPU demo's; undefined: one model, as before. */
export async function modelEntries(settings: Settings, root?: string): Promise<{ entries: ModelEntry[]; source: string; demo: boolean } | undefined> {
  if (settings.modelsFile) {
    // The file names each model's source: a second source in the environment is a mistake, not a fallback.
    const other = (['NIM_MODEL_PATH', 'NIM_MANIFEST_PATH', 'NIM_ENGINE_URL'] as const).find((n) => ({ NIM_MODEL_PATH: settings.modelPath, NIM_MANIFEST_PATH: settings.manifestPath, NIM_ENGINE_URL: settings.engineUrl })[n]);
    if (other) throw new ConfigError(`NIM_MODELS_FILE=${settings.modelsFile}: not with ${other} (each model's source is in the file)`);
    return { entries: await loadModelsFile(settings.modelsFile), source: `NIM_MODELS_FILE=${settings.modelsFile}`, demo: false };
  }
  if (settings.modelPath || settings.manifestPath || settings.engineUrl) return undefined;
  const dir = root ? join(root, 'manifests') : manifestsDir();
  const entry = (name: string, manifest: string, task: ModelTask): ModelEntry => ({
    name,
    source: { kind: 'manifest', manifest: join(dir, manifest), profile: undefined },
    task,
    maxModelLen: undefined,
    tensorParallelSize: undefined,
    pipelineParallelSize: undefined,
    passthroughArgs: [],
    peftSource: undefined,
    gpus: undefined,
    mmprojPath: undefined,
  });
  return {
    entries: [entry(settings.servedModelName ?? 'portico/tiny-vlm', DEMO_MANIFEST, 'chat'), entry(TINY_EMBED_NAME, DEMO_EMBED_MANIFEST, 'embedding')],
    source: 'the CPU demo (no NIM_MODEL_PATH, NIM_MANIFEST_PATH, NIM_ENGINE_URL or NIM_MODELS_FILE)',
    demo: true,
  };
}

/** One entry's settings: its own fields over the shared ones. */
export function entrySettings(global: Settings, e: ModelEntry): Settings {
  const src = e.source;
  return {
    ...global,
    modelsFile: undefined,
    modelPath: src.kind === 'model_path' ? src.modelPath : undefined,
    manifestPath: src.kind === 'manifest' ? src.manifest : undefined,
    modelProfile: src.kind === 'manifest' ? src.profile : undefined,
    engineUrl: src.kind === 'engine_url' ? src.engineUrl : undefined,
    servedModelName: e.name,
    maxModelLen: e.maxModelLen,
    tensorParallelSize: e.tensorParallelSize,
    pipelineParallelSize: e.pipelineParallelSize,
    passthroughArgs: e.passthroughArgs.length ? quote(e.passthroughArgs) : undefined,
    peftSource: e.peftSource,
  };
}

/** A start-up failure about one model: the same code, its line naming the model. */
function named(name: string, err: unknown): unknown {
  if (err instanceof StartupError) return new StartupError(err.startupCode, `model ${name}: ${err.message}`, { cause: err });
  return err;
}

function aboutModel<T>(name: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw named(name, err);
  }
}

/**
 * Plan every model: profiles and GPUs jointly, then each engine's command on its own port
 * (`ports` gives them; a dry run passes 0s). Throws one line naming the model that does not fit.
 */
export async function planModelLaunches(
  settings: Settings,
  found: { entries: ModelEntry[]; source: string; demo: boolean },
  ctx: PlanContext & { root?: string | undefined; port: () => Promise<number> },
): Promise<ModelsPlan> {
  const env = ctx.env ?? process.env;
  const items = found.entries.map((entry, i) => ({ entry, settings: found.demo && i === 0 ? settings : entrySettings(settings, entry) }));
  const spawned = items.filter((i) => i.entry.source.kind !== 'engine_url');
  const resolved = spawned.map((i) => aboutModel(i.entry.name, () => withMmproj(resolveManifest(i.settings, ctx.root), i.entry)));
  const system = await probeSystem(settings, env, ctx.root);
  ctx.log(`[models] ${items.length} models from ${found.source}`);
  ctx.log(`[models] GPUs: ${system.gpus.length ? describeGpus(system.gpus) : 'none'} — ${system.gpuSource ?? ''}`);
  const reqs: ModelRequest[] = spawned.map((i, k) => ({ name: i.entry.name, manifest: resolved[k]!.manifest, opts: selectOptions(i.settings), gpus: i.entry.gpus }));
  // planModels' refusal names the model that does not fit.
  const placed = reqs.length ? planModels(reqs, system) : { mode: 'exclusive' as const, placements: [] };

  const models: ModelLaunch[] = [];
  for (const item of items) {
    const { entry } = item;
    const k = spawned.indexOf(item);
    if (k < 0) {
      const url = (entry.source as { engineUrl: string }).engineUrl;
      ctx.log(`[models] ${entry.name} (${entry.task}): the engine at ${url}; nothing spawned`);
      models.push({ name: entry.name, task: entry.task, settings: item.settings, plan: undefined, engineUrl: url, cudaVisibleDevices: undefined, gpuMemoryUtilization: undefined, listing: undefined });
      continue;
    }
    const placement = placed.placements[k]!;
    const chosen = placement.chosen;
    const engineKind = chosen.profile.tags.llm_engine;
    // What the plan adds to the engine's own arguments (the entry's passthrough_args come after: they win).
    const extra: string[] = [];
    if (placement.gpuMemoryUtilization !== undefined) extra.push('--gpu-memory-utilization', String(placement.gpuMemoryUtilization));
    // llama-server serves /v1/embeddings only with --embeddings; -kvu keeps mean pooling right for a list of inputs at -np 2 (launcher/prepare/tiny-embed.ts).
    if (entry.task === 'embedding' && engineKind === 'llamacpp') extra.push('--embeddings', '-kvu');
    const s: Settings = extra.length ? { ...item.settings, passthroughArgs: [quote(extra), item.settings.passthroughArgs].filter(Boolean).join(' ') } : item.settings;
    const opts = selectOptions(s);
    const listing = withChatFeatures(listProfileGroups(resolved[k]!.manifest, system, opts), resolved[k]!.manifest, s);
    const where = placement.cudaVisibleDevices ? `GPU ${placement.cudaVisibleDevices}${placement.gpuMemoryUtilization ? ` (shared, --gpu-memory-utilization ${placement.gpuMemoryUtilization})` : ''}` : 'the CPU';
    ctx.log(`[models] ${entry.name} (${entry.task}): ${chosen.profile.name} (${chosen.profile.id}) on ${where}: ${chosen.reason}`);
    const enginePort = await ctx.port();
    const plan = await aboutModelAsync(entry.name, () =>
      planEngine(s, resolved[k]!, chosen, { ...ctx, env, enginePort, selected: opts.requested ? 'requested' : 'automatic', listing }),
    );
    models.push({
      name: entry.name,
      task: entry.task,
      settings: s,
      plan,
      engineUrl: undefined,
      cudaVisibleDevices: placement.cudaVisibleDevices,
      gpuMemoryUtilization: placement.gpuMemoryUtilization,
      listing,
    });
  }
  return { mode: placed.mode, source: found.source, models };
}

async function aboutModelAsync<T>(name: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw named(name, err);
  }
}

/** A models file's mmproj_path: the vision projector for a GGUF model_path. */
function withMmproj(r: ResolvedManifest, e: ModelEntry): ResolvedManifest {
  if (!e.mmprojPath) return r;
  return { ...r, manifest: { ...r.manifest, model: { ...r.manifest.model, mmproj: e.mmprojPath, vision: r.manifest.model.vision ?? { maxImagesPerPrompt: 1 } } } };
}
