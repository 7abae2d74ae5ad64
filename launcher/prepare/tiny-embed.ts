// Generates `portico/tiny-embed`: a tiny random-weight embedding model for llama-server
// (`--embeddings --pooling mean`), the CPU demo's second model next to the tiny VLM.
//
// A decoder used as an encoder, as e5-mistral / GritLM-style embedders are: llama architecture,
// mean pooling declared in the metadata (`llama.pooling_type` = 1), no output head (llama.cpp
// ties it to token_embd.weight when it is absent; embeddings never use it). It shares the tiny
// VLM's byte-level vocabulary, so any printable ASCII input tokenizes. Its width (48) differs from
// the chat model's (64) on purpose: a test that receives 48 floats knows which engine answered.
// Output is byte-for-byte deterministic (fixed-seed PRNG).
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { mulberry32, randVec } from './det-random.js';
import { arr, bool, f32, GGUFValueType, str, u32, writeGGUF, type GGUFTensor } from './gguf-writer.js';
import { TINY_MERGES, TINY_SPECIAL_TOKENS, TINY_VOCAB } from './tiny-model.js';
import { writeIfChanged } from './write-atomic.js';

export const TINY_EMBED_FILE = 'portico-tiny-embed.gguf';
/** The served model name (`--alias`), as the API contract's embeddings example names it. */
export const TINY_EMBED_NAME = 'portico/tiny-embed';
export const TINY_EMBED_DIM = 48;
export const TINY_EMBED_N_CTX_TRAIN = 512;
/** llama.cpp's LLAMA_POOLING_TYPE_MEAN. */
export const TINY_EMBED_POOLING = 'mean';
const POOLING_TYPE_MEAN = 1;

const N_LAYER = 2;
const N_HEAD = 4;
const HEAD_DIM = TINY_EMBED_DIM / N_HEAD; // 12
const N_FF = 96;

function buildEmbedModel(): Buffer {
  const rand = mulberry32(0x656d6264); // "embd"
  const E = TINY_EMBED_DIM;
  const V = TINY_VOCAB.length;
  const special = new Set<string>(TINY_SPECIAL_TOKENS);
  const types = TINY_VOCAB.map((t) => (special.has(t) ? 3 : 1)); // CONTROL : NORMAL
  // ggml layout: dims [nIn, nOut].
  const mat = (name: string, nIn: number, nOut: number, std: number): GGUFTensor => ({ name, dims: [nIn, nOut], data: randVec(rand, nIn * nOut, std) });
  const ones = (name: string, n: number): GGUFTensor => ({ name, dims: [n], data: new Float32Array(n).fill(1) });

  // Token embeddings of unit scale per dimension: distinct inputs give clearly distinct means.
  const tensors: GGUFTensor[] = [mat('token_embd.weight', E, V, 1), ones('output_norm.weight', E)];
  for (let il = 0; il < N_LAYER; il++) {
    const p = `blk.${il}`;
    tensors.push(
      ones(`${p}.attn_norm.weight`, E),
      mat(`${p}.attn_q.weight`, E, E, 1 / Math.sqrt(E)),
      mat(`${p}.attn_k.weight`, E, E, 1 / Math.sqrt(E)),
      mat(`${p}.attn_v.weight`, E, E, 1 / Math.sqrt(E)),
      mat(`${p}.attn_output.weight`, E, E, 0.5 / Math.sqrt(E)),
      ones(`${p}.ffn_norm.weight`, E),
      mat(`${p}.ffn_gate.weight`, E, N_FF, 1 / Math.sqrt(E)),
      mat(`${p}.ffn_up.weight`, E, N_FF, 1 / Math.sqrt(E)),
      mat(`${p}.ffn_down.weight`, N_FF, E, 0.5 / Math.sqrt(N_FF)),
    );
  }

  return writeGGUF({
    kv: [
      ['general.architecture', str('llama')],
      ['general.name', str('portico-tiny-embed')],
      ['general.file_type', u32(0)], // all F32
      ['llama.vocab_size', u32(V)],
      ['llama.context_length', u32(TINY_EMBED_N_CTX_TRAIN)],
      ['llama.embedding_length', u32(E)],
      ['llama.block_count', u32(N_LAYER)],
      ['llama.feed_forward_length', u32(N_FF)],
      ['llama.attention.head_count', u32(N_HEAD)],
      ['llama.attention.head_count_kv', u32(N_HEAD)],
      ['llama.rope.dimension_count', u32(HEAD_DIM)],
      ['llama.rope.freq_base', f32(10000)],
      ['llama.attention.layer_norm_rms_epsilon', f32(1e-5)],
      ['llama.pooling_type', u32(POOLING_TYPE_MEAN)],
      ['tokenizer.ggml.model', str('gpt2')],
      ['tokenizer.ggml.pre', str('qwen2')],
      ['tokenizer.ggml.tokens', arr(GGUFValueType.STRING, TINY_VOCAB)],
      ['tokenizer.ggml.token_type', arr(GGUFValueType.INT32, types)],
      ['tokenizer.ggml.merges', arr(GGUFValueType.STRING, TINY_MERGES)],
      ['tokenizer.ggml.bos_token_id', u32(TINY_VOCAB.indexOf('<|endoftext|>'))],
      ['tokenizer.ggml.eos_token_id', u32(TINY_VOCAB.indexOf('<|endoftext|>'))],
      ['tokenizer.ggml.padding_token_id', u32(TINY_VOCAB.indexOf('<|endoftext|>'))],
      ['tokenizer.ggml.add_bos_token', bool(false)],
      ['tokenizer.ggml.add_eos_token', bool(false)],
    ],
    tensors,
  });
}

/** Exposed for tests: the exact bytes ensureTinyEmbed writes. */
export function buildTinyEmbedFile(): Buffer {
  return buildEmbedModel();
}

export interface TinyEmbedPaths {
  model: string;
  name: string;
  dim: number;
  pooling: string;
}

/** Ensure `dir` holds the tiny embedding model (written atomically, rewritten if stale). */
export async function ensureTinyEmbed(dir: string): Promise<TinyEmbedPaths> {
  await mkdir(dir, { recursive: true });
  const model = path.resolve(dir, TINY_EMBED_FILE);
  await writeIfChanged(model, buildEmbedModel());
  return { model, name: TINY_EMBED_NAME, dim: TINY_EMBED_DIM, pooling: TINY_EMBED_POOLING };
}

/**
 * llama-server arguments that make it an embedding server for this model (port/host added by the
 * caller). `-kvu` (one KV buffer for all slots) is required at -np > 1: with per-slot buffers,
 * llama-server de3ff81 splits a request's inputs of different lengths into equal-length
 * micro-batches and mean-pools the longer input over its last part only, so
 * embed(["the cat sat", "x"])[0] != embed("the cat sat") (tests/embed-engine.test.ts pins it).
 */
export function tinyEmbedServerArgs(model: string, opts: { unifiedKv?: boolean } = {}): string[] {
  return ['-m', model, '--embeddings', '--pooling', TINY_EMBED_POOLING, '-c', String(TINY_EMBED_N_CTX_TRAIN), '-np', '2', ...(opts.unifiedKv === false ? [] : ['-kvu']), '-t', '2', '--alias', TINY_EMBED_NAME, '--no-webui'];
}
