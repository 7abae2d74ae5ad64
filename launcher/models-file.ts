// NIM_MODELS_FILE: several models behind one gateway. A YAML list, one entry per
// model, validated once with zod; a bad file stops the start with one line naming the file, the
// model and the field, e.g.
//   NIM_MODELS_FILE=/etc/portico/models.yaml: model "embed" (#2): max_model_len: expected a whole number ≥ 1
//
//   - name: meta/llama-3.1-70b-instruct      # the model name requests use; unique
//     manifest: manifests/llama-3.1-70b-instruct.yaml
//     profile: vllm-bf16-tp4-pp1-latency     # optional: id, id prefix or readable name
//     gpus: 4                                # optional: how many GPUs, or which ones: [0, 1, 2, 3]
//   - name: portico/tiny-embed
//     model_path: /models/tiny-embed.gguf    # a GGUF file, HF folder, hf:// id, ... (as NIM_MODEL_PATH)
//     task: embedding
//   - name: remote
//     engine_url: http://10.0.0.5:8000       # an engine already running: spawn nothing
//
// Exactly one of model_path, manifest or engine_url. Relative paths are resolved against the
// file's folder, so a models file and its manifests can travel together.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as shellParse } from 'shell-quote';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../core/config.js';

import type { ModelTask } from '../core/engine.js';

export type { ModelTask };

export interface ModelEntry {
  name: string;
  source: { kind: 'model_path'; modelPath: string } | { kind: 'manifest'; manifest: string; profile: string | undefined } | { kind: 'engine_url'; engineUrl: string };
  /** What routes the model serves; chat unless said otherwise (an embedding model: `embedding`). */
  task: ModelTask;
  maxModelLen: number | undefined;
  tensorParallelSize: number | undefined;
  pipelineParallelSize: number | undefined;
  passthroughArgs: string[];
  peftSource: string | undefined;
  /** A GPU count, or the exact GPU indices (nvidia-smi numbering) this model's engine gets. */
  gpus: { count: number } | { indices: number[] } | undefined;
  /** llama.cpp: the vision projector next to a GGUF model_path (found automatically when omitted). */
  mmprojPath: string | undefined;
}

const int = (min: number) =>
  z.number({ error: `expected a whole number ≥ ${min}` }).int(`expected a whole number ≥ ${min}`).min(min, `expected a whole number ≥ ${min}`);

const shellArgs = z.string().transform((v, ctx) => {
  const out: string[] = [];
  for (const t of shellParse(v, (key) => `$${key}`)) {
    if (typeof t === 'string') out.push(t);
    else if ('op' in t && t.op === 'glob') out.push(t.pattern);
    else {
      ctx.addIssue({ code: 'custom', message: 'shell operators and comments are not allowed (arguments go to the engine, not to a shell)' });
      return z.NEVER;
    }
  }
  return out;
});

const entrySchema = z
  .strictObject({
    name: z.string().trim().min(1, 'required').max(256).regex(/^[^\s]+$/, 'no spaces in a model name'),
    model_path: z.string().min(1).optional(),
    manifest: z.string().min(1).optional(),
    profile: z.string().min(1).optional(),
    engine_url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).optional(),
    task: z.enum(['chat', 'embedding']).default('chat'),
    max_model_len: int(1).optional(),
    tensor_parallel_size: int(1).optional(),
    pipeline_parallel_size: int(1).optional(),
    passthrough_args: z.union([shellArgs, z.array(z.union([z.string(), z.number()]).transform(String))]).default([]),
    peft_source: z.string().min(1).optional(),
    gpus: z.union([int(1), z.array(int(0)).min(1, 'list at least one GPU')]).optional(),
    mmproj_path: z.string().min(1).optional(),
  })
  .superRefine((e, ctx) => {
    const given = (['model_path', 'manifest', 'engine_url'] as const).filter((k) => e[k] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({ code: 'custom', path: [given[1] ?? 'model_path'], message: given.length ? `give one of model_path, manifest or engine_url, not ${given.join(' and ')}` : 'give one of model_path, manifest or engine_url' });
    }
    if (e.profile !== undefined && e.manifest === undefined) ctx.addIssue({ code: 'custom', path: ['profile'], message: 'only with manifest' });
    if (e.engine_url !== undefined) {
      // Nothing is spawned for an external engine: settings that shape a spawned engine are mistakes.
      for (const k of ['gpus', 'passthrough_args', 'tensor_parallel_size', 'pipeline_parallel_size', 'mmproj_path'] as const) {
        const v = e[k];
        if (v !== undefined && !(Array.isArray(v) && v.length === 0)) ctx.addIssue({ code: 'custom', path: [k], message: 'not used with engine_url (nothing is spawned)' });
      }
    }
    if (Array.isArray(e.gpus) && new Set(e.gpus).size !== e.gpus.length) ctx.addIssue({ code: 'custom', path: ['gpus'], message: 'lists a GPU twice' });
    if (e.mmproj_path !== undefined && e.model_path === undefined) ctx.addIssue({ code: 'custom', path: ['mmproj_path'], message: 'only with model_path' });
  });

const fileSchema = z.array(z.unknown(), { error: 'expected a YAML list of models (- name: ...)' }).min(1, 'lists no model');

type RawEntry = z.infer<typeof entrySchema>;

/** Every refusal of the file stops the start with this code (core/startup-errors.ts). */
const CODE = 'invalid_models_file';

/** A union's own issue says only "Invalid input": report the branch that got furthest instead. */
function specific(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== 'invalid_union') return issue;
  const branch = issue.errors.flat().find((i) => !(i.code === 'invalid_type' && i.path.length === 0));
  return branch ? { ...specific(branch), path: [...issue.path, ...branch.path] } : issue;
}

function fieldOf(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return issue.keys[0] ?? '(entry)';
  return issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[') || '(entry)';
}

function messageOf(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? `s ${issue.keys.join(', ')}` : ''}`;
  if (issue.code === 'invalid_type' && /received undefined/i.test(issue.message)) return 'required';
  return issue.message;
}

const resolveFrom = (dir: string, p: string) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(p) || path.isAbsolute(p) ? p : path.resolve(dir, p));
/** model_path may also be a hub id (org/name), which must stay as is: resolve only what looks local. */
const resolveModelPath = (dir: string, p: string) => (p.startsWith('./') || p.startsWith('../') || /\.gguf$/i.test(p) ? resolveFrom(dir, p) : p);

function toEntry(r: RawEntry, dir: string): ModelEntry {
  const source: ModelEntry['source'] =
    r.engine_url !== undefined
      ? { kind: 'engine_url', engineUrl: r.engine_url.replace(/\/+$/, '') }
      : r.manifest !== undefined
        ? { kind: 'manifest', manifest: resolveFrom(dir, r.manifest), profile: r.profile }
        : { kind: 'model_path', modelPath: resolveModelPath(dir, r.model_path!) };
  return {
    name: r.name,
    source,
    task: r.task,
    maxModelLen: r.max_model_len,
    tensorParallelSize: r.tensor_parallel_size,
    pipelineParallelSize: r.pipeline_parallel_size,
    passthroughArgs: r.passthrough_args,
    peftSource: r.peft_source === undefined ? undefined : resolveFrom(dir, r.peft_source),
    gpus: r.gpus === undefined ? undefined : typeof r.gpus === 'number' ? { count: r.gpus } : { indices: r.gpus },
    mmprojPath: r.mmproj_path === undefined ? undefined : resolveFrom(dir, r.mmproj_path),
  };
}

/** Parse a models file's text. `file` names it in errors and anchors relative paths. */
export function parseModelsFile(text: string, file: string): ModelEntry[] {
  const where = `NIM_MODELS_FILE=${file}`;
  const doc = parseDocument(text, { uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const line = yamlError.linePos?.[0]?.line;
    throw new ConfigError(`${where}: ${line ? `line ${line}: ` : ''}${yamlError.message.split('\n')[0]}`, CODE);
  }
  const list = fileSchema.safeParse(doc.toJS());
  if (!list.success) throw new ConfigError(`${where}: ${list.error.issues[0]!.message}`, CODE);
  const dir = path.dirname(path.resolve(file));
  const entries: ModelEntry[] = [];
  const seen = new Map<string, number>();
  list.data.forEach((raw, i) => {
    const name = typeof raw === 'object' && raw !== null && typeof (raw as { name?: unknown }).name === 'string' ? (raw as { name: string }).name : undefined;
    const label = `model ${name ? `"${name}" ` : ''}(#${i + 1})`;
    const parsed = entrySchema.safeParse(raw);
    if (!parsed.success) {
      const issue = specific(parsed.error.issues[0]!);
      throw new ConfigError(`${where}: ${label}: ${fieldOf(issue)}: ${messageOf(issue)}`, CODE);
    }
    const first = seen.get(parsed.data.name);
    if (first !== undefined) throw new ConfigError(`${where}: ${label}: name: already used by model #${first + 1}`, CODE);
    seen.set(parsed.data.name, i);
    entries.push(toEntry(parsed.data, dir));
  });
  return entries;
}

/** Read and parse NIM_MODELS_FILE. */
export async function loadModelsFile(file: string): Promise<ModelEntry[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`NIM_MODELS_FILE=${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, CODE);
  }
  return parseModelsFile(text, file);
}
