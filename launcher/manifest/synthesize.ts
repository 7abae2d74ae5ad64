// Manifests portico writes itself when no file describes the model: a .gguf, a Hugging Face model.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DEFAULT_BYTES_PER_WEIGHT, type Manifest, type Profile, type ProfileTags, isLocalSource, makeProfile } from './model.js';

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
