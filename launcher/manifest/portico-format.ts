// portico manifests (manifests/*.yaml, `version: 1`, a `model:` block and `profiles:`) → Manifest.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import type { ChatFeatures, EngineKind } from '../../core/engine.js';
import { DEFAULT_BYTES_PER_WEIGHT, ENGINES, type License, type Manifest, ManifestError, PRECISIONS, type ProfileTags, checkDuplicates, makeProfile, resolveSource, zodMessage } from './model.js';

// ---------------------------------------------------------------------------------------------
// the schema

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
      // A dynamic-resolution VLM pays prefill tokens per pixel: the size worth sending it.
      media_resize_max_pixels: intLike(1).optional(),
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

export function fromPortico(obj: Record<string, unknown>, file: string): Manifest {
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
      resizeMaxPixels: m.media_resize_max_pixels,
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
