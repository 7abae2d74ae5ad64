// The tiny embedding model served by the real llama-server (`--embeddings --pooling mean`):
// the facts the multi-model gateway (issue 15) relies on, proven against the engine itself.
import OpenAI from 'openai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTinyEmbed, TINY_EMBED_DIM, TINY_EMBED_NAME, tinyEmbedServerArgs } from '../launcher/prepare/tiny-embed.js';
import { startLlamaServer, type LlamaServer } from './helpers/llama-server.js';

interface EmbeddingsBody {
  model: string;
  object: string;
  data: { index: number; object: string; embedding: number[] | string; encoding_format?: string }[];
  usage: { prompt_tokens: number; total_tokens: number };
}

let dir: string;
let engine: LlamaServer;
let client: OpenAI;

async function embed(body: Record<string, unknown>): Promise<{ status: number; text: string; json: EmbeddingsBody }> {
  const r = await fetch(`${engine.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: TINY_EMBED_NAME, ...body }) });
  const text = await r.text();
  return { status: r.status, text, json: JSON.parse(text) as EmbeddingsBody };
}
const floats = (e: number[] | string) => Float32Array.from(e as number[]);
const fromBase64 = (e: number[] | string) => {
  const b = Buffer.from(e as string, 'base64');
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};
/**
 * Largest component difference. Batching other inputs alongside changes the order of float
 * sums in the engine's matrix products, which moves components by ~3e-8 (measured); a real
 * pooling error moves them by ~5e-3. Identical requests are compared exactly instead.
 */
const maxDiff = (a: Float32Array, b: Float32Array) => (a.length !== b.length ? Infinity : a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0));
const BATCH_EPS = 1e-6;
const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const cosine = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0) / (norm(a) * norm(b));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'embed-engine-'));
  const { model } = await ensureTinyEmbed(dir);
  engine = await startLlamaServer(tinyEmbedServerArgs(model));
  client = new OpenAI({ baseURL: `${engine.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  await engine?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('tiny-embed on the real llama-server', () => {
  it('string input, encoding_format float: one unit-length vector of the model dimension', async () => {
    const r = await embed({ input: 'hello world', encoding_format: 'float' });
    expect(r.status).toBe(200);
    expect(r.json.model).toBe(TINY_EMBED_NAME);
    expect(r.json.object).toBe('list');
    expect(r.json.data).toHaveLength(1);
    const [d] = r.json.data;
    expect(d).toMatchObject({ index: 0, object: 'embedding' });
    const v = floats(d!.embedding);
    expect(v).toHaveLength(TINY_EMBED_DIM);
    expect(v.every(Number.isFinite)).toBe(true);
    expect(Math.abs(norm(v) - 1)).toBeLessThan(1e-5); // llama-server L2-normalizes OpenAI embeddings
    // prompt_tokens counts the input's tokens, as the engine's own tokenizer sees them
    const tok = (await (await fetch(`${engine.url}/tokenize`, { method: 'POST', body: JSON.stringify({ content: 'hello world' }) })).json()) as { tokens: number[] };
    expect(r.json.usage.prompt_tokens).toBe(tok.tokens.length);
  });

  it('list input: one vector per item in order; different inputs differ, equal inputs are equal', async () => {
    const inputs = ['the cat sat', 'a completely different sentence', 'the cat sat', 'zzz'];
    const r = await embed({ input: inputs, encoding_format: 'float' });
    expect(r.status).toBe(200);
    expect(r.json.data.map((d) => d.index)).toEqual([0, 1, 2, 3]);
    const vs = r.json.data.map((d) => floats(d.embedding));
    for (const v of vs) expect(v).toHaveLength(TINY_EMBED_DIM);
    expect(maxDiff(vs[0]!, vs[2]!)).toBeLessThan(BATCH_EPS);
    for (const [i, j] of [[0, 1], [0, 3], [1, 3]] as const) expect(cosine(vs[i]!, vs[j]!)).toBeLessThan(0.99);
    // an item of a list is embedded exactly as the same string alone (inputs of different lengths)
    for (const [i, text] of inputs.entries()) {
      const alone = await embed({ input: text, encoding_format: 'float' });
      expect(maxDiff(floats(alone.json.data[0]!.embedding), vs[i]!)).toBeLessThan(BATCH_EPS);
    }
  });

  it('is deterministic: the same request twice gives byte-identical answers', async () => {
    const body = { input: ['determinism', 'check'], encoding_format: 'float' };
    const a = await embed(body);
    const b = await embed(body);
    expect(a.json.data).toEqual(b.json.data);
  });

  it('encoding_format base64 is done by llama-server itself: little-endian float32 of the same vector', async () => {
    const f = await embed({ input: ['base', 'sixty four'], encoding_format: 'float' });
    const b = await embed({ input: ['base', 'sixty four'], encoding_format: 'base64' });
    expect(b.status).toBe(200);
    for (const i of [0, 1]) {
      const d = b.json.data[i]!;
      expect(typeof d.embedding).toBe('string');
      expect(d.encoding_format).toBe('base64');
      expect(fromBase64(d.embedding)).toEqual(floats(f.json.data[i]!.embedding));
    }
  });

  it('the official openai SDK (base64 on the wire by default, decoded by the SDK) gets the same vectors', async () => {
    const f = await embed({ input: 'sdk check', encoding_format: 'float' });
    const sdk = await client.embeddings.create({ model: TINY_EMBED_NAME, input: 'sdk check' });
    expect(sdk.data[0]!.embedding).toHaveLength(TINY_EMBED_DIM);
    expect(Float32Array.from(sdk.data[0]!.embedding)).toEqual(floats(f.json.data[0]!.embedding));
    const asFloat = await client.embeddings.create({ model: TINY_EMBED_NAME, input: ['sdk check', 'other'], encoding_format: 'float' });
    expect(asFloat.data).toHaveLength(2);
    expect(maxDiff(Float32Array.from(asFloat.data[0]!.embedding), floats(f.json.data[0]!.embedding))).toBeLessThan(BATCH_EPS);
  });

  it('refuses an unknown encoding_format with a 400 (the gateway must map it to the OpenAI envelope)', async () => {
    const r = await embed({ input: 'x', encoding_format: 'hex' });
    expect(r.status).toBe(400);
    expect(JSON.parse(r.text)).toMatchObject({ error: { code: 400, type: 'invalid_request_error', message: expect.stringMatching(/float or base64/) } });
  });
});

describe('llama-server de3ff81 quirk that tinyEmbedServerArgs avoids with -kvu', () => {
  it('without a unified KV buffer (-np 2), a list with inputs of different lengths pools the longer one wrongly', async () => {
    const { model } = await ensureTinyEmbed(dir);
    const split = await startLlamaServer(tinyEmbedServerArgs(model, { unifiedKv: false }));
    try {
      const post = async (input: unknown) => {
        const r = await fetch(`${split.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input, encoding_format: 'float' }) });
        return ((await r.json()) as EmbeddingsBody).data.map((d) => floats(d.embedding));
      };
      const [alone] = await post('the cat sat');
      const [long, short] = await post(['the cat sat', 'x']);
      const [xAlone] = await post('x');
      expect(maxDiff(short!, xAlone!)).toBeLessThan(BATCH_EPS); // the short input (one micro-batch) is right
      // the long one is not (measured: 5e-3 off in its first component); if this fails, the
      // engine was fixed and -kvu may go
      expect(maxDiff(long!, alone!)).toBeGreaterThan(1e-3);
    } finally {
      await split.stop();
    }
  });
});
