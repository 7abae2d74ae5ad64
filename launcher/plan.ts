// The start-path decision: settings → manifest → GPU inventory + installed engines → profile →
// engine argv. I/O (reading manifests, running nvidia-smi, looking for engines on PATH, building
// llama-server, generating the demo model) happens here at the edges; the decisions are the pure
// functions of manifest.ts, select.ts and engines/*.
//
// Which manifest: NIM_MANIFEST_PATH if set; else a .gguf NIM_MODEL_PATH gets a synthesized
// llama.cpp manifest; else a NIM_MODEL_PATH that names a shipped manifest's model (id, alias,
// source, or a local directory named like it) gets that manifest; else a NIM_MODEL_PATH nobody
// describes gets generic vLLM profiles; else (unset) the CPU demo model.
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parse as shellParse } from 'shell-quote';
import { chatFeatures } from './chat-features.js';
import { ConfigError, type Settings } from '../core/config.js';
import { llamaCppCommand } from './engines/llamacpp.js';
import { trtllmCommand } from './engines/trtllm.js';
import type { EngineCommand, GpuEngineInput, ServedModel } from '../core/engine.js';
import { vllmCommand } from './engines/vllm.js';
import { withLlamaCppLoras } from './lora-llamacpp.js';
import { planLoras, type LoraPlan } from './peft-plan.js';
import { ggufContextLength } from './gguf-context.js';
import { describeGpus, loadGpuCatalog, probeGpus, which, type GpuInventory } from './gpus.js';
import {
  DEMO_MANIFEST,
  genericVllmManifest,
  ggufManifest,
  gpuCatalogFile,
  inspectHfDir,
  isLocalSource,
  loadManifest,
  loadShippedManifests,
  manifestsDir,
  matchManifest,
  nimTags,
  type Manifest,
} from './manifest.js';
import { listProfileGroups, selectOptions, selectProfile, type EngineAvailability, type Evaluation, type ProfileListing, type SystemInfo } from './select.js';
import { ensureLlamaServer, llamaServerPath } from './prepare/build-engine.js';
import { TINY_MMPROJ_FILE, TINY_MODEL_FILE, ensureTinyModel } from './prepare/tiny-model.js';
import { TINY_EMBED_FILE, ensureTinyEmbed } from './prepare/tiny-embed.js';

/** The CPU demo's embedding model (manifests/portico-tiny-embed.yaml), generated like the demo VLM. */
export const TINY_EMBED_SOURCE = 'portico://tiny-embed';

export interface LaunchPlan {
  /** What the dry run prints: id, name, NIM tags, manifest, why it was chosen. */
  profile: Record<string, unknown>;
  engine: EngineCommand;
  model: ServedModel;
  /** The full picture (all groups), for logging and list-model-profiles. */
  listing: ProfileListing;
  /** NIM_PEFT_SOURCE's adapters the engine starts with (absent: LoRA not served). */
  loras?: LoraPlan | undefined;
}

export interface PlanContext {
  /** Port the engine should listen on (127.0.0.1). */
  enginePort: number;
  /** Dry run: describe, do not build or generate anything. */
  dryRun: boolean;
  log: (line: string) => void;
  /** Where PATH (engines, nvidia-smi) and CUDA_VISIBLE_DEVICES come from. Default process.env. */
  env?: NodeJS.ProcessEnv | undefined;
}

export const DEMO_MODEL_NAME = 'portico/tiny-vlm';

/** A start-up refusal: one line, before anything is spawned. */
export class PlanError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'PlanError';
  }
}

// ---------------------------------------------------------------------------------------------
// manifest

export interface ResolvedManifest {
  manifest: Manifest;
  /** Weights to use instead of the profile's source (NIM_MODEL_PATH). */
  sourceOverride: string | undefined;
  /** How it was chosen, for the log. */
  how: string;
}

const looksLocal = (p: string) => isLocalSource(p) || existsSync(p);

export function resolveManifest(settings: Settings, root?: string): ResolvedManifest {
  const dir = root ? join(root, 'manifests') : manifestsDir();
  const modelPath = settings.modelPath;
  if (settings.manifestPath) {
    const manifest = loadManifest(settings.manifestPath);
    if (manifest.format === 'nim-v2') {
      if (!modelPath) {
        throw new PlanError(
          `NIM_MANIFEST_PATH=${settings.manifestPath} is a NIM model_manifest.yaml whose weights (${manifest.model.source || 'none named'}) portico cannot fetch; set NIM_MODEL_PATH to a local copy or a Hugging Face id`,
        );
      }
      if (looksLocal(modelPath) && existsSync(modelPath) && statSync(modelPath).isDirectory()) {
        const facts = inspectHfDir(modelPath);
        manifest.model.maxModelLen = facts.maxModelLen;
        manifest.model.parameters = facts.parameters;
        manifest.model.kvBytesPerToken = facts.kvBytesPerToken;
        if (facts.vision) manifest.model.vision = { maxImagesPerPrompt: 1 };
      }
    }
    return { manifest, sourceOverride: modelPath, how: `NIM_MANIFEST_PATH=${settings.manifestPath}` };
  }
  if (modelPath && /\.gguf$/i.test(modelPath)) {
    const path = resolve(modelPath);
    if (!existsSync(path)) throw new PlanError(`NIM_MODEL_PATH=${modelPath}: no such file`);
    return { manifest: ggufManifest(path, { mmproj: findMmproj(path), maxModelLen: ggufContextLength(path) }), sourceOverride: undefined, how: `NIM_MODEL_PATH=${modelPath} is a GGUF file` };
  }
  if (modelPath) {
    const shipped = loadShippedManifests(dir);
    const hit = matchManifest(modelPath, shipped);
    if (hit) return { manifest: hit, sourceOverride: looksLocal(modelPath) ? resolve(modelPath) : undefined, how: `NIM_MODEL_PATH=${modelPath} matches ${basename(hit.file)}` };
    if (looksLocal(modelPath)) {
      if (!existsSync(modelPath)) throw new PlanError(`NIM_MODEL_PATH=${modelPath}: no such file or directory`);
      const abs = resolve(modelPath);
      const facts = statSync(abs).isDirectory() ? inspectHfDir(abs) : {};
      return { manifest: genericVllmManifest(abs, facts), sourceOverride: undefined, how: `NIM_MODEL_PATH=${modelPath}: no shipped manifest; generic vLLM profiles` };
    }
    return { manifest: genericVllmManifest(modelPath), sourceOverride: undefined, how: `NIM_MODEL_PATH=${modelPath}: no shipped manifest; generic vLLM profiles` };
  }
  return { manifest: loadManifest(join(dir, DEMO_MANIFEST)), sourceOverride: undefined, how: 'no NIM_MODEL_PATH: the CPU demo model' };
}

/** The one `*mmproj*.gguf` next to a GGUF model, if there is exactly one. */
export function findMmproj(model: string): string | undefined {
  try {
    const dir = dirname(model);
    const hits = readdirSync(dir).filter((f) => /mmproj.*\.gguf$/i.test(f) && join(dir, f) !== model);
    return hits.length === 1 ? join(dir, hits[0]!) : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// system

/**
 * Is each engine installed? vLLM and TensorRT-LLM: their CLI on PATH. llama.cpp: a prebuilt
 * binary named by NIM_LLAMA_SERVER_PATH (the CPU container image sets it), else the cached build,
 * else buildable (cmake, git and npm present).
 */
export function probeEngines(settings: Settings, env: NodeJS.ProcessEnv): EngineAvailability {
  const found = (cmd: string) => {
    const p = which(cmd, env);
    return p ? { available: true, detail: p } : { available: false, detail: `\`${cmd}\` not found on PATH` };
  };
  const prebuilt = settings.llamaServerPath;
  const server = llamaServerPath(settings.cachePath);
  let llamacpp;
  if (prebuilt) llamacpp = existsSync(prebuilt) ? { available: true, detail: prebuilt } : { available: false, detail: `NIM_LLAMA_SERVER_PATH=${prebuilt}: no such file` };
  else if (existsSync(server)) llamacpp = { available: true, detail: server };
  else {
    const missing = ['cmake', 'git', 'npm'].filter((c) => !which(c, env));
    llamacpp = missing.length
      ? { available: false, detail: `llama-server is not built (${server}) and ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} missing to build it` }
      : { available: true, detail: `not built yet: built on first start into ${server}` };
  }
  return { vllm: found('vllm'), tensorrt_llm: found('trtllm-serve'), llamacpp };
}

export interface ProbedSystem extends SystemInfo {
  inventory: GpuInventory;
}

export async function probeSystem(settings: Settings, env: NodeJS.ProcessEnv, root?: string): Promise<ProbedSystem> {
  const catalog = loadGpuCatalog(root ? join(root, 'profiles', 'gpus.yaml') : gpuCatalogFile());
  const inventory = await probeGpus(env, catalog, settings.visibleDevices);
  return { gpus: inventory.gpus, gpuSource: inventory.source, notes: inventory.notes, engines: probeEngines(settings, env), inventory };
}

// ---------------------------------------------------------------------------------------------
// engine argv

/** NIM_PASSTHROUGH_ARGS → argv, split like a shell would but never run by one. */
export function splitPassthrough(value: string | undefined): string[] {
  if (!value?.trim()) return [];
  const out: string[] = [];
  for (const t of shellParse(value, (key) => `$${key}`)) {
    if (typeof t === 'string') out.push(t);
    else if ('op' in t && t.op === 'glob') out.push(t.pattern);
    else if ('comment' in t) throw new PlanError(`NIM_PASSTHROUGH_ARGS: "#" starts a comment; quote it if it belongs to an argument`);
    else throw new PlanError(`NIM_PASSTHROUGH_ARGS: shell operator "${'op' in t ? t.op : '?'}" is not allowed (arguments go to the engine, not to a shell)`);
  }
  return out;
}

/** `hf://org/name` → `org/name`; `file:///x` → `/x`; local paths and other URIs unchanged. */
export function engineModelArg(source: string): string {
  if (/^hf:\/\//i.test(source)) return source.slice(5);
  if (/^file:\/\//i.test(source)) return source.slice(7);
  return source;
}

export interface EngineInputs {
  manifest: Manifest;
  chosen: Evaluation;
  settings: Settings;
  port: number;
  /** Weights as the engine takes them (resolved: demo model generated, hf:// stripped). */
  model: string;
  mmproj?: string | undefined;
  /** Executable for the engine (absolute path when found on PATH). */
  command: string;
  /** LoRA adapters the engine starts with (`file`: the GGUF llama.cpp loads). */
  loraModules?: { name: string; path: string; file?: string | undefined }[] | undefined;
  /** The launcher's env, to tell whether HF_HOME is already set. */
  parentEnv: NodeJS.ProcessEnv;
  /** The weights carry their own quantization_config (vLLM must not be given another). */
  checkpointQuantized?: boolean | undefined;
}

/** Pure: the chosen profile + settings → the engine command. */
export function buildEngineCommand(i: EngineInputs): EngineCommand {
  const { chosen, settings, manifest } = i;
  const profile = chosen.profile;
  const servedName = settings.servedModelName ?? manifest.model.servedName;
  const passthrough = splitPassthrough(settings.passthroughArgs);
  const env: Record<string, string> = { ...profile.env };
  if (chosen.gpus.length) {
    // nvidia-smi numbers GPUs in PCI bus order; make CUDA agree, then name exactly the chosen ones.
    env.CUDA_DEVICE_ORDER = 'PCI_BUS_ID';
    env.CUDA_VISIBLE_DEVICES = chosen.gpus.map((g) => g.cudaId).join(',');
  }
  if (profile.tags.llm_engine !== 'llamacpp' && !i.parentEnv.HF_HOME) env.HF_HOME = join(settings.cachePath, 'huggingface');
  const loraLimits = { maxLoras: settings.peft.maxGpuLoras, maxCpuLoras: settings.peft.maxCpuLoras, maxLoraRank: settings.peft.maxLoraRank };
  const media = manifest.model.media;
  const mmLimits = {
    ...(manifest.model.vision ? { image: Math.min(manifest.model.vision.maxImagesPerPrompt, settings.media.maxImages) } : {}),
    ...(media?.video ? { video: settings.media.maxVideos } : {}),
    ...(media?.audio ? { audio: settings.media.maxAudios } : {}),
  };
  const common: GpuEngineInput = {
    command: i.command,
    model: i.model,
    servedName,
    port: i.port,
    tp: chosen.tp,
    pp: chosen.pp,
    maxModelLen: chosen.maxModelLen,
    chat: chatFeatures(manifest, profile.tags.llm_engine, settings),
    profileArgs: profile.args,
    passthrough,
    env,
  };
  switch (profile.tags.llm_engine) {
    case 'vllm':
      return vllmCommand({
        ...common,
        precision: profile.tags.precision,
        lora: profile.tags.feat_lora,
        loraModules: i.loraModules?.map(({ name, path }) => ({ name, path })),
        loraLimits,
        loraRuntime: settings.peft.refreshIntervalS !== undefined,
        mmLimits,
        checkpointQuantized: i.checkpointQuantized,
      });
    case 'tensorrt_llm':
      return trtllmCommand({
        ...common,
        configPath: join(settings.cachePath, 'trtllm', `${profile.id.slice(0, 12)}.yaml`),
        lora: profile.tags.feat_lora,
        loraModules: i.loraModules?.map(({ name, path }) => ({ name, path })),
        loraLimits,
      });
    case 'llamacpp': {
      const cmd = llamaCppCommand({
        binary: i.command,
        model: i.model,
        mmproj: i.mmproj,
        servedName,
        port: i.port,
        contextLength: chosen.maxModelLen ?? 2048,
        threads: settings.engineThreads,
        chat: common.chat,
        extraArgs: [...profile.args, ...passthrough],
      });
      const loras = (i.loraModules ?? []).flatMap((m) => (m.file ? [{ name: m.name, file: m.file }] : []));
      return withLlamaCppLoras({ ...cmd, env: { ...cmd.env, ...env } }, loras);
    }
  }
}

/** Does a local Hugging Face checkpoint declare its own quantization (config.json quantization_config)? */
export function hasQuantizationConfig(model: string): boolean {
  try {
    const cfg = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')) as { quantization_config?: unknown };
    return cfg.quantization_config !== undefined;
  } catch {
    return false;
  }
}

/** Files the engine reads at start (trtllm-serve's --config YAML), written just before the spawn. */
export function writeEngineFiles(engine: EngineCommand): void {
  for (const f of engine.files ?? []) {
    mkdirSync(dirname(f.path), { recursive: true });
    writeFileSync(f.path, f.content);
  }
}

/** Adapters under NIM_PEFT_SOURCE (a directory of directories holding adapter_config.json). */
export function findLoraAdapters(peftSource: string | undefined): { name: string; path: string }[] {
  if (!peftSource || !existsSync(peftSource)) return [];
  try {
    return readdirSync(peftSource, { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(join(peftSource, d.name, 'adapter_config.json')))
      .map((d) => ({ name: d.name, path: join(resolve(peftSource), d.name) }))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------
// the two entry points

// `root` (tests): a directory holding manifests/ and profiles/ to use instead of the package's own
// (repoRoot() in manifest.ts: the nearest ancestor of the module with package.json and manifests/,
// the checkout or /opt/portico in the container image).

/** Everything `list-model-profiles` shows. Throws only for bad manifests or settings. */
export async function listProfiles(settings: Settings, ctx: { env?: NodeJS.ProcessEnv | undefined; root?: string | undefined } = {}): Promise<ProfileListing> {
  const env = ctx.env ?? process.env;
  const { manifest } = resolveManifest(settings, ctx.root);
  const system = await probeSystem(settings, env, ctx.root);
  return withChatFeatures(listProfileGroups(manifest, system, selectOptions(settings)), manifest, settings);
}

/** Each listed profile's tool-call / reasoning parser and chat template (or why they are refused). */
export function withChatFeatures(l: ProfileListing, manifest: Manifest, settings: Settings): ProfileListing {
  const engineOf = new Map(manifest.profiles.map((p) => [p.id, p.tags.llm_engine]));
  const add = (p: ProfileListing['runnable'][number]) => {
    try {
      p.chat = { ...chatFeatures(manifest, engineOf.get(p.id) ?? 'vllm', settings) };
    } catch (err) {
      p.chat = { error: (err as Error).message };
    }
  };
  [...l.runnable, ...l.lowMemory, ...l.incompatible].forEach(add);
  return l;
}

export async function planLaunch(settings: Settings, ctx: PlanContext & { root?: string | undefined }): Promise<LaunchPlan> {
  const env = ctx.env ?? process.env;
  const resolved = resolveManifest(settings, ctx.root);
  const { manifest } = resolved;
  const system = await probeSystem(settings, env, ctx.root);
  const opts = selectOptions(settings);
  const selection = selectProfile(manifest, system, opts);
  const chosen = selection.chosen;
  const profile = chosen.profile;
  const listing = withChatFeatures(listProfileGroups(manifest, system, opts), manifest, settings);

  ctx.log(`[profile] manifest ${manifest.file} (${resolved.how})`);
  ctx.log(`[profile] GPUs: ${system.gpus.length ? describeGpus(system.gpus) : 'none'} — ${system.gpuSource ?? ''}`);
  for (const note of system.inventory.notes) ctx.log(`[profile] ${note}`);
  ctx.log(
    `[profile] ${selection.how === 'automatic' ? 'selected' : selection.how === 'requested' ? 'NIM_MODEL_PROFILE selects' : 'forcing'} ${profile.name} (${profile.id}): ${chosen.reason}` +
      ` [${selection.runnable.length} runnable, ${selection.lowMemory.length} low memory, ${selection.incompatible.length} incompatible]`,
  );
  for (const w of selection.warnings) ctx.log(`[profile] warning: ${w}`);
  return planEngine(settings, resolved, chosen, { ...ctx, env, selected: selection.how, listing });
}

export interface EngineContext extends PlanContext {
  env: NodeJS.ProcessEnv;
  /** How the profile was chosen (what the dry run prints as `selected`). */
  selected: string;
  listing: ProfileListing;
}

/** A chosen profile → the engine command and the served model (weights generated, engine built unless dry). */
export async function planEngine(settings: Settings, resolved: ResolvedManifest, chosen: Evaluation, ctx: EngineContext): Promise<LaunchPlan> {
  const { manifest } = resolved;
  const { env, listing } = ctx;
  const profile = chosen.profile;
  // Weights: NIM_MODEL_PATH, the profile's own checkpoint, or the model's; portico:// is generated.
  let source = resolved.sourceOverride ?? profile.source ?? manifest.model.source;
  let mmprojSource = resolved.sourceOverride ? undefined : (profile.mmproj ?? manifest.model.mmproj);
  if (resolved.sourceOverride && profile.tags.llm_engine === 'llamacpp' && /\.gguf$/i.test(source)) mmprojSource = findMmproj(resolve(source));
  if (source === TINY_EMBED_SOURCE) {
    const dir = join(settings.cachePath, 'models');
    source = ctx.dryRun ? resolve(dir, TINY_EMBED_FILE) : (await ensureTinyEmbed(dir)).model;
  }
  if (source.startsWith('portico://') || mmprojSource?.startsWith('portico://')) {
    const dir = join(settings.cachePath, 'models');
    const demo = ctx.dryRun ? { model: resolve(dir, TINY_MODEL_FILE), mmproj: resolve(dir, TINY_MMPROJ_FILE) } : await ensureTinyModel(dir);
    if (source.startsWith('portico://')) source = demo.model;
    if (mmprojSource?.startsWith('portico://')) mmprojSource = demo.mmproj;
  }
  if (/^ngc:\/\//i.test(source)) throw new PlanError(`${profile.name}: weights at ${source} cannot be fetched by portico; set NIM_MODEL_PATH to a local copy`);
  const model = engineModelArg(source);
  const mmproj = mmprojSource ? engineModelArg(mmprojSource) : undefined;

  let command: string;
  switch (profile.tags.llm_engine) {
    case 'llamacpp':
      command = settings.llamaServerPath || (ctx.dryRun ? llamaServerPath(settings.cachePath) : await ensureLlamaServer(settings.cachePath, ctx.log));
      break;
    case 'vllm':
      command = which('vllm', env) ?? 'vllm';
      break;
    case 'tensorrt_llm':
      command = which('trtllm-serve', env) ?? 'trtllm-serve';
      break;
  }
  const loras = await planLoras(settings, profile.tags.llm_engine, profile.tags.feat_lora, model, ctx.log);
  const loraModules = loras?.adapters ?? [];

  // A profile with its own checkpoint (an FP8 / NVFP4 export) or a local directory whose config
  // says how it is quantized: vLLM reads the method from the checkpoint.
  const checkpointQuantized = (profile.source !== undefined && !resolved.sourceOverride) || hasQuantizationConfig(model);
  const engine = buildEngineCommand({ manifest, chosen, settings, port: ctx.enginePort, model, mmproj, command, loraModules, parentEnv: env, checkpointQuantized });
  if (!ctx.dryRun) writeEngineFiles(engine);
  const servedName = settings.servedModelName ?? manifest.model.servedName;
  return {
    profile: {
      id: profile.id,
      name: profile.name,
      tags: { ...nimTags(profile.tags), ...(profile.extraTags ?? {}) },
      selected: ctx.selected,
      reason: chosen.reason,
      manifest: manifest.file,
      model: manifest.model.id,
      ...(chosen.gpus.length ? { gpus: chosen.gpus.map((g) => g.cudaId) } : {}),
      chat: chatFeatures(manifest, profile.tags.llm_engine, settings),
    },
    engine,
    // llama-server says what it takes (/props); GPU engines are told by the manifest.
    model: {
      id: servedName,
      root: source,
      maxModelLen: chosen.maxModelLen ?? 0,
      ...(profile.tags.llm_engine !== 'llamacpp' && manifest.model.media ? { modalities: manifest.model.media } : {}),
      // The operator's NIM_MEDIA_RESIZE_MAX_PIXELS wins over the manifest's per-model value.
      ...(settings.media.resizeMaxPixels === undefined && manifest.model.resizeMaxPixels ? { resizeMaxPixels: manifest.model.resizeMaxPixels } : {}),
    },
    listing,
    loras,
  };
}
