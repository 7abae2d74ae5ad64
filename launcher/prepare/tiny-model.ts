// Generates a tiny random-weight vision-language model for llama.cpp's llama-server:
//   portico-tiny-vlm.gguf         llama-arch text model (356 KB, F32)
//   portico-tiny-vlm-mmproj.gguf  CLIP/LLaVA "mlp" vision projector (157 KB, F32)
// Output is byte-for-byte deterministic (fixed-seed PRNG, no transcendental math in weights).
//
// The weights are random except for three hand-wired residual channels that make the
// model behave like a (nonsense-speaking) chat model: printable replies that end with
// <|im_end|> after roughly 40 tokens, never leaking other control tokens.
//
//   dim 0 "bias":   every token embedding has 1.0 here and no block writes to it, so
//                   output.weight[tok][0] is a per-token logit bias. It forbids control
//                   tokens and restricts generation to the GEN set (see isGenToken).
//   dim 1 "anchor": 1.0 in the embedding of every token outside GEN (<|im_start|>, "\n",
//                   vowels, capitals, punctuation...). A reply only contains GEN tokens, so the
//                   newest anchor marks where the reply began (the "\n" after "assistant").
//   dim 2 "fresh":  layer 0 / head 0 attends to anchors with a RoPE-dependent score that
//                   falls ~0.3 per token of distance, and writes the attention mass it puts
//                   on anchors here: ~1 at the start of a reply, decaying to 0 after ~40
//                   tokens. output.weight[<|im_end|>] = BETA*dim0 - LAMBDA*dim2, so the end
//                   token is suppressed early and wins once the mass has decayed.
// Blocks read and write only the remaining "content" dims 3..63 (random weights).
// Caveat: a raw (non-chat) prompt with no anchor token at all, e.g. "bcd fgh", ends at once.
import { mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { arr, bool, f32, GGUFValueType, str, u32, writeGGUF, type GGUFTensor } from "./gguf-writer.js";
import { mulberry32, normal } from './det-random.js';
import { isMainModule } from '../../core/main-module.js';

export const TINY_MODEL_FILE = "portico-tiny-vlm.gguf";
export const TINY_MMPROJ_FILE = "portico-tiny-vlm-mmproj.gguf";
export const TINY_MODEL_NAME = "portico-tiny-vlm";

/** Embedding rows one image becomes: (image_size / patch_size)^2 = (32/8)^2, no CLS token. */
export const TINY_IMAGE_TOKENS = 16;
/**
 * How much usage.prompt_tokens grows when an image part is added to a chat message, as
 * measured against llama-server: the "mlp" projector adds no begin/end marker tokens, and
 * llama-server joins media markers to neighbouring text parts without a separator.
 */
export const TINY_IMAGE_PROMPT_TOKEN_DELTA = TINY_IMAGE_TOKENS;
export const TINY_N_CTX_TRAIN = 4096;

// Text model hyper-parameters.
export const TINY_N_EMBD = 64;
export const TINY_N_LAYER = 2;
export const TINY_N_HEAD = 4;
export const TINY_N_HEAD_KV = 2;
export const TINY_N_FF = 128;
const HEAD_DIM = TINY_N_EMBD / TINY_N_HEAD; // 16
const ROPE_BASE = 10000;
const RMS_EPS = 1e-5;

// Vision tower hyper-parameters.
export const TINY_VIT_EMBD = 32;
const VIT_LAYERS = 2;
const VIT_HEADS = 4;
const VIT_FF = 128;
export const TINY_IMAGE_SIZE = 32;
export const TINY_PATCH_SIZE = 8;
const MM_HIDDEN = 64;

// ChatML, tools-capable in the Hermes / Qwen2.5 format (tools listed in the system turn inside
// <tools></tools>, calls as <tool_call>{"name", "arguments"}</tool_call>, results as <tool_response>
// in a user turn), so llama-server --jinja renders `tools`, tool-call messages and `tool` results.
// Without tools it renders exactly the plain ChatML it always did (same prompt tokens).
export const TINY_CHAT_TEMPLATE =
  // typed content (list of parts): llama-server flattens parts to a string itself, but other
  // renderers may not; text parts are concatenated, anything else is dropped.
  "{%- macro text(content) -%}{%- if content is string -%}{{- content -}}" +
  "{%- elif content -%}{%- for part in content -%}" +
  "{%- if part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}{%- endfor -%}{%- endif -%}{%- endmacro -%}" +
  "{%- if tools -%}{{- '<|im_start|>system\\n' -}}" +
  "{%- if messages and messages[0]['role'] == 'system' -%}{{- text(messages[0]['content']) + '\\n\\n' -}}{%- endif -%}" +
  "{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>' -}}" +
  "{%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}{%- endfor -%}" +
  "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\\n</tool_call><|im_end|>\\n' -}}" +
  "{%- endif -%}" +
  "{%- for message in messages -%}" +
  "{%- if tools and loop.first and message['role'] == 'system' -%}" +
  "{%- elif message['role'] == 'tool' -%}" +
  "{%- if loop.first or messages[loop.index0 - 1]['role'] != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}" +
  "{{- '\\n<tool_response>\\n' + text(message['content']) + '\\n</tool_response>' -}}" +
  "{%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' -%}{{- '<|im_end|>\\n' -}}{%- endif -%}" +
  "{%- else -%}" +
  "{{- '<|im_start|>' + message['role'] + '\\n' -}}" +
  // A reasoning trace of an earlier assistant turn, DeepSeek-R1 style (llama.cpp reads the
  // <think> markers from here to split reasoning_content out of answers).
  "{%- if message['role'] == 'assistant' and message['reasoning_content'] -%}{{- '<think>\\n' + message['reasoning_content'] + '\\n</think>\\n' -}}{%- endif -%}" +
  "{{- text(message['content']) -}}" +
  "{%- if message['tool_calls'] -%}{%- for call in message['tool_calls'] -%}" +
  "{%- if call['function'] is defined -%}{%- set call = call['function'] -%}{%- endif -%}" +
  "{{- '\\n<tool_call>\\n{\"name\": \"' + call['name'] + '\", \"arguments\": ' -}}" +
  "{%- if call['arguments'] is string -%}{{- call['arguments'] -}}{%- else -%}{{- call['arguments'] | tojson -}}{%- endif -%}" +
  "{{- '}\\n</tool_call>' -}}" +
  "{%- endfor -%}{%- endif -%}" +
  "{{- '<|im_end|>\\n' -}}" +
  "{%- endif -%}" +
  "{%- endfor -%}" +
  "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

// ---------------------------------------------------------------------------------------
// Vocabulary: GPT-2 byte-level BPE over printable ASCII + \n + \t, a few merges, 3 specials.

/** GPT-2's bytes_to_unicode(): printable bytes map to themselves, the rest to U+0100+n. */
function byteToUnicode(): Map<number, string> {
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const map = new Map<number, string>();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    map.set(b, String.fromCodePoint(keep.includes(b) ? b : 256 + n++));
  }
  return map;
}
const B2U = byteToUnicode();
const byteToken = (b: number): string => B2U.get(b)!;

/** Merges in rank order; each merge's result is also a token. "Ġ" is the space byte. */
export const TINY_MERGES: readonly string[] = ["Ġ t", "h e", "i n", "e r", "Ġ a", "o n", "r e", "Ġt he"];
export const TINY_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] as const;

function buildVocab(): { tokens: string[]; types: number[] } {
  const tokens: string[] = [];
  for (let b = 0x20; b <= 0x7e; b++) tokens.push(byteToken(b));
  tokens.push(byteToken(0x0a), byteToken(0x09));
  for (const m of TINY_MERGES) tokens.push(m.replace(" ", ""));
  const types = tokens.map(() => 1); // LLAMA_TOKEN_TYPE_NORMAL
  for (const s of TINY_SPECIAL_TOKENS) {
    tokens.push(s);
    types.push(3); // LLAMA_TOKEN_TYPE_CONTROL
  }
  return { tokens, types };
}
const VOCAB = buildVocab();
export const TINY_VOCAB: readonly string[] = VOCAB.tokens;
export const TINY_VOCAB_SIZE = VOCAB.tokens.length; // 108
export const TINY_TOKEN_ENDOFTEXT = VOCAB.tokens.indexOf("<|endoftext|>");
export const TINY_TOKEN_IM_START = VOCAB.tokens.indexOf("<|im_start|>");
export const TINY_TOKEN_IM_END = VOCAB.tokens.indexOf("<|im_end|>");

/**
 * Tokens the model may generate (GEN): lowercase consonants, space and the merges. Every
 * other token is an "anchor". Single vowels are anchors so that even an all-lowercase raw
 * completion prompt almost always contains one (no anchor at all = immediate <|im_end|>).
 */
function isGenToken(tok: string): boolean {
  return tok.length > 1 ? /^(Ġ|[a-z])+$/.test(tok) : /^(Ġ|[b-df-hj-np-tv-z])$/.test(tok);
}


/** Row-major matrix in ggml layout: dims [nIn, nOut], element (out, in) at out * nIn + in. */
class Mat {
  readonly data: Float32Array;
  constructor(readonly nIn: number, readonly nOut: number) {
    this.data = new Float32Array(nIn * nOut);
  }
  set(out: number, inp: number, v: number): void {
    this.data[out * this.nIn + inp] = v;
  }
  /** Fill (out, in) for out in outs, in in ins with N(0, std). */
  randn(rand: () => number, std: number, outs: Iterable<number>, ins: readonly number[]): this {
    for (const o of outs) for (const i of ins) this.set(o, i, normal(rand) * std);
    return this;
  }
  tensor(name: string): GGUFTensor {
    return { name, dims: [this.nIn, this.nOut], data: this.data };
  }
}
const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, i) => a + i);
const filled = (n: number, v: number): Float32Array => new Float32Array(n).fill(v);
const randVec = (rand: () => number, n: number, std: number): Float32Array =>
  Float32Array.from({ length: n }, () => normal(rand) * std);

// ---------------------------------------------------------------------------------------
// Text model.

const D_BIAS = 0;
const D_ANCHOR = 1;
const D_FRESH = 2;
const CONTENT = range(3, TINY_N_EMBD);

const RHO = 1; // norm of each token's random content embedding
const KAPPA = 1; // anchor channel value in anchor tokens' embeddings
// Counter head: uses RoPE pair 7 of head 0 (the slowest, 3.2e-4 rad/token): its score
// S0*cos(a) - (SLOPE/theta)*sin(a), a = distance*theta, falls ~linearly with distance and
// only revives after ~10k tokens, well beyond n_ctx_train. Faster pairs revived old anchors
// in long prompts, which then suppressed <|im_end|> forever.
const COUNTER_PAIR = 7;
const COUNTER_THETA = 1 / (1000 * Math.sqrt(10)); // 10000^(-2*7/16), via sqrt for bit-exactness
const COUNTER_SCORE0 = 14; // anchor score at distance 0 (vs 0 for non-anchors)
const COUNTER_SLOPE = 0.3; // score lost per token of distance
// Output logit wiring (multiplied by 1/rms(h) ~ 5-6 at the final norm).
const BETA = 3; // <|im_end|> bias once the anchor mass has decayed
const LAMBDA = 12; // <|im_end|> suppression per unit of anchor mass
const NON_GEN_BIAS = -8; // printable tokens outside GEN
const CONTROL_BIAS = -20; // <|im_start|>, <|endoftext|>
const OUT_STD = 0.3; // random content logit weights of GEN tokens
const W_STD = 0.12; // random attention / ffn weights
const W_OUT_STD = 0.04; // random weights writing into the residual stream

function buildTextModel(): Buffer {
  const rand = mulberry32(0x706f7274); // "port"
  const V = TINY_VOCAB_SIZE;
  const E = TINY_N_EMBD;
  const anchor = TINY_VOCAB.map((t) => !isGenToken(t));

  // Embeddings: [1, anchor, 0, content with norm RHO]; fixed norms make every RMS-norm scale
  // of layer 0 a known constant.
  const embd = new Mat(E, V);
  for (let t = 0; t < V; t++) {
    const c = CONTENT.map(() => normal(rand));
    const norm = Math.sqrt(c.reduce((s, x) => s + x * x, 0));
    embd.set(t, D_BIAS, 1);
    if (anchor[t]) embd.set(t, D_ANCHOR, KAPPA);
    CONTENT.forEach((d, i) => embd.set(t, d, (c[i]! / norm) * RHO));
  }
  // attn_norm(layer 0) scale of dim 0 for a GEN query token and of dim 1 for an anchor key.
  const qNorm0 = Math.sqrt(E / (1 + RHO * RHO));
  const kNorm1 = KAPPA * Math.sqrt(E / (1 + KAPPA * KAPPA + RHO * RHO));
  const kqScale = 1 / Math.sqrt(HEAD_DIM);

  const tensors: GGUFTensor[] = [embd.tensor("token_embd.weight")];
  const out = new Mat(E, V);
  for (let t = 0; t < V; t++) {
    const tok = TINY_VOCAB[t]!;
    if (t === TINY_TOKEN_IM_END) {
      out.set(t, D_BIAS, BETA);
      out.set(t, D_FRESH, -LAMBDA);
    } else if (TINY_VOCAB[t]!.startsWith("<|")) {
      out.set(t, D_BIAS, CONTROL_BIAS);
    } else if (isGenToken(tok)) {
      out.randn(rand, OUT_STD, [t], CONTENT);
    } else {
      out.set(t, D_BIAS, NON_GEN_BIAS);
    }
  }
  tensors.push({ name: "output_norm.weight", dims: [E], data: filled(E, 1) }, out.tensor("output.weight"));

  const nQ = TINY_N_HEAD * HEAD_DIM;
  const nKV = TINY_N_HEAD_KV * HEAD_DIM;
  for (let il = 0; il < TINY_N_LAYER; il++) {
    const wq = new Mat(E, nQ);
    const wk = new Mat(E, nKV);
    const wv = new Mat(E, nKV);
    const wo = new Mat(nQ, E);
    // In layer 0, q heads 0-1 / kv head 0 are reserved for the counter (head 1 stays zero:
    // uniform attention, and its output is discarded by zero wo columns).
    const firstRandomQ = il === 0 ? 2 * HEAD_DIM : 0;
    const firstRandomKV = il === 0 ? HEAD_DIM : 0;
    wq.randn(rand, W_STD, range(firstRandomQ, nQ), CONTENT);
    wk.randn(rand, W_STD, range(firstRandomKV, nKV), CONTENT);
    wv.randn(rand, W_STD, range(firstRandomKV, nKV), CONTENT);
    for (const d of CONTENT) wo.randn(rand, W_OUT_STD, [d], range(firstRandomQ, nQ));
    if (il === 0) {
      // score(distance) = kqScale * q . R(-distance*theta) k = S0*cos(a) - (SLOPE/theta)*sin(a)
      const slot = 2 * COUNTER_PAIR;
      wq.set(slot, D_BIAS, 1);
      wk.set(slot, D_ANCHOR, COUNTER_SCORE0 / (kqScale * qNorm0 * kNorm1));
      wk.set(slot + 1, D_ANCHOR, -(COUNTER_SLOPE / COUNTER_THETA) / (kqScale * qNorm0 * kNorm1));
      wv.set(0, D_ANCHOR, 1 / kNorm1); // value 1 for anchors, 0 otherwise
      wo.set(D_FRESH, 0, 1); // fresh = attention mass on anchors
    }
    const gate = new Mat(E, TINY_N_FF).randn(rand, W_STD, range(0, TINY_N_FF), CONTENT);
    const up = new Mat(E, TINY_N_FF).randn(rand, W_STD, range(0, TINY_N_FF), CONTENT);
    const down = new Mat(TINY_N_FF, E).randn(rand, W_OUT_STD, CONTENT, range(0, TINY_N_FF));
    const p = `blk.${il}`;
    tensors.push(
      { name: `${p}.attn_norm.weight`, dims: [E], data: filled(E, 1) },
      wq.tensor(`${p}.attn_q.weight`),
      wk.tensor(`${p}.attn_k.weight`),
      wv.tensor(`${p}.attn_v.weight`),
      wo.tensor(`${p}.attn_output.weight`),
      { name: `${p}.ffn_norm.weight`, dims: [E], data: filled(E, 1) },
      gate.tensor(`${p}.ffn_gate.weight`),
      up.tensor(`${p}.ffn_up.weight`),
      down.tensor(`${p}.ffn_down.weight`),
    );
  }

  return writeGGUF({
    kv: [
      ["general.architecture", str("llama")],
      ["general.name", str(TINY_MODEL_NAME)],
      ["general.file_type", u32(0)], // all F32
      ["llama.vocab_size", u32(V)],
      ["llama.context_length", u32(TINY_N_CTX_TRAIN)],
      ["llama.embedding_length", u32(E)],
      ["llama.block_count", u32(TINY_N_LAYER)],
      ["llama.feed_forward_length", u32(TINY_N_FF)],
      ["llama.attention.head_count", u32(TINY_N_HEAD)],
      ["llama.attention.head_count_kv", u32(TINY_N_HEAD_KV)],
      ["llama.rope.dimension_count", u32(HEAD_DIM)],
      ["llama.rope.freq_base", f32(ROPE_BASE)],
      ["llama.attention.layer_norm_rms_epsilon", f32(RMS_EPS)],
      ["tokenizer.ggml.model", str("gpt2")],
      // "qwen2" pre-tokenizer: accepted by llama.cpp and disables clean_spaces, so
      // detokenize(tokenize(text)) round-trips exactly.
      ["tokenizer.ggml.pre", str("qwen2")],
      ["tokenizer.ggml.tokens", arr(GGUFValueType.STRING, VOCAB.tokens)],
      ["tokenizer.ggml.token_type", arr(GGUFValueType.INT32, VOCAB.types)],
      ["tokenizer.ggml.merges", arr(GGUFValueType.STRING, TINY_MERGES)],
      ["tokenizer.ggml.bos_token_id", u32(TINY_TOKEN_ENDOFTEXT)],
      ["tokenizer.ggml.eos_token_id", u32(TINY_TOKEN_IM_END)],
      ["tokenizer.ggml.padding_token_id", u32(TINY_TOKEN_ENDOFTEXT)],
      ["tokenizer.ggml.add_bos_token", bool(false)],
      ["tokenizer.chat_template", str(TINY_CHAT_TEMPLATE)],
    ],
    tensors,
  });
}

// ---------------------------------------------------------------------------------------
// Vision projector: CLIP ViT (32x32 input, 8x8 patches -> 16 patches) + LLaVA 2-layer MLP.

function buildMmproj(): Buffer {
  const rand = mulberry32(0x7669736e); // "visn"
  const E = TINY_VIT_EMBD;
  const nPatch = (TINY_IMAGE_SIZE / TINY_PATCH_SIZE) ** 2;
  const vec = (name: string, n: number, std: number, mean = 0): GGUFTensor => ({
    name,
    dims: [n],
    data: randVec(rand, n, std).map((x) => x + mean),
  });
  const mat = (name: string, nIn: number, nOut: number, std: number): GGUFTensor =>
    new Mat(nIn, nOut).randn(rand, std, range(0, nOut), range(0, nIn)).tensor(name);

  const patchIn = TINY_PATCH_SIZE * TINY_PATCH_SIZE * 3;
  const tensors: GGUFTensor[] = [
    // conv2d kernel [KW, KH, C_in, C_out]
    { name: "v.patch_embd.weight", dims: [TINY_PATCH_SIZE, TINY_PATCH_SIZE, 3, E], data: randVec(rand, patchIn * E, 1 / Math.sqrt(patchIn)) },
    vec("v.patch_embd.bias", E, 0.02),
    { name: "v.position_embd.weight", dims: [E, nPatch], data: randVec(rand, E * nPatch, 0.1) },
    vec("v.pre_ln.weight", E, 0.02, 1),
    vec("v.pre_ln.bias", E, 0.02),
  ];
  for (let il = 0; il < VIT_LAYERS; il++) {
    const p = `v.blk.${il}`;
    tensors.push(
      vec(`${p}.ln1.weight`, E, 0.02, 1),
      vec(`${p}.ln1.bias`, E, 0.02),
      mat(`${p}.attn_q.weight`, E, E, 1 / Math.sqrt(E)),
      vec(`${p}.attn_q.bias`, E, 0.02),
      mat(`${p}.attn_k.weight`, E, E, 1 / Math.sqrt(E)),
      vec(`${p}.attn_k.bias`, E, 0.02),
      mat(`${p}.attn_v.weight`, E, E, 1 / Math.sqrt(E)),
      vec(`${p}.attn_v.bias`, E, 0.02),
      mat(`${p}.attn_out.weight`, E, E, 0.5 / Math.sqrt(E)),
      vec(`${p}.attn_out.bias`, E, 0.02),
      vec(`${p}.ln2.weight`, E, 0.02, 1),
      vec(`${p}.ln2.bias`, E, 0.02),
      // ffn_up [n_embd, n_ff], ffn_down [n_ff, n_embd] (modern orientation: not "swapped")
      mat(`${p}.ffn_up.weight`, E, VIT_FF, 1 / Math.sqrt(E)),
      vec(`${p}.ffn_up.bias`, VIT_FF, 0.02),
      mat(`${p}.ffn_down.weight`, VIT_FF, E, 0.5 / Math.sqrt(VIT_FF)),
      vec(`${p}.ffn_down.bias`, E, 0.02),
    );
  }
  // Projector output must not touch the text model's wired channels (dims 0-2), so image
  // embeddings are plain "content" to the text model.
  const mm2 = new Mat(MM_HIDDEN, TINY_N_EMBD).randn(rand, 0.03, CONTENT, range(0, MM_HIDDEN));
  const mm2b = new Float32Array(TINY_N_EMBD);
  for (const d of CONTENT) mm2b[d] = normal(rand) * 0.02;
  tensors.push(
    mat("mm.0.weight", E, MM_HIDDEN, 1 / Math.sqrt(E)),
    vec("mm.0.bias", MM_HIDDEN, 0.02),
    mm2.tensor("mm.2.weight"),
    { name: "mm.2.bias", dims: [TINY_N_EMBD], data: mm2b },
  );

  return writeGGUF({
    kv: [
      ["general.architecture", str("clip")],
      ["general.name", str(`${TINY_MODEL_NAME}-mmproj`)],
      ["general.file_type", u32(0)],
      ["clip.has_vision_encoder", bool(true)],
      ["clip.has_text_encoder", bool(false)],
      ["clip.projector_type", str("mlp")],
      ["clip.vision.image_size", u32(TINY_IMAGE_SIZE)],
      ["clip.vision.patch_size", u32(TINY_PATCH_SIZE)],
      ["clip.vision.embedding_length", u32(E)],
      ["clip.vision.feed_forward_length", u32(VIT_FF)],
      ["clip.vision.projection_dim", u32(TINY_N_EMBD)],
      ["clip.vision.block_count", u32(VIT_LAYERS)],
      ["clip.vision.attention.head_count", u32(VIT_HEADS)],
      ["clip.vision.attention.layer_norm_epsilon", f32(1e-5)],
      ["clip.vision.image_mean", arr(GGUFValueType.FLOAT32, [0.48145466, 0.4578275, 0.40821073])],
      ["clip.vision.image_std", arr(GGUFValueType.FLOAT32, [0.26862954, 0.26130258, 0.27577711])],
    ],
    tensors,
  });
}

// ---------------------------------------------------------------------------------------

export interface TinyModelPaths {
  model: string;
  mmproj: string;
  imageTokens: number;
  nCtxTrain: number;
}

/** Exposed for tests: the exact bytes ensureTinyModel writes. */
export function buildTinyModelFiles(): { model: Buffer; mmproj: Buffer } {
  return { model: buildTextModel(), mmproj: buildMmproj() };
}

/** Write `bytes` to `file` unless it already holds exactly those bytes (atomic via rename). */
async function writeIfChanged(file: string, bytes: Buffer): Promise<void> {
  const existing = await readFile(file).catch(() => undefined);
  if (existing && existing.equals(bytes)) return;
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/**
 * Ensure `dir` holds the tiny model + projector. Files that are missing (or stale, from an
 * older generator) are (re)written; concurrent callers are safe since content is identical.
 */
export async function ensureTinyModel(dir: string): Promise<TinyModelPaths> {
  await mkdir(dir, { recursive: true });
  const model = path.resolve(dir, TINY_MODEL_FILE);
  const mmproj = path.resolve(dir, TINY_MMPROJ_FILE);
  const files = buildTinyModelFiles();
  await writeIfChanged(model, files.model);
  await writeIfChanged(mmproj, files.mmproj);
  return { model, mmproj, imageTokens: TINY_IMAGE_TOKENS, nCtxTrain: TINY_N_CTX_TRAIN };
}

if (isMainModule(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir) {
    console.error("usage: node dist/launcher/prepare/tiny-model.js <output-dir>");
    process.exit(2);
  }
  const paths = await ensureTinyModel(dir);
  console.log(paths.model);
  console.log(paths.mmproj);
}
