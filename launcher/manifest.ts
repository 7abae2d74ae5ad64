// Model manifests: which model, where its weights come from, and the profiles (engine, precision,
// parallelism, GPU) it can run with. Two inputs are accepted:
//   - portico manifests (manifests/*.yaml, `version: 1`, a `model:` block and `profiles:`), and
//   - NIM's model_manifest.yaml v2 (`schema_version: 2.x`, `profiles: [{id, tags, workspace}]`).
// Both become the same `Manifest`. Every validation error names the file and the field.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { z } from 'zod';
import type { ChatFeatures, EngineKind } from '../core/engine.js';
import { StartupError } from '../core/startup-errors.js';

/** Engines in NIM's preference order (TensorRT-LLM over vLLM); llama.cpp is the CPU fallback. */
export const ENGINES = ['tensorrt_llm', 'vllm', 'llamacpp'] as const satisfies readonly EngineKind[];
/** Precisions, lowest first: the order selection prefers them in. */
export const PRECISIONS = ['nvfp4', 'mxfp4', 'int4', 'fp8', 'bf16', 'fp16', 'gguf', 'f32'] as const;
export type Precision = (typeof PRECISIONS)[number];
export type ProfileKind = 'latency' | 'throughput';

/** Bytes per weight when a manifest does not say (nvfp4: 4 bits + an fp8 scale per 16). */
export const DEFAULT_BYTES_PER_WEIGHT: Record<Precision, number> = {
  nvfp4: 0.5625,
  mxfp4: 0.53125,
  int4: 0.5,
  fp8: 1,
  bf16: 2,
  fp16: 2,
  gguf: 0.5625,
  f32: 4,
};

export interface ProfileTags {
  llm_engine: EngineKind;
  precision: Precision;
  tp: number;
  pp: number;
  profile: ProfileKind;
  /** Catalog product (H100, A100, L40S, ...): the profile is built for that GPU only. */
  gpu?: string | undefined;
  /** PCI `device:vendor` id, e.g. 2330:10de. */
  gpu_device?: string | undefined;
  /** GPUs the profile occupies (tp × pp unless stated; 0 for llama.cpp on CPU). */
  number_of_gpus: number;
  feat_lora: boolean;
}

export interface Profile {
  /** Stable 64-hex id: sha256 of the canonical tags (a NIM manifest's own id is kept). */
  id: string;
  /** `<engine>-<gpu|generic>-<precision>-tp<N>-pp<M>-<latency|throughput>[-lora]` */
  name: string;
  tags: ProfileTags;
  /** Extra engine arguments, appended after portico's own. */
  args: string[];
  /** Extra engine environment. */
  env: Record<string, string>;
  /** Weights for this profile when they differ from the model's (e.g. a pre-quantized FP8 checkpoint). */
  source?: string | undefined;
  mmproj?: string | undefined;
  description?: string | undefined;
  /** Set on imported NIM profiles portico cannot run (unknown engine or precision). */
  unsupported?: string | undefined;
  /** NIM tags portico does not interpret, kept for listing. */
  extraTags?: Record<string, string> | undefined;
}

export interface License {
  name: string;
  url?: string | undefined;
  text?: string | undefined;
  /** Absolute path of the license file. */
  file?: string | undefined;
}

export interface ModelInfo {
  id: string;
  servedName: string;
  /** Local path, `hf://org/name` (or bare `org/name`), `portico://tiny-vlm` (generated demo), other URI. */
  source: string;
  mmproj?: string | undefined;
  maxModelLen?: number | undefined;
  license?: License | undefined;
  /** Parameter count (all weights, vision tower included). */
  parameters?: number | undefined;
  bytesPerWeight: Record<Precision, number>;
  /** KV cache bytes per token of context (all layers, K and V). */
  kvBytesPerToken?: number | undefined;
  vision?: { maxImagesPerPrompt: number } | undefined;
  /** Media the model takes, when the manifest says (`modalities`); absent: unknown. */
  media?: { image: boolean; video: boolean; audio: boolean } | undefined;
  aliases: string[];
  /** Per engine: tool-call / reasoning parser names and a chat template file (absolute). */
  chat?: Partial<Record<EngineKind, ChatFeatures>> | undefined;
}

export interface Manifest {
  /** Where it was read from (absolute), or a description for synthesized ones. */
  file: string;
  format: 'portico' | 'nim-v2' | 'synthesized';
  model: ModelInfo;
  profiles: Profile[];
}

export class ManifestError extends StartupError {
  constructor(message: string) {
    super('invalid_manifest', message);
    this.name = 'ManifestError';
  }
}

// ---------------------------------------------------------------------------------------------
// ids and names

/** NIM-style string tags (what NIM prints, and what the id hashes), keys sorted. */
export function nimTags(t: ProfileTags): Record<string, string> {
  const out: Record<string, string> = {
    feat_lora: String(t.feat_lora),
    llm_engine: t.llm_engine,
    number_of_gpus: String(t.number_of_gpus),
    pp: String(t.pp),
    precision: t.precision,
    profile: t.profile,
    tp: String(t.tp),
  };
  if (t.gpu) out.gpu = t.gpu.toUpperCase();
  if (t.gpu_device) out.gpu_device = t.gpu_device.toLowerCase();
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** sha256 of the canonical tags: stable across runs, machines and manifest key order. */
export function profileId(t: ProfileTags): string {
  return createHash('sha256').update(JSON.stringify(Object.entries(nimTags(t)))).digest('hex');
}

export function profileName(t: ProfileTags): string {
  const gpu = t.gpu ? t.gpu.toLowerCase() : 'generic';
  return `${t.llm_engine}-${gpu}-${t.precision}-tp${t.tp}-pp${t.pp}-${t.profile}${t.feat_lora ? '-lora' : ''}`;
}

export function makeProfile(tags: ProfileTags, extra: Partial<Omit<Profile, 'tags'>> = {}): Profile {
  return {
    args: [],
    env: {},
    ...extra,
    id: extra.id ?? profileId(tags),
    name: extra.name ?? profileName(tags),
    tags,
  };
}

// ---------------------------------------------------------------------------------------------
// portico manifest schema

const intLike = (min: number) =>
  z.preprocess(
    (v) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v),
    z
      .number({ error: `expected a whole number ≥ ${min}` })
      .int(`expected a whole number ≥ ${min}`)
      .min(min, `expected a whole number ≥ ${min}`),
  );
const boolLike = z.preprocess(
  (v) => (typeof v === 'string' && /^(true|false)$/i.test(v) ? v.toLowerCase() === 'true' : v),
  z.boolean({ error: 'expected true or false' }),
);
const COUNT_UNITS: Record<string, number> = { '': 1, K: 1e3, M: 1e6, B: 1e9, T: 1e12 };
const count = z.preprocess(
  (v) => {
    if (typeof v !== 'string') return v;
    const m = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([KMBT]?)\s*$/i.exec(v);
    return m ? Math.round(Number(m[1]) * COUNT_UNITS[m[2]!.toUpperCase()]!) : v;
  },
  z.number({ error: 'expected a count like 8.03e9 or "8.03B"' }).positive(),
);
const engineEnum = z.enum(ENGINES);
const precisionEnum = z.enum(PRECISIONS);
const gpuDevice = z
  .string()
  .regex(/^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$/, 'expected a PCI id like 2330:10de')
  .transform((s) => s.toLowerCase());

const profileSchema = z
  .strictObject({
    llm_engine: engineEnum,
    precision: precisionEnum,
    tp: intLike(1).default(1),
    pp: intLike(1).default(1),
    profile: z.enum(['latency', 'throughput']),
    gpu: z.string().regex(/^[A-Za-z0-9_]+$/, 'expected a product name like H100, A100, L40S, H100_NVL').optional(),
    gpu_device: gpuDevice.optional(),
    number_of_gpus: intLike(0).optional(),
    feat_lora: boolLike.default(false),
    args: z.array(z.union([z.string(), z.number()]).transform(String)).default([]),
    env: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)).default({}),
    source: z.string().min(1).optional(),
    mmproj: z.string().min(1).optional(),
    description: z.string().optional(),
  })
  .superRefine((p, ctx) => {
    const gpus = p.tp * p.pp;
    if (p.llm_engine === 'llamacpp') {
      if (p.precision !== 'gguf' && p.precision !== 'f32') ctx.addIssue({ code: 'custom', path: ['precision'], message: 'llamacpp profiles use gguf or f32' });
      if (p.gpu || p.gpu_device) ctx.addIssue({ code: 'custom', path: [p.gpu ? 'gpu' : 'gpu_device'], message: 'llamacpp profiles run on the CPU and name no GPU' });
      if (gpus !== 1) ctx.addIssue({ code: 'custom', path: ['tp'], message: 'llamacpp profiles have tp 1 and pp 1' });
    } else {
      if (p.precision === 'gguf') ctx.addIssue({ code: 'custom', path: ['precision'], message: `gguf is llama.cpp's format; ${p.llm_engine} needs another precision` });
      if (p.number_of_gpus !== undefined && p.number_of_gpus < gpus)
        ctx.addIssue({ code: 'custom', path: ['number_of_gpus'], message: `must be at least tp × pp = ${gpus}` });
    }
  });

const licenseSchema = z
  .strictObject({
    name: z.string().min(1),
    url: z.string().url().optional(),
    text: z.string().min(1).optional(),
    file: z.string().min(1).optional(),
  })
  .refine((l) => l.text || l.file, { message: 'needs `text` or `file`' });

const kvSchema = z.strictObject({
  layers: intLike(1),
  kv_heads: intLike(1),
  head_dim: intLike(1),
  bytes_per_value: z.number().positive().default(2),
});

// A parser name for every engine, or one per engine (their registries name things differently:
// vLLM `deepseek_r1`, trtllm-serve `deepseek-r1`).
const parserName = z.string().regex(/^[\w.-]+$/, 'expected a parser name');
const perEngine = z.union([parserName, z.partialRecord(engineEnum, parserName)]);

const porticoSchema = z.strictObject({
  version: z.literal(1),
  model: z
    .strictObject({
      id: z.string().min(1),
      served_name: z.string().min(1).optional(),
      aliases: z.array(z.string().min(1)).default([]),
      source: z.string().min(1),
      mmproj: z.string().min(1).optional(),
      max_model_len: intLike(1),
      license: licenseSchema,
      parameters: count,
      bytes_per_weight: z.partialRecord(precisionEnum, z.number().positive()).default({}),
      kv_cache: kvSchema.optional(),
      kv_bytes_per_token: z.number().positive().optional(),
      modalities: z.array(z.enum(['text', 'image', 'video', 'audio'])).default(['text']),
      max_images_per_prompt: intLike(0).optional(),
      description: z.string().optional(),
      tool_call_parser: perEngine.optional(),
      reasoning_parser: perEngine.optional(),
      chat_template: z.string().min(1).optional(),
      // Engines that refuse this model outright (e.g. an architecture the pinned version dropped):
      // their profiles are listed as incompatible with this reason.
      unsupported: z.partialRecord(engineEnum, z.string().min(1)).optional(),
    })
    .refine((m) => !(m.kv_cache && m.kv_bytes_per_token), { message: 'give kv_cache or kv_bytes_per_token, not both' }),
  profiles: z.array(profileSchema).min(1, 'a manifest needs at least one profile'),
});

// ---------------------------------------------------------------------------------------------
// NIM model_manifest.yaml v2

const nimSchema = z.looseObject({
  schema_version: z.union([z.string(), z.number()]).transform(String),
  profiles: z
    .array(
      z.looseObject({
        id: z.preprocess((v) => (typeof v === 'number' ? String(v) : v), z.string().min(1)),
        tags: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)),
        workspace: z.unknown().optional(),
      }),
    )
    .min(1, 'a manifest needs at least one profile'),
});

const NIM_PRECISION_ALIASES: Record<string, Precision> = {
  int4_awq: 'int4',
  w4a16: 'int4',
  awq: 'int4',
  gptq: 'int4',
  fp4: 'nvfp4',
  float16: 'fp16',
  bfloat16: 'bf16',
  float32: 'f32',
};
const NIM_KNOWN_TAGS = new Set(['llm_engine', 'precision', 'tp', 'pp', 'profile', 'gpu', 'gpu_device', 'number_of_gpus', 'feat_lora']);

function firstRepoId(x: unknown): string | undefined {
  if (!x || typeof x !== 'object') return undefined;
  for (const [k, v] of Object.entries(x as Record<string, unknown>)) {
    if (k === 'repo_id' && typeof v === 'string') return v;
    const inner = firstRepoId(v);
    if (inner) return inner;
  }
  return undefined;
}

/** `ngc://nim/meta/llama-3.1-8b-instruct:0.11+abc-h100x2` → `meta/llama-3.1-8b-instruct`. */
export function modelIdFromRepo(repo: string): string | undefined {
  const m = /^[a-z0-9+.-]+:\/\/(?:nim\/)?([^:@]+)/i.exec(repo);
  return m?.[1]?.replace(/\/+$/, '') || undefined;
}

function importNimProfile(p: { id: string; tags: Record<string, string> }, at: string): Profile {
  const t = p.tags;
  const int = (key: string, dflt: number): number => {
    const v = t[key];
    if (v === undefined || v === '') return dflt;
    if (!/^\d+$/.test(v)) throw new ManifestError(`${at}.tags.${key}: expected a whole number, got "${v}"`);
    return Number(v);
  };
  const rawEngine = (t.llm_engine ?? '').toLowerCase().replace('llama.cpp', 'llamacpp').replace('trtllm', 'tensorrt_llm');
  const rawPrecision = (t.precision ?? '').toLowerCase();
  const precision = (PRECISIONS as readonly string[]).includes(rawPrecision) ? (rawPrecision as Precision) : NIM_PRECISION_ALIASES[rawPrecision];
  let unsupported: string | undefined;
  if (!(ENGINES as readonly string[]).includes(rawEngine)) unsupported = `engine ${t.llm_engine ?? '(none)'} is not supported by portico`;
  else if (!precision) unsupported = `precision ${t.precision ?? '(none)'} is not supported by portico`;
  const tp = int('tp', 1);
  const pp = int('pp', 1);
  const engine = (unsupported ? 'vllm' : rawEngine) as EngineKind;
  const tags: ProfileTags = {
    llm_engine: engine,
    precision: precision ?? 'bf16',
    tp,
    pp,
    profile: t.profile === 'throughput' ? 'throughput' : 'latency',
    gpu: t.gpu || undefined,
    gpu_device: t.gpu_device ? t.gpu_device.toLowerCase() : undefined,
    number_of_gpus: int('number_of_gpus', engine === 'llamacpp' ? 0 : tp * pp),
    feat_lora: (t.feat_lora ?? 'false').toLowerCase() === 'true',
  };
  const extra = Object.fromEntries(Object.entries(t).filter(([k]) => !NIM_KNOWN_TAGS.has(k)));
  const id = /^[0-9a-f]{64}$/i.test(p.id) ? p.id.toLowerCase() : profileId(tags);
  let name = profileName(tags);
  if (unsupported) name = `${(t.llm_engine ?? 'unknown').toLowerCase()}-${tags.gpu?.toLowerCase() ?? 'generic'}-${rawPrecision || 'unknown'}-tp${tp}-pp${pp}-${tags.profile}${tags.feat_lora ? '-lora' : ''}`;
  return makeProfile(tags, { id, name, unsupported, extraTags: Object.keys(extra).length ? extra : undefined });
}

// ---------------------------------------------------------------------------------------------
// loading

function issuePath(path: PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('') || '(top level)';
}

function zodMessage(file: string, err: z.ZodError): string {
  const issue = err.issues[0]!;
  let path = issuePath(issue.path);
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    const keys = (issue as { keys: string[] }).keys;
    path = issue.path.length ? `${path}.${keys[0]}` : (keys[0] ?? path);
    message = `unknown field${keys.length > 1 ? `s ${keys.join(', ')}` : ''}`;
  } else if (issue.code === 'invalid_type' && /received undefined/i.test(message)) {
    message = 'required';
  }
  return `${file}: ${path}: ${message}`;
}

/** Does this source name a path on the local disk (as opposed to an hf id or other URI)? */
export function isLocalSource(source: string): boolean {
  return source.startsWith('/') || source.startsWith('./') || source.startsWith('../') || source.startsWith('file://') || source.startsWith('~/');
}

/** Resolve `./x` and `../x` against the manifest's directory; leave URIs and ids alone. */
function resolveSource(source: string | undefined, dir: string): string | undefined {
  if (source === undefined) return undefined;
  if (source.startsWith('./') || source.startsWith('../')) return resolve(dir, source);
  return source;
}

/** Parse a manifest from YAML text. `file` is used for messages and relative paths. */
export function parseManifest(text: string, file: string): Manifest {
  const doc = YAML.parseDocument(text, { prettyErrors: true, logLevel: 'silent' });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    throw new ManifestError(`${file}${pos ? `:${pos.line}:${pos.col}` : ''}: invalid YAML: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  const data = doc.toJS() as unknown;
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new ManifestError(`${file}: expected a YAML mapping at the top level`);
  const obj = data as Record<string, unknown>;
  if ('model' in obj || 'version' in obj) return fromPortico(obj, file);
  if ('schema_version' in obj || 'profiles' in obj) return fromNim(obj, file);
  throw new ManifestError(`${file}: neither a portico manifest (no \`version: 1\` and \`model:\`) nor a NIM model_manifest.yaml (no \`schema_version\`)`);
}

function fromPortico(obj: Record<string, unknown>, file: string): Manifest {
  const r = porticoSchema.safeParse(obj);
  if (!r.success) throw new ManifestError(zodMessage(file, r.error));
  const m = r.data.model;
  const dir = dirname(file);
  let license: License = { name: m.license.name, url: m.license.url, text: m.license.text };
  if (m.license.file) {
    const f = resolve(dir, m.license.file);
    if (!existsSync(f)) throw new ManifestError(`${file}: model.license.file: no such file ${m.license.file}`);
    license = { ...license, file: f };
  }
  const kv = m.kv_cache ? 2 * m.kv_cache.layers * m.kv_cache.kv_heads * m.kv_cache.head_dim * m.kv_cache.bytes_per_value : m.kv_bytes_per_token;
  const vision = m.modalities.includes('image') ? { maxImagesPerPrompt: m.max_images_per_prompt ?? 1 } : undefined;
  const profiles = r.data.profiles.map((p) => {
    const tags: ProfileTags = {
      llm_engine: p.llm_engine,
      precision: p.precision,
      tp: p.tp,
      pp: p.pp,
      profile: p.profile,
      gpu: p.gpu?.toUpperCase(),
      gpu_device: p.gpu_device,
      number_of_gpus: p.llm_engine === 'llamacpp' ? 0 : (p.number_of_gpus ?? p.tp * p.pp),
      feat_lora: p.feat_lora,
    };
    return makeProfile(tags, { args: p.args, env: p.env, source: resolveSource(p.source, dir), mmproj: resolveSource(p.mmproj, dir), description: p.description, unsupported: m.unsupported?.[p.llm_engine] });
  });
  checkDuplicates(profiles, file);
  return {
    file,
    format: 'portico',
    model: {
      id: m.id,
      servedName: m.served_name ?? m.id,
      aliases: m.aliases,
      source: resolveSource(m.source, dir)!,
      mmproj: resolveSource(m.mmproj, dir),
      maxModelLen: m.max_model_len,
      license,
      parameters: m.parameters,
      bytesPerWeight: { ...DEFAULT_BYTES_PER_WEIGHT, ...m.bytes_per_weight },
      kvBytesPerToken: kv,
      vision,
      chat: chatDeclarations(m, dir, file),
      media: { image: m.modalities.includes('image'), video: m.modalities.includes('video'), audio: m.modalities.includes('audio') },
    },
    profiles,
  };
}

type ParserDecl = string | Partial<Record<EngineKind, string>> | undefined;

/** The model's tool/reasoning/template declarations, spread per engine. */
function chatDeclarations(m: { tool_call_parser?: ParserDecl; reasoning_parser?: ParserDecl; chat_template?: string | undefined }, dir: string, file: string): Manifest['model']['chat'] {
  if (!m.tool_call_parser && !m.reasoning_parser && !m.chat_template) return undefined;
  const pick = (d: ParserDecl, e: EngineKind) => (typeof d === 'string' ? d : d?.[e]);
  let template: string | undefined;
  if (m.chat_template) {
    template = resolve(dir, m.chat_template);
    if (!existsSync(template)) throw new ManifestError(`${file}: model.chat_template: no such file ${m.chat_template}`);
  }
  const out: Partial<Record<EngineKind, ChatFeatures>> = {};
  for (const e of ENGINES) {
    const f: ChatFeatures = {};
    const tool = pick(m.tool_call_parser, e);
    const reasoning = pick(m.reasoning_parser, e);
    if (tool) f.toolCallParser = tool;
    if (reasoning) f.reasoningParser = reasoning;
    if (template) f.chatTemplate = template;
    if (Object.keys(f).length) out[e] = f;
  }
  return out;
}

function checkDuplicates(profiles: Profile[], file: string): void {
  const seen = new Map<string, number>();
  profiles.forEach((p, i) => {
    const prev = seen.get(p.id);
    if (prev !== undefined) throw new ManifestError(`${file}: profiles[${i}]: same tags as profiles[${prev}] (${p.name}); give one of them a different gpu, precision, tp, pp or profile`);
    seen.set(p.id, i);
  });
}

function fromNim(obj: Record<string, unknown>, file: string): Manifest {
  const r = nimSchema.safeParse(obj);
  if (!r.success) throw new ManifestError(zodMessage(file, r.error));
  if (!/^2(\.|$)/.test(r.data.schema_version)) {
    throw new ManifestError(`${file}: schema_version: ${r.data.schema_version} is not supported (NIM model_manifest.yaml v2 is)`);
  }
  const profiles = r.data.profiles.map((p, i) => importNimProfile(p, `${file}: profiles[${i}]`));
  // NIM ids are unique; readable names may not be (tags portico ignores): disambiguate by id.
  const names = new Map<string, number>();
  for (const p of profiles) names.set(p.name, (names.get(p.name) ?? 0) + 1);
  for (const p of profiles) if ((names.get(p.name) ?? 0) > 1) p.name = `${p.name}-${p.id.slice(0, 8)}`;
  const seen = new Set<string>();
  r.data.profiles.forEach((p, i) => {
    const id = profiles[i]!.id;
    if (seen.has(id)) throw new ManifestError(`${file}: profiles[${i}].id: duplicate id ${p.id}`);
    seen.add(id);
  });
  const repo = r.data.profiles.map((p) => firstRepoId(p.workspace)).find(Boolean);
  const id = (repo && modelIdFromRepo(repo)) ?? basename(dirname(file));
  return {
    file,
    format: 'nim-v2',
    model: {
      id,
      servedName: id,
      aliases: [],
      source: repo ?? '',
      bytesPerWeight: { ...DEFAULT_BYTES_PER_WEIGHT },
    },
    profiles,
  };
}

export function loadManifest(file: string): Manifest {
  const abs = resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    throw new ManifestError(`${file}: cannot read manifest: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseManifest(text, abs);
}

// ---------------------------------------------------------------------------------------------
// synthesized manifests

/** A single llama.cpp profile for a GGUF file given by NIM_MODEL_PATH. */
export function ggufManifest(path: string, opts: { mmproj?: string | undefined; maxModelLen?: number | undefined } = {}): Manifest {
  const id = basename(path).replace(/\.gguf$/i, '');
  const tags: ProfileTags = { llm_engine: 'llamacpp', precision: 'gguf', tp: 1, pp: 1, profile: 'latency', number_of_gpus: 0, feat_lora: false };
  return {
    file: `(synthesized for ${path})`,
    format: 'synthesized',
    model: {
      id,
      servedName: id,
      aliases: [],
      source: path,
      mmproj: opts.mmproj,
      maxModelLen: opts.maxModelLen ?? 2048,
      bytesPerWeight: { ...DEFAULT_BYTES_PER_WEIGHT },
      vision: opts.mmproj ? { maxImagesPerPrompt: 1 } : undefined,
    },
    profiles: [makeProfile(tags)],
  };
}

export interface HfModelFacts {
  maxModelLen?: number | undefined;
  parameters?: number | undefined;
  kvBytesPerToken?: number | undefined;
  vision?: boolean | undefined;
}

/** Generic vLLM profiles (bf16; tp 1, 2, 4, 8) for a model no shipped manifest describes. */
export function genericVllmManifest(source: string, facts: HfModelFacts = {}): Manifest {
  const id = source.replace(/^hf:\/\//, '').replace(/\/+$/, '');
  const profiles: Profile[] = [];
  for (const tp of [1, 2, 4, 8]) {
    for (const profile of ['latency', 'throughput'] as const) {
      if (profile === 'throughput' && tp > 1) continue;
      profiles.push(makeProfile({ llm_engine: 'vllm', precision: 'bf16', tp, pp: 1, profile, number_of_gpus: tp, feat_lora: false }));
    }
  }
  return {
    file: `(synthesized for ${source})`,
    format: 'synthesized',
    model: {
      id: isLocalSource(id) ? basename(id) : id,
      servedName: isLocalSource(id) ? basename(id) : id,
      aliases: [],
      source,
      maxModelLen: facts.maxModelLen,
      parameters: facts.parameters,
      kvBytesPerToken: facts.kvBytesPerToken,
      bytesPerWeight: { ...DEFAULT_BYTES_PER_WEIGHT },
      vision: facts.vision ? { maxImagesPerPrompt: 1 } : undefined,
    },
    profiles,
  };
}

/** What a local Hugging Face model directory says about itself (config.json, safetensors sizes). */
export function inspectHfDir(dir: string, readFile: (p: string) => string = (p) => readFileSync(p, 'utf8'), listDir: (p: string) => { name: string; size: number }[] = defaultList): HfModelFacts {
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(readFile(join(dir, 'config.json'))) as Record<string, unknown>;
  } catch {
    return {};
  }
  const text = (cfg.text_config as Record<string, unknown> | undefined) ?? cfg;
  const num = (o: Record<string, unknown>, k: string) => (typeof o[k] === 'number' ? (o[k] as number) : undefined);
  const layers = num(text, 'num_hidden_layers');
  const heads = num(text, 'num_attention_heads');
  const kvHeads = num(text, 'num_key_value_heads') ?? heads;
  const hidden = num(text, 'hidden_size');
  const headDim = num(text, 'head_dim') ?? (hidden && heads ? hidden / heads : undefined);
  const dtype = String(cfg.torch_dtype ?? text.torch_dtype ?? cfg.dtype ?? 'bfloat16');
  const bytes = /float32/.test(dtype) ? 4 : /float8|fp8/.test(dtype) ? 1 : 2;
  const weightBytes = listDir(dir)
    .filter((f) => f.name.endsWith('.safetensors'))
    .reduce((a, f) => a + f.size, 0);
  return {
    maxModelLen: num(text, 'max_position_embeddings'),
    kvBytesPerToken: layers && kvHeads && headDim ? 2 * layers * kvHeads * headDim * 2 : undefined,
    parameters: weightBytes ? weightBytes / bytes : undefined,
    vision: Boolean(cfg.vision_config),
  };
}

function defaultList(dir: string): { name: string; size: number }[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isFile())
      .map((d) => {
        try {
          return { name: d.name, size: statSync(join(dir, d.name)).size };
        } catch {
          return { name: d.name, size: 0 };
        }
      });
  } catch {
    return [];
  }
}


// ---------------------------------------------------------------------------------------------
// where the repo's manifests live

let cachedRoot: string | undefined;

/**
 * The repository root: the nearest ancestor of this module holding package.json. Works from
 * both launcher/manifest.ts (tests, tsx) and dist/launcher/manifest.js (npm start, container).
 */
export function repoRoot(from: string = fileURLToPath(import.meta.url)): string {
  if (cachedRoot && from === fileURLToPath(import.meta.url)) return cachedRoot;
  let dir = isAbsolute(from) ? dirname(from) : resolve(from);
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'manifests'))) break;
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find portico's repository root (package.json and manifests/) above ${from}`);
    dir = up;
  }
  if (from === fileURLToPath(import.meta.url)) cachedRoot = dir;
  return dir;
}

export const DEMO_MANIFEST = 'portico-tiny-vlm.yaml';

export function manifestsDir(root = repoRoot()): string {
  return join(root, 'manifests');
}

export function gpuCatalogFile(root = repoRoot()): string {
  return join(root, 'profiles', 'gpus.yaml');
}

/** Every shipped manifest (manifests/*.yaml), sorted by file name. */
export function loadShippedManifests(dir = manifestsDir()): Manifest[] {
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/i.test(f))
    .sort()
    .map((f) => loadManifest(join(dir, f)));
}

const norm = (s: string) => s.replace(/^hf:\/\//i, '').replace(/\/+$/, '').toLowerCase();

/**
 * The shipped manifest NIM_MODEL_PATH refers to: equal to its model id, served name, an alias
 * or a source (`hf://` optional), or a local directory named like one of them
 * (`/models/Llama-3.1-8B-Instruct` matches `hf://meta-llama/Llama-3.1-8B-Instruct`).
 */
export function matchManifest(modelPath: string, manifests: Manifest[]): Manifest | undefined {
  const want = norm(modelPath);
  const wantBase = basename(want);
  const keys = (m: Manifest) => [m.model.id, m.model.servedName, m.model.source, ...m.model.aliases, ...m.profiles.map((p) => p.source ?? '')].filter(Boolean).map(norm);
  return (
    manifests.find((m) => keys(m).includes(want)) ??
    (isLocalSource(modelPath) ? manifests.find((m) => keys(m).some((k) => basename(k) === wantBase)) : undefined)
  );
}
