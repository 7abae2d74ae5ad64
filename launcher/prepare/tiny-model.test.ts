import { gguf, type GGUFParseOutput } from '@huggingface/gguf';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTinyModelFiles,
  ensureTinyModel,
  TINY_CHAT_TEMPLATE,
  TINY_IMAGE_PROMPT_TOKEN_DELTA,
  TINY_IMAGE_TOKENS,
  TINY_MMPROJ_FILE,
  TINY_MODEL_FILE,
  TINY_N_CTX_TRAIN,
  TINY_TOKEN_ENDOFTEXT,
  TINY_TOKEN_IM_END,
  TINY_TOKEN_IM_START,
  TINY_VOCAB_SIZE,
  type TinyModelPaths,
} from './tiny-model.js';

type Parsed = GGUFParseOutput<{ strict: false }>;

let dir: string;
let paths: TinyModelPaths;
let model: Parsed;
let mmproj: Parsed;
let modelBytes: Buffer;

const read = async (p: string) => (await gguf(p, { allowLocalFile: true })) as unknown as Parsed;
const shapes = (p: Parsed) => Object.fromEntries(p.tensorInfos.map((t) => [t.name, t.shape.map(Number)]));

/** F32 tensor data straight from the file bytes. */
function tensor(p: Parsed, bytes: Buffer, name: string): { shape: number[]; data: Float32Array } {
  const info = p.tensorInfos.find((t) => t.name === name);
  if (!info) throw new Error(`no tensor ${name}`);
  const shape = info.shape.map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const off = Number(p.tensorDataOffset + info.offset);
  return { shape, data: Float32Array.from({ length: n }, (_, i) => bytes.readFloatLE(off + 4 * i)) };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tiny-model-'));
  paths = await ensureTinyModel(dir);
  [model, mmproj, modelBytes] = await Promise.all([read(paths.model), read(paths.mmproj), readFile(paths.model)]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ensureTinyModel', () => {
  it('returns the two files and the image/context facts', async () => {
    expect(basename(paths.model)).toBe(TINY_MODEL_FILE);
    expect(basename(paths.mmproj)).toBe(TINY_MMPROJ_FILE);
    expect(paths.imageTokens).toBe(16);
    expect(TINY_IMAGE_TOKENS).toBe(16);
    expect(TINY_IMAGE_PROMPT_TOKEN_DELTA).toBe(16); // measured against llama-server: no marker tokens
    expect(paths.nCtxTrain).toBe(4096);
    const [m, p] = [await stat(paths.model), await stat(paths.mmproj)];
    expect(m.size).toBeGreaterThan(300_000);
    expect(m.size).toBeLessThan(400_000);
    expect(p.size).toBeGreaterThan(120_000);
    expect(p.size).toBeLessThan(180_000);
  });

  it('is deterministic: same bytes on every generation and in every directory', async () => {
    const a = buildTinyModelFiles();
    const b = buildTinyModelFiles();
    expect(a.model.equals(b.model)).toBe(true);
    expect(a.mmproj.equals(b.mmproj)).toBe(true);
    expect(modelBytes.equals(a.model)).toBe(true);
    expect((await readFile(paths.mmproj)).equals(a.mmproj)).toBe(true);
  });

  it('leaves good files alone and replaces damaged ones', async () => {
    const before = (await stat(paths.model)).mtimeMs;
    await new Promise((r) => setTimeout(r, 20));
    await ensureTinyModel(dir);
    expect((await stat(paths.model)).mtimeMs).toBe(before);

    await writeFile(paths.mmproj, 'truncated');
    await ensureTinyModel(dir);
    expect((await readFile(paths.mmproj)).equals(buildTinyModelFiles().mmproj)).toBe(true);
  });

  it('survives concurrent callers', async () => {
    const other = join(dir, 'concurrent');
    const results = await Promise.all([ensureTinyModel(other), ensureTinyModel(other), ensureTinyModel(other)]);
    expect(new Set(results.map((r) => r.model)).size).toBe(1);
    expect((await readFile(results[0]!.model)).equals(modelBytes)).toBe(true);
  });
});

describe('text model', () => {
  it('is a llama-architecture GGUF v3 with the expected hyper-parameters', () => {
    const m = model.metadata;
    expect(m.version).toBe(3);
    expect(m['general.architecture']).toBe('llama');
    expect(m['llama.context_length']).toBe(TINY_N_CTX_TRAIN);
    expect(m['llama.embedding_length']).toBe(64);
    expect(m['llama.block_count']).toBe(2);
    expect(m['llama.feed_forward_length']).toBe(128);
    expect(m['llama.attention.head_count']).toBe(4);
    expect(m['llama.attention.head_count_kv']).toBe(2);
    expect(m['llama.rope.freq_base']).toBe(10000);
    expect(m['llama.attention.layer_norm_rms_epsilon']).toBeCloseTo(1e-5, 10);
  });

  it('has llama.cpp tensor names and ggml-order shapes, all F32', () => {
    const want: Record<string, number[]> = {
      'token_embd.weight': [64, TINY_VOCAB_SIZE],
      'output_norm.weight': [64],
      'output.weight': [64, TINY_VOCAB_SIZE],
    };
    for (const b of [0, 1]) {
      Object.assign(want, {
        [`blk.${b}.attn_norm.weight`]: [64],
        [`blk.${b}.attn_q.weight`]: [64, 64],
        [`blk.${b}.attn_k.weight`]: [64, 32],
        [`blk.${b}.attn_v.weight`]: [64, 32],
        [`blk.${b}.attn_output.weight`]: [64, 64],
        [`blk.${b}.ffn_norm.weight`]: [64],
        [`blk.${b}.ffn_gate.weight`]: [64, 128],
        [`blk.${b}.ffn_up.weight`]: [64, 128],
        [`blk.${b}.ffn_down.weight`]: [128, 64],
      });
    }
    expect(shapes(model)).toEqual(want);
    expect(model.tensorInfos.every((t) => t.dtype === 0)).toBe(true);
  });

  it('has a GPT-2 byte-level BPE vocabulary with ChatML control tokens', () => {
    const m = model.metadata;
    const tokens = m['tokenizer.ggml.tokens'] as string[];
    const types = m['tokenizer.ggml.token_type'] as number[];
    expect(m['tokenizer.ggml.model']).toBe('gpt2');
    expect(m['tokenizer.ggml.pre']).toBe('qwen2');
    expect(tokens).toHaveLength(TINY_VOCAB_SIZE);
    expect(TINY_VOCAB_SIZE).toBe(108);
    expect(m['llama.vocab_size']).toBe(TINY_VOCAB_SIZE);
    expect(types).toHaveLength(TINY_VOCAB_SIZE);
    expect(new Set(tokens).size).toBe(tokens.length);
    // byte -> unicode mapping: space, newline and tab are remapped, printable ASCII is not
    expect(tokens).toEqual(expect.arrayContaining(['Ġ', 'Ċ', 'ĉ', 'a', 'Z', '~', '!', 'Ġthe']));
    expect(tokens).not.toContain(' ');
    for (const merge of m['tokenizer.ggml.merges'] as string[]) {
      const [l, r] = merge.split(' ');
      expect(tokens).toContain(l);
      expect(tokens).toContain(r);
      expect(tokens).toContain(`${l}${r}`);
    }
    expect(tokens[TINY_TOKEN_ENDOFTEXT]).toBe('<|endoftext|>');
    expect(tokens[TINY_TOKEN_IM_START]).toBe('<|im_start|>');
    expect(tokens[TINY_TOKEN_IM_END]).toBe('<|im_end|>');
    const control = tokens.filter((_, i) => types[i] === 3);
    expect(control.sort()).toEqual(['<|endoftext|>', '<|im_end|>', '<|im_start|>']);
    expect(types.filter((t) => t !== 3).every((t) => t === 1)).toBe(true);
    expect(m['tokenizer.ggml.eos_token_id']).toBe(TINY_TOKEN_IM_END);
    expect(m['tokenizer.ggml.bos_token_id']).toBe(TINY_TOKEN_ENDOFTEXT);
    expect(m['tokenizer.ggml.padding_token_id']).toBe(TINY_TOKEN_ENDOFTEXT);
    expect(m['tokenizer.ggml.add_bos_token']).toBe(false);
  });

  it('carries a ChatML chat template', () => {
    const t = model.metadata['tokenizer.chat_template'];
    expect(t).toBe(TINY_CHAT_TEMPLATE);
    expect(t).toContain("'<|im_start|>' + message['role']");
    expect(t).toContain("'<|im_start|>assistant\\n'");
    expect(t).toContain("part['type'] == 'text'"); // typed (list-of-parts) content
  });

  it('wires the bias channel: dim 0 is 1 in every embedding and blocks never write it', () => {
    const embd = tensor(model, modelBytes, 'token_embd.weight');
    for (let t = 0; t < TINY_VOCAB_SIZE; t++) expect(embd.data[t * 64]).toBe(1);
    for (const b of [0, 1]) {
      const o = tensor(model, modelBytes, `blk.${b}.attn_output.weight`); // [64 in, 64 out]
      const d = tensor(model, modelBytes, `blk.${b}.ffn_down.weight`); // [128 in, 64 out]
      expect(o.data.subarray(0, 64).every((x) => x === 0)).toBe(true);
      expect(d.data.subarray(0, 128).every((x) => x === 0)).toBe(true);
    }
    const out = tensor(model, modelBytes, 'output.weight');
    const bias = (t: number) => out.data[t * 64]!;
    expect(bias(TINY_TOKEN_IM_START)).toBeLessThan(-10);
    expect(bias(TINY_TOKEN_ENDOFTEXT)).toBeLessThan(-10);
    expect(bias(TINY_TOKEN_IM_END)).toBeGreaterThan(0);
  });
});

describe('vision projector', () => {
  it('declares a CLIP vision encoder with an mlp projector', () => {
    const m = mmproj.metadata;
    expect(m.version).toBe(3);
    expect(m['general.architecture']).toBe('clip');
    expect(m['clip.has_vision_encoder']).toBe(true);
    expect(m['clip.projector_type']).toBe('mlp');
    expect(m['clip.vision.embedding_length']).toBe(32);
    expect(m['clip.vision.block_count']).toBe(2);
    expect(m['clip.vision.attention.head_count']).toBe(4);
    expect(m['clip.vision.feed_forward_length']).toBe(128);
    expect(m['clip.vision.attention.layer_norm_epsilon']).toBeCloseTo(1e-5, 10);
    expect(m['clip.vision.image_mean']).toHaveLength(3);
    expect(m['clip.vision.image_std']).toHaveLength(3);
  });

  it('turns one image into exactly TINY_IMAGE_TOKENS embeddings of the text width', () => {
    const m = mmproj.metadata;
    const size = m['clip.vision.image_size'] as number;
    const patch = m['clip.vision.patch_size'] as number;
    expect((size / patch) ** 2).toBe(TINY_IMAGE_TOKENS);
    const s = shapes(mmproj);
    expect(s['v.class_embd']).toBeUndefined(); // a CLS token would not change the count, but keep it simple
    expect(s['v.position_embd.weight']).toEqual([32, TINY_IMAGE_TOKENS]);
    expect(s['v.patch_embd.weight']).toEqual([patch, patch, 3, 32]);
    // projection output width = text model embedding width (llama-server checks this)
    expect(m['clip.vision.projection_dim']).toBe(model.metadata['llama.embedding_length']);
    expect(s['mm.2.weight']).toEqual([64, model.metadata['llama.embedding_length']]);
  });

  it('has the tensors clip.cpp loads for a LLaVA mlp projector', () => {
    const s = shapes(mmproj);
    const want: Record<string, number[]> = {
      'v.patch_embd.weight': [8, 8, 3, 32],
      'v.patch_embd.bias': [32],
      'v.position_embd.weight': [32, 16],
      'v.pre_ln.weight': [32],
      'v.pre_ln.bias': [32],
      'mm.0.weight': [32, 64],
      'mm.0.bias': [64],
      'mm.2.weight': [64, 64],
      'mm.2.bias': [64],
    };
    for (const b of [0, 1]) {
      for (const n of ['attn_q', 'attn_k', 'attn_v', 'attn_out']) {
        want[`v.blk.${b}.${n}.weight`] = [32, 32];
        want[`v.blk.${b}.${n}.bias`] = [32];
      }
      for (const n of ['ln1', 'ln2']) {
        want[`v.blk.${b}.${n}.weight`] = [32];
        want[`v.blk.${b}.${n}.bias`] = [32];
      }
      // up: [n_embd, n_ff], down: [n_ff, n_embd] (else clip.cpp treats them as swapped)
      Object.assign(want, {
        [`v.blk.${b}.ffn_up.weight`]: [32, 128],
        [`v.blk.${b}.ffn_up.bias`]: [128],
        [`v.blk.${b}.ffn_down.weight`]: [128, 32],
        [`v.blk.${b}.ffn_down.bias`]: [32],
      });
    }
    expect(s).toEqual(want);
    expect(mmproj.tensorInfos.every((t) => t.dtype === 0)).toBe(true);
  });
});
