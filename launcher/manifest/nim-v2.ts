// NIM's model_manifest.yaml v2 (`schema_version: 2.x`, `profiles: [{id, tags, workspace}]`) → Manifest.
import { basename, dirname } from 'node:path';
import { z } from 'zod';
import type { EngineKind } from '../../core/engine.js';
import { DEFAULT_BYTES_PER_WEIGHT, ENGINES, type Manifest, ManifestError, PRECISIONS, type Precision, type Profile, type ProfileTags, makeProfile, profileId, profileName, zodMessage } from './model.js';

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

export function fromNim(obj: Record<string, unknown>, file: string): Manifest {
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
