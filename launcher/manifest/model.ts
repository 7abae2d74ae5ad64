// The manifest model: engines, precisions, profiles and their NIM tags, ids and names, and the
// validation helpers both manifest formats share. Every validation error names the file and the field.
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { z } from 'zod';
import type { ChatFeatures, EngineKind } from '../../core/engine.js';
import { StartupError } from '../../core/startup-errors.js';

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
  /** Images above this many pixels are downscaled before the engine sees them (NIM_MEDIA_RESIZE_MAX_PIXELS overrides). */
  resizeMaxPixels?: number | undefined;
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
// validation helpers both formats use

export function issuePath(path: PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('') || '(top level)';
}
export function zodMessage(file: string, err: z.ZodError): string {
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
export function resolveSource(source: string | undefined, dir: string): string | undefined {
  if (source === undefined) return undefined;
  if (source.startsWith('./') || source.startsWith('../')) return resolve(dir, source);
  return source;
}
export function checkDuplicates(profiles: Profile[], file: string): void {
  const seen = new Map<string, number>();
  profiles.forEach((p, i) => {
    const prev = seen.get(p.id);
    if (prev !== undefined) throw new ManifestError(`${file}: profiles[${i}]: same tags as profiles[${prev}] (${p.name}); give one of them a different gpu, precision, tp, pp or profile`);
    seen.set(p.id, i);
  });
}
