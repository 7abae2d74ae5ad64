// Generates tiny LoRA adapters for the tiny VLM (launcher/prepare/tiny-model.ts), in llama.cpp's LoRA
// GGUF format, each in a NIM_PEFT_SOURCE-style folder:
//
//   DIR/<name>/adapter_model.gguf    the adapter llama-server loads with --lora
//   DIR/<name>/adapter_config.json   PEFT's config (NIM's folder layout), describing the same adapter
//
// Format (src/llama-adapter.cpp, convert_lora_to_gguf.py at llama.cpp de3ff81): KV
// general.type = "adapter", general.architecture = the base model's ("llama"), adapter.type =
// "lora", adapter.lora.alpha (f32); for a base tensor W with ggml dims [n_in, n_out] the pair
// `<W>.lora_a` [n_in, r] and `<W>.lora_b` [r, n_out]; the engine adds scale·alpha/r · B(A x).
//
// The adapters only touch what the tiny VLM leaves random (see tiny-model.ts): they read the
// "content" dims 3..63 and write only (a) the logits of the tokens the model may generate
// (output.weight rows of GEN tokens) and (b) layer 1's value projection. The wired channels
// that make replies end on <|im_end|> are untouched, so an adapted model still answers like the
// base one (printable, ~40 tokens, then the end token) but picks different letters: at
// temperature 0 base, adapter a and adapter b give three different, deterministic replies.
// Output is byte-for-byte deterministic (fixed-seed PRNG per adapter index).
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { mulberry32, normal } from './det-random.js';
import { f32, str, u32, writeGGUF, type GGUFTensor } from './gguf-writer.js';
import { TINY_MODEL_NAME, TINY_N_EMBD, TINY_N_HEAD, TINY_N_HEAD_KV, TINY_VOCAB } from './tiny-model.js';
import { writeIfChanged } from './write-atomic.js';
import { isMainModule } from '../../core/main-module.js';

export const TINY_LORA_FILE = 'adapter_model.gguf';
export const TINY_LORA_CONFIG = 'adapter_config.json';
export const TINY_LORA_RANK = 4;
export const TINY_LORA_ALPHA = 8;
/** The folders `npm run demo:loras -- DIR` writes; a folder's name is the adapter's model name. */
export const TINY_LORA_NAMES = ['portico-tiny-lora-a', 'portico-tiny-lora-b'] as const;

/** Base tensors the adapters change, with their ggml dims [n_in, n_out] in the tiny VLM. */
const KV_DIM = (TINY_N_EMBD / TINY_N_HEAD) * TINY_N_HEAD_KV; // 32
export const TINY_LORA_TARGETS: ReadonlyArray<{ tensor: string; nIn: number; nOut: number; peftModule: string }> = [
  { tensor: 'output.weight', nIn: TINY_N_EMBD, nOut: TINY_VOCAB.length, peftModule: 'lm_head' },
  { tensor: 'blk.1.attn_v.weight', nIn: TINY_N_EMBD, nOut: KV_DIM, peftModule: 'v_proj' },
];

/** Same rule as tiny-model.ts's isGenToken: tokens the base model may generate. */
const isGenToken = (tok: string): boolean => (tok.length > 1 ? /^(Ġ|[a-z])+$/.test(tok) : /^(Ġ|[b-df-hj-np-tv-z])$/.test(tok));
const FIRST_CONTENT_DIM = 3;

/** The adapter GGUF for adapter number `index` (0 → a, 1 → b, 2 → c, ...). */
export function buildTinyLora(index: number): Buffer {
  const rand = mulberry32(0x6c6f7261 + index * 7919); // "lora" + index
  const r = TINY_LORA_RANK;
  const tensors: GGUFTensor[] = [];
  for (const t of TINY_LORA_TARGETS) {
    // A [n_in, r]: row k (one rank component) reads the content dims only.
    const a = new Float32Array(t.nIn * r);
    for (let k = 0; k < r; k++) for (let i = FIRST_CONTENT_DIM; i < t.nIn; i++) a[k * t.nIn + i] = normal(rand) / Math.sqrt(t.nIn - FIRST_CONTENT_DIM);
    // B [r, n_out]: output o gets sum_k B[o][k] (A x)_k; for logits only GEN tokens.
    const b = new Float32Array(r * t.nOut);
    const std = t.tensor === 'output.weight' ? 1.5 : 0.3;
    for (let o = 0; o < t.nOut; o++) {
      if (t.tensor === 'output.weight' && !isGenToken(TINY_VOCAB[o]!)) continue;
      for (let k = 0; k < r; k++) b[o * r + k] = normal(rand) * std;
    }
    tensors.push({ name: `${t.tensor}.lora_a`, dims: [t.nIn, r], data: a }, { name: `${t.tensor}.lora_b`, dims: [r, t.nOut], data: b });
  }
  return writeGGUF({
    kv: [
      ['general.architecture', str('llama')],
      ['general.type', str('adapter')],
      ['general.name', str(`${TINY_MODEL_NAME}-lora-${String.fromCharCode(97 + index)}`)],
      ['general.file_type', u32(0)],
      ['adapter.type', str('lora')],
      ['adapter.lora.alpha', f32(TINY_LORA_ALPHA)],
    ],
    tensors,
  });
}

/** PEFT's adapter_config.json for the same adapter (what NIM's folder layout carries). */
export function tinyLoraConfig(): string {
  const config = {
    base_model_name_or_path: TINY_MODEL_NAME,
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: TINY_LORA_RANK,
    lora_alpha: TINY_LORA_ALPHA,
    lora_dropout: 0,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    target_modules: TINY_LORA_TARGETS.map((t) => t.peftModule),
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

export interface TinyLoraFolder {
  name: string;
  dir: string;
  gguf: string;
}

/** Write adapter number `index` into DIR/<name>/ (both files atomically). */
export async function writeTinyLora(dir: string, name: string, index: number): Promise<TinyLoraFolder> {
  const folder = path.resolve(dir, name);
  await mkdir(folder, { recursive: true });
  const gguf = path.join(folder, TINY_LORA_FILE);
  await writeIfChanged(gguf, buildTinyLora(index));
  await writeIfChanged(path.join(folder, TINY_LORA_CONFIG), tinyLoraConfig());
  return { name, dir: folder, gguf };
}

/** The demo's two adapters (a, b) in DIR. */
export async function writeDemoLoras(dir: string): Promise<TinyLoraFolder[]> {
  return Promise.all(TINY_LORA_NAMES.map((name, i) => writeTinyLora(dir, name, i)));
}

if (isMainModule(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: npm run demo:loras -- <output-dir>');
    process.exit(2);
  }
  for (const f of await writeDemoLoras(dir)) console.log(f.dir);
}
