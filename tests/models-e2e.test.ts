// Several models behind one gateway, end to end: `portico serve` with no settings runs the CPU
// demo's two models, each on its own real llama-server (portico/tiny-vlm: chat and vision;
// portico/tiny-embed: a 48-dimension embedding model), and the official openai SDK talks to both
// through the one base URL.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_EMBED_DIM, TINY_EMBED_N_CTX_TRAIN } from '../launcher/prepare/tiny-embed.js';
import { DEMO_MODEL_NAME } from '../launcher/plan.js';
import { png, dataUri } from '../gateway/media/test-images.js';
import { json, type ModelList, type TokenizeResult } from './helpers/json.js';
import { promtoolCheck } from './helpers/prometheus.js';
import { startStack, type Stack } from './helpers/stack.js';

const CHAT = DEMO_MODEL_NAME;
const EMBED = 'portico/tiny-embed';

let stack: Stack;
let client: OpenAI;

beforeAll(async () => {
  stack = await startStack();
  client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  expect(await stack?.stop()).toBe(0);
});

const postJson = (path: string, body: unknown) => fetch(`${stack.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
type Embeddings = { model: string; data: { index: number; embedding: number[] | string }[]; usage: { prompt_tokens: number } };
/** Same vector up to float noise: llama-server's batching of a list moves the last bits (~3e-8). */
const expectClose = (a: number[], b: number[]) => {
  expect(a).toHaveLength(b.length);
  a.forEach((x, i) => expect(Math.abs(x - b[i]!), `component ${i}`).toBeLessThan(1e-6));
};
const floats = (b64: string) => {
  const buf = Buffer.from(b64, 'base64');
  return Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4));
};

describe('the CPU demo serves two models with no settings', () => {
  it('lists both models, each with its own context length, and is ready when both are', async () => {
    const list = await json<ModelList>(await fetch(`${stack.url}/v1/models`));
    expect(list.data.map((m) => [m.id, m.max_model_len])).toEqual([
      [CHAT, 2048],
      [EMBED, TINY_EMBED_N_CTX_TRAIN],
    ]);
    for (const id of [CHAT, EMBED]) {
      expect(await json<{ id: string; ready: boolean }>(await fetch(`${stack.url}/v1/models/${id}`))).toMatchObject({ id, ready: true });
    }
    expect((await fetch(`${stack.url}/v1/health/ready`)).status).toBe(200);
    // Two engines, each on its own port, both started by this launcher.
    const pids = [...stack.output().matchAll(/engine pid (\d+) \(model ([^)]+)\)/g)].map((m) => m[2]);
    expect(pids).toEqual([CHAT, EMBED]);
  });

  it("seed 004's embeddings request returns vectors of the model's dimension (float, base64; string and list)", async () => {
    // curl -d '{"model":"…","input":["hello world"]}' (the seed's example, with the demo's model)
    const seed = await postJson('/v1/embeddings', { model: EMBED, input: ['hello world'] });
    expect(seed.status).toBe(200);
    const seedBody = await json<Embeddings>(seed);
    expect(seedBody.model).toBe(EMBED);
    expect(seedBody.data).toHaveLength(1);
    const v = seedBody.data[0]!.embedding as number[];
    expect(v).toHaveLength(TINY_EMBED_DIM);
    expect(v.every(Number.isFinite)).toBe(true);

    const asFloat = await json<Embeddings>(await postJson('/v1/embeddings', { model: EMBED, input: ['hello world', 'a longer second input'], encoding_format: 'float' }));
    expect(asFloat.data.map((d) => d.index)).toEqual([0, 1]);
    expectClose(asFloat.data[0]!.embedding as number[], v);
    const asString = await json<Embeddings>(await postJson('/v1/embeddings', { model: EMBED, input: 'hello world', encoding_format: 'float' }));
    expectClose(asString.data[0]!.embedding as number[], v);
    const asBase64 = await json<Embeddings>(await postJson('/v1/embeddings', { model: EMBED, input: ['hello world', 'a longer second input'], encoding_format: 'base64' }));
    expect(typeof asBase64.data[0]!.embedding).toBe('string');
    expectClose(floats(asBase64.data[0]!.embedding as string), asFloat.data[0]!.embedding as number[]);
    expectClose(floats(asBase64.data[1]!.embedding as string), asFloat.data[1]!.embedding as number[]);
    // Two inputs are two different vectors.
    expect(Math.abs(floats(asBase64.data[1]!.embedding as string)[0]! - v[0]!)).toBeGreaterThan(1e-4);
  });

  it('the openai SDK embeds through the gateway (its default base64 path, decoded) and chats with the VLM on the same base URL', async () => {
    const e = await client.embeddings.create({ model: EMBED, input: ['hello world', 'other'] });
    expect(e.data).toHaveLength(2);
    expect(e.data[0]!.embedding).toHaveLength(TINY_EMBED_DIM);
    const ref = await json<Embeddings>(await postJson('/v1/embeddings', { model: EMBED, input: 'hello world', encoding_format: 'float' }));
    expectClose(e.data[0]!.embedding, ref.data[0]!.embedding as number[]);

    const chat = await client.chat.completions.create({ model: CHAT, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8 });
    expect(chat.model).toBe(CHAT);
    expect(chat.choices[0]!.message.role).toBe('assistant');
    expect(chat.usage!.completion_tokens).toBeGreaterThan(0);
    // Vision still goes to the VLM's own engine (an image adds its 16 prompt tokens there).
    const vision = await client.chat.completions.create({
      model: CHAT,
      max_tokens: 4,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Describe' }, { type: 'image_url', image_url: { url: dataUri('image/png', png(32, 32)) } }] }],
    });
    expect(vision.usage!.prompt_tokens).toBeGreaterThan(chat.usage!.prompt_tokens);
  });

  it('a route the model does not serve is a 400 model_route_mismatch, never an engine 502', async () => {
    const toEmbed = await client.chat.completions.create({ model: EMBED, messages: [{ role: 'user', content: 'hi' }] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(toEmbed).toBeInstanceOf(OpenAI.BadRequestError);
    expect((toEmbed as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('model_route_mismatch');
    const toChat = await client.embeddings.create({ model: CHAT, input: 'hi' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(toChat).toBeInstanceOf(OpenAI.BadRequestError);
    expect((toChat as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('model_route_mismatch');
    const unknown = await postJson('/v1/embeddings', { model: 'nvidia/nv-embed-v1', input: ['hello world'] });
    expect(unknown.status).toBe(404);
    expect((await json(unknown)).error.code).toBe('model_not_found');
  });

  it('tokenize goes to the named model’s engine', async () => {
    const e = await json<TokenizeResult>(await postJson('/tokenize', { model: EMBED, prompt: 'hello' }));
    const c = await json<TokenizeResult>(await postJson('/tokenize', { model: CHAT, prompt: 'hello' }));
    expect(e.max_model_len).toBe(TINY_EMBED_N_CTX_TRAIN);
    expect(c.max_model_len).toBe(2048);
    expect(e.count).toBeGreaterThan(0);
  });

  it('metrics carry each model’s series under its model_name, and both engines’ own series, in one valid exposition', async () => {
    await postJson('/v1/embeddings', { model: EMBED, input: 'count me' });
    const text = await (await fetch(`${stack.url}/v1/metrics`)).text();
    expect(text).toMatch(new RegExp(`^request_success_total\\{model_name="${EMBED}"\\} [1-9]`, 'm'));
    expect(text).toMatch(new RegExp(`^request_success_total\\{model_name="${CHAT}"\\} [1-9]`, 'm'));
    for (const id of [CHAT, EMBED]) expect(text).toMatch(new RegExp(`^llamacpp:prompt_tokens_total\\{model_name="${id}"\\} \\d`, 'm'));
    expect(text.match(/^# TYPE llamacpp:prompt_tokens_total /gm)).toHaveLength(1);
    const check = await promtoolCheck(text);
    expect(check.errors).toEqual([]);
  });

  it('/v1/metadata lists every model', async () => {
    const meta = await json<{ modelInfo: { servedModelName: string }[] }>(await fetch(`${stack.url}/v1/metadata`));
    expect(meta.modelInfo.map((m) => m.servedModelName)).toEqual([CHAT, EMBED]);
  });
});
