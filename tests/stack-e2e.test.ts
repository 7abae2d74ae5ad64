// The whole CPU stack as a user runs it: `portico serve` (launcher + gateway + a real llama-server
// serving the generated tiny VLM), called with the official openai SDK and curl-equivalent HTTP.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { png, dataUri } from '../gateway/media/test-images.js';
import { startServer } from '../gateway/media/test-server.js';
import { TINY_IMAGE_PROMPT_TOKEN_DELTA } from '../launcher/prepare/tiny-model.js';
import { DEMO_MODEL_NAME } from '../launcher/plan.js';
import { json, type ModelList, type RenderResponse, type TokenizeResult } from './helpers/json.js';
import { startStack, type Stack } from './helpers/stack.js';

let stack: Stack;
let client: OpenAI;
const MODEL = DEMO_MODEL_NAME;

beforeAll(async () => {
  // Private networks allowed: the image server below lives on 127.0.0.1 (the default refuses it).
  stack = await startStack({ NIM_MAX_REQUEST_BYTES: String(256 * 1024), NIM_MEDIA_ALLOW_PRIVATE_NETWORKS: '1' });
  client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  const code = await stack?.stop();
  expect(code).toBe(0); // SIGTERM is a clean shutdown
});

const postJson = (path: string, body: unknown) =>
  fetch(`${stack.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

describe('seed 000 examples (curl equivalents)', () => {
  it('GET /v1/models returns the NIM model card', async () => {
    const res = await fetch(`${stack.url}/v1/models`);
    expect(res.status).toBe(200);
    const body = await json<ModelList>(res);
    expect(body.object).toBe('list');
    // The CPU demo's two models: the VLM first, then its embedding model (tests/models-e2e.test.ts).
    expect(body.data.map((m) => m.id)).toEqual([MODEL, 'portico/tiny-embed']);
    expect(body.data[0]).toMatchObject({ id: MODEL, object: 'model', owned_by: 'system', parent: null, max_model_len: 2048 });
    expect(body.data[0]!.root).toMatch(/portico-tiny-vlm\.gguf$/);
    expect(body.data[0]!.permission[0]!.object).toBe('model_permission');
  });

  it('GET /v1/health/ready and /v1/health/live', async () => {
    const ready = await fetch(`${stack.url}/v1/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ object: 'health.response', message: 'Service is ready.' });
    expect((await fetch(`${stack.url}/v1/health/live`)).status).toBe(200);
  });

  it('POST /v1/chat/completions with an image (as a data URI) and text', async () => {
    const res = await postJson('/v1/chat/completions', {
      model: MODEL,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image_url', image_url: { url: dataUri('image/png', png(32, 32)) } },
            { type: 'text', text: 'What is in this image?' },
          ],
        },
      ],
      max_tokens: 256,
      temperature: 0,
    });
    expect(res.status).toBe(200);
    const body = await json<OpenAI.ChatCompletion>(res);
    expect(body.object).toBe('chat.completion');
    expect(body.choices[0]!.message.role).toBe('assistant');
    expect(typeof body.choices[0]!.message.content).toBe('string');
    expect(['stop', 'length']).toContain(body.choices[0]!.finish_reason);
    expect(body.usage!.total_tokens).toBe(body.usage!.prompt_tokens + body.usage!.completion_tokens);
  });
});

describe('openai SDK', () => {
  it('chat completion', async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'What is GPU computing?' }], max_tokens: 64 });
    expect(r.model).toBe(MODEL);
    expect(r.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(r.usage?.completion_tokens).toBeGreaterThan(0);
    expect(r.usage!.completion_tokens).toBeLessThanOrEqual(64);
  });

  it('streaming: deltas arrive, the last chunk has a finish_reason and usage', async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Explain transformers briefly.' }],
      max_tokens: 48,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | undefined | null;
    let chunks = 0;
    for await (const ch of stream) {
      chunks++;
      text += ch.choices[0]?.delta.content ?? '';
      finish = ch.choices[0]?.finish_reason ?? finish;
      usage = ch.usage ?? usage;
    }
    expect(chunks).toBeGreaterThan(2);
    expect(text.length).toBeGreaterThan(0);
    expect(['stop', 'length']).toContain(finish);
    expect(usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('the raw SSE stream ends with data: [DONE]', async () => {
    const res = await postJson('/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8, stream: true });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const text = await res.text();
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  it(`an image adds exactly ${TINY_IMAGE_PROMPT_TOKEN_DELTA} prompt tokens (the projector's count)`, async () => {
    const ask = (withImage: boolean) =>
      client.chat.completions.create({
        model: MODEL,
        max_tokens: 1,
        messages: [
          {
            role: 'user',
            content: [
              ...(withImage ? [{ type: 'image_url' as const, image_url: { url: dataUri('image/png', png(32, 32)) } }] : []),
              { type: 'text' as const, text: 'Describe this image' },
            ],
          },
        ],
      });
    const [without, withImg] = [await ask(false), await ask(true)];
    expect(withImg.usage!.prompt_tokens - without.usage!.prompt_tokens).toBe(TINY_IMAGE_PROMPT_TOKEN_DELTA);
  });

  it('an image URL is fetched by the gateway: same prompt tokens as the same bytes as a data URI', async () => {
    const bytes = png(32, 32, [10, 120, 200]);
    const images = await startServer((_req, res) => void res.writeHead(200, { 'content-type': 'image/png' }).end(bytes));
    try {
      const ask = (url: string) =>
        client.chat.completions.create({
          model: MODEL,
          max_tokens: 1,
          messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: 'What is this?' }] }],
        });
      const viaUrl = await ask(`${images.origin}/cat.png`);
      const viaData = await ask(dataUri('image/png', bytes));
      expect(viaUrl.usage!.prompt_tokens).toBe(viaData.usage!.prompt_tokens);
      await ask(`${images.origin}/cat.png`);
      expect(images.requests).toHaveLength(1); // the second request was a cache hit
    } finally {
      await images.close();
    }
  });

  it('completions endpoint', async () => {
    const r = await client.completions.create({ model: MODEL, prompt: 'Hello', max_tokens: 8 });
    expect(r.choices[0]?.text).toBeTypeOf('string');
    expect(r.usage?.completion_tokens).toBeGreaterThan(0);
  });
});

describe('tokenize / detokenize (NIM shapes, not llama.cpp)', () => {
  it('round-trips text', async () => {
    const tok = await postJson('/tokenize', { model: MODEL, prompt: 'Hello world' });
    expect(tok.status).toBe(200);
    const t = await json<TokenizeResult>(tok);
    expect(t).toMatchObject({ count: t.tokens.length, max_model_len: 2048 });
    expect(t.tokens.length).toBeGreaterThan(0);
    const det = await postJson('/detokenize', { model: MODEL, tokens: t.tokens });
    expect(await det.json()).toEqual({ prompt: 'Hello world' });
  });

  it('tokenizes chat messages through the chat template', async () => {
    const plain = await json<TokenizeResult>(await postJson('/tokenize', { model: MODEL, prompt: 'Hi' }));
    const chat = await json<TokenizeResult>(await postJson('/tokenize', { model: MODEL, messages: [{ role: 'user', content: 'Hi' }] }));
    expect(chat.count).toBeGreaterThan(plain.count);
  });

  it('renders a chat prompt without inference', async () => {
    const res = await postJson('/v1/chat/completions/render', { model: MODEL, messages: [{ role: 'user', content: 'Hi' }] });
    expect(res.status).toBe(200);
    const body = await json<RenderResponse>(res);
    expect(body.prompt).toContain('<|im_start|>user');
    expect(body.prompt_token_ids.length).toBeGreaterThan(0);
  });
});

describe('bad input never crashes the stack', () => {
  it('malformed JSON → 400 envelope', async () => {
    const res = await postJson('/v1/chat/completions', '{"model":');
    expect(res.status).toBe(400);
    expect((await json(res)).error.code).toBe('invalid_json');
  });

  it('schema violation → 400 naming the field', async () => {
    const res = await postJson('/v1/chat/completions', { model: MODEL, messages: [{ role: 'robot', content: 'x' }] });
    expect(res.status).toBe(400);
    expect((await json(res)).error.param).toBe('messages[0].role');
  });

  it('unknown model → 404 (the SDK raises NotFoundError)', async () => {
    await expect(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('body over NIM_MAX_REQUEST_BYTES → 413', async () => {
    const res = await postJson('/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'x'.repeat(300 * 1024) }] });
    expect(res.status).toBe(413);
    expect((await json(res)).error.code).toBe('payload_too_large');
  });

  it('a broken image → 400 from the engine, passed on as an envelope', async () => {
    const res = await postJson('/v1/chat/completions', {
      model: MODEL,
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }],
    });
    expect(res.status).toBe(400);
    expect((await json(res)).error).toHaveProperty('message');
  });

  it('unknown route → 404 envelope', async () => {
    const res = await fetch(`${stack.url}/v2/whatever`);
    expect(res.status).toBe(404);
    expect((await json(res)).error.code).toBe('route_not_found');
  });

  it('the stack still serves after all of that', async () => {
    expect((await fetch(`${stack.url}/v1/health/ready`)).status).toBe(200);
  });
});

describe('client abort mid-stream', () => {
  it('cancels the engine request: its slot goes idle having decoded fewer tokens than requested', async () => {
    const engine = `http://127.0.0.1:${stack.enginePort()}`;
    type Slot = { is_processing: boolean; params?: { n_predict?: number }; next_token?: { n_decoded: number }[] };
    const slots = async () => (await (await fetch(`${engine}/slots`)).json()) as Slot[];
    const N = 1900;
    const ac = new AbortController();
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      // ignore_eos (a llama.cpp extra, passed through) keeps it generating up to max_tokens.
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'go' }], max_tokens: N, ignore_eos: true, stream: true }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    // Bounded wait for the engine to report every slot idle.
    let now: Slot[] = [];
    for (let i = 0; i < 200; i++) {
      now = await slots();
      if (now.every((s) => !s.is_processing)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(now.every((s) => !s.is_processing)).toBe(true);
    // The slot that ran our request stopped early; had the engine kept going it would show N.
    const ours = now.find((s) => s.params?.n_predict === N);
    expect(ours).toBeDefined();
    expect(ours!.next_token![0]!.n_decoded).toBeLessThan(N);
  });
});
