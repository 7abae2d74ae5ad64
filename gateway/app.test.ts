import type OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createApp, type AppDeps } from './app.js';
import { Admission } from './admission.js';
import { KeyStore } from './auth.js';
import { Metrics } from './metrics.js';
import { OVERHEAD_HEADER } from './observe.js';
import { RateLimiter } from './rate-limit.js';
import { Upstream } from './upstream.js';
import { chunk, completion, fakeEngine, type FakeEngine } from '../tests/helpers/fake-engine.js';
import { readRest, json, type ModelList } from '../tests/helpers/json.js';
import { listen, type RunningServer } from './server.js';

const MODEL = { id: 'test-model', root: '/models/test', maxModelLen: 4096 };

let engine: FakeEngine;
let upstream: Upstream;
let ready: boolean;

function app(over: Partial<AppDeps> = {}) {
  return createApp({
    settings: { maxRequestBytes: 1024 },
    model: MODEL,
    upstream,
    engine: { dialect: 'openai' },
    readiness: { isReady: () => ready, reason: () => 'the engine is starting' },
    ...over,
  }).app;
}

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  app().request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

const chat = { model: 'test-model', messages: [{ role: 'user', content: 'hi' }] };

beforeEach(async () => {
  engine = await fakeEngine();
  upstream = new Upstream(engine.url);
  ready = true;
});
afterEach(async () => {
  await upstream.close();
  await engine.close();
});

describe('error envelope', () => {
  it('answers malformed JSON with 400 invalid_json and never reaches the engine', async () => {
    const res = await post('/v1/chat/completions', '{"model": ');
    expect(res.status).toBe(400);
    const body = await json(res);
    expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_json', param: null });
    expect(engine.received.filter((r) => r.url !== '/health')).toHaveLength(0);
  });

  it('names the offending field in param for a schema violation', async () => {
    const res = await post('/v1/chat/completions', { ...chat, temperature: 7 });
    expect(res.status).toBe(400);
    expect((await json(res)).error).toMatchObject({ code: 'invalid_parameter', param: 'temperature' });
    const res2 = await post('/v1/chat/completions', { model: 'test-model', messages: [{ role: 'user', content: [{ type: 'text' }] }] });
    expect((await json(res2)).error.param).toBe('messages[0].content[0].text');
    const res3 = await post('/v1/chat/completions', { model: 'test-model' });
    expect((await json(res3)).error).toMatchObject({ param: 'messages', message: 'messages: is required' });
  });

  it('refuses a non-object body', async () => {
    const res = await post('/v1/chat/completions', '[1,2]');
    expect(res.status).toBe(400);
    expect((await json(res)).error.code).toBe('invalid_request');
  });

  it('answers an unknown model with 404 model_not_found', async () => {
    const res = await post('/v1/chat/completions', { ...chat, model: 'nope' });
    expect(res.status).toBe(404);
    expect((await json(res)).error).toMatchObject({ code: 'model_not_found', param: 'model', type: 'not_found_error' });
  });

  it('answers a body over the limit with 413 (declared length and counted bytes)', async () => {
    const big = JSON.stringify({ ...chat, messages: [{ role: 'user', content: 'x'.repeat(2000) }] });
    const res = await post('/v1/chat/completions', big);
    expect(res.status).toBe(413);
    expect((await json(res)).error.code).toBe('payload_too_large');
    // No content-length: a stream counted while reading.
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(big));
        c.close();
      },
    });
    const res2 = await app().request('/v1/chat/completions', { method: 'POST', body: stream, headers: { 'content-type': 'application/json' }, duplex: 'half' } as RequestInit);
    expect(res2.status).toBe(413);
  });

  it('answers unknown routes with a 404 envelope and wrong methods with 405', async () => {
    const res = await app().request('/v1/nothing');
    expect(res.status).toBe(404);
    expect((await json(res)).error.code).toBe('route_not_found');
    const res2 = await app().request('/v1/chat/completions');
    expect(res2.status).toBe(405);
    expect(res2.headers.get('allow')).toBe('POST');
  });

  it('answers 503 when the engine is not ready, and 503 engine_unavailable when it cannot be reached', async () => {
    ready = false;
    const res = await post('/v1/chat/completions', chat);
    expect(res.status).toBe(503);
    expect((await json(res)).error.message).toContain('the engine is starting');
    ready = true;
    await engine.close();
    const res2 = await post('/v1/chat/completions', chat);
    expect(res2.status).toBe(503);
    const err = (await json(res2)).error;
    expect(err.code).toBe('engine_unavailable');
    expect(err.message).not.toMatch(/127\.0\.0\.1|ECONN/);
  });

  it("passes an engine 4xx on with the engine's status and message", async () => {
    engine.on('/v1/chat/completions', (_q, res) =>
      void res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'max_tokens too large', type: 'BadRequestError' } })),
    );
    const res = await post('/v1/chat/completions', chat);
    expect(res.status).toBe(400);
    expect((await json(res)).error).toMatchObject({ message: 'max_tokens too large', type: 'BadRequestError', code: 'invalid_request' });
  });

  it('turns an engine 5xx into 502 without leaking its body internals', async () => {
    engine.on('/v1/chat/completions', (_q, res) => void res.writeHead(500).end('{"error":{"message":"CUDA OOM"}}'));
    const res = await post('/v1/chat/completions', chat);
    expect(res.status).toBe(502);
    expect((await json(res)).error).toMatchObject({ code: 'engine_error', type: 'engine_error' });
  });
});

describe('client gone', () => {
  it('a client that disconnects during image normalization is recorded as 499, not a 500', async () => {
    const ac = new AbortController();
    const media = {
      normalize: (_b: Record<string, unknown>, signal?: AbortSignal) =>
        new Promise<boolean>((_ok, fail) => {
          signal!.addEventListener('abort', () => fail(signal!.reason));
          ac.abort();
        }),
    };
    const res = await app({ media }).request('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chat),
      signal: ac.signal,
    });
    expect(res.status).toBe(499);
    expect((await json(res)).error.code).toBe('client_closed');
    expect(engine.received.filter((r) => r.url === '/v1/chat/completions')).toHaveLength(0);
  });
});

describe('media fetch fairness', () => {
  it("the media step's fetches are grouped by the caller's API key (its hash), and not grouped without keys", async () => {
    engine.on('/v1/chat/completions', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion('ok'))));
    const seen: unknown[] = [];
    const media = {
      normalize: async (_b: Record<string, unknown>, _s?: AbortSignal, o?: { group?: unknown }) => {
        seen.push(o?.group);
        return false;
      },
    };
    const keys = new KeyStore({ keys: ['k-one-1234567890', 'k-two-1234567890'], defaults: {} });
    const call = (a: ReturnType<typeof app>, key?: string) =>
      a.request('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body: JSON.stringify(chat),
      });
    const keyed = app({ media, keys });
    for (const k of ['k-one-1234567890', 'k-two-1234567890', 'k-one-1234567890']) expect((await call(keyed, k)).status).toBe(200);
    expect((await call(app({ media }))).status).toBe(200);
    expect(seen[0]).toBe(keys.verify('k-one-1234567890')!.hash);
    expect(seen[1]).toBe(keys.verify('k-two-1234567890')!.hash);
    expect(seen[2]).toBe(seen[0]);
    expect(seen[1]).not.toBe(seen[0]);
    expect(seen[3]).toBeUndefined();
  });
});

describe('inference passthrough', () => {
  it('forwards the client bytes unchanged, with unknown fields, and returns the JSON', async () => {
    engine.on('/v1/chat/completions', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion('yo'))));
    const raw = JSON.stringify({ ...chat, top_k: 5, guided_json: { a: 1 } });
    const res = await post('/v1/chat/completions', raw, { 'x-request-id': 'req-42' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('req-42');
    expect((await json<OpenAI.ChatCompletion>(res)).choices[0]!.message.content).toBe('yo');
    const sent = engine.received.find((r) => r.url === '/v1/chat/completions')!;
    expect(sent.body).toBe(raw);
    expect(sent.headers['x-request-id']).toBe('req-42');
  });

  it('forwards the request id on engine calls made through the dialect (tokenize)', async () => {
    engine.on('/tokenize', (_q, res) =>
      void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ count: 2, max_model_len: 4096, tokens: [1, 2], token_strs: null })),
    );
    const res = await post('/tokenize', { model: 'test-model', prompt: 'hi' }, { 'x-request-id': 'req-tok' });
    expect(res.status).toBe(200);
    expect(engine.received.find((r) => r.url === '/tokenize')!.headers['x-request-id']).toBe('req-tok');
  });

  it('serves the NIM /v1/models card', async () => {
    const res = await app().request('/v1/models');
    const body = await json<ModelList>(res);
    expect(body.object).toBe('list');
    expect(body.data[0]).toMatchObject({ id: 'test-model', object: 'model', owned_by: 'system', root: '/models/test', parent: null, max_model_len: 4096 });
    expect(body.data[0]!.permission[0]).toMatchObject({ object: 'model_permission', allow_sampling: true, organization: '*' });
  });

  it('health: live always 200; ready 503 until the engine is ready, then the seed body', async () => {
    ready = false;
    expect((await app().request('/v1/health/live')).status).toBe(200);
    expect((await app().request('/v1/health/ready')).status).toBe(503);
    ready = true;
    const res = await app().request('/v1/health/ready');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ object: 'health.response', message: 'Service is ready.' });
  });
});

describe('SSE over a real socket', () => {
  let server: RunningServer;
  afterEach(async () => server?.close(100));

  it('streams chunks before the engine finishes and keeps [DONE]', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    engine.on('/v1/chat/completions', async (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk('a'));
      await gate; // the engine holds the rest until the client has seen the first chunk
      res.write(chunk('b', 'stop'));
      res.end('data: [DONE]\n\n');
    });
    server = await listen(app(), { port: 0, host: '127.0.0.1' });
    const res = await fetch(`http://127.0.0.1:${server.port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...chat, stream: true }),
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain('"content":"a"');
    release();
    const rest = await readRest(reader);
    expect(rest).toContain('"content":"b"');
    expect(rest.trim().endsWith('data: [DONE]')).toBe(true);
  });

  it('ends with an error event and [DONE] when the engine dies mid-stream', async () => {
    engine.on('/v1/chat/completions', (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk('a'));
      setTimeout(() => res.socket?.destroy(), 20);
    });
    server = await listen(app(), { port: 0, host: '127.0.0.1' });
    const res = await fetch(`http://127.0.0.1:${server.port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...chat, stream: true }),
    });
    const text = await res.text();
    const events = text.split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const err = JSON.parse(events.at(-2)!.slice('data: '.length));
    expect(err.error).toMatchObject({ code: 'engine_unavailable' });
  });

  it('aborts the engine request when the client disconnects mid-stream', async () => {
    let engineClosed!: () => void;
    const closed = new Promise<void>((r) => (engineClosed = r));
    engine.on('/v1/chat/completions', (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk('a'));
      // Never ends by itself: only a client abort can end it.
      res.on('close', () => engineClosed());
    });
    server = await listen(app(), { port: 0, host: '127.0.0.1' });
    const ac = new AbortController();
    const res = await fetch(`http://127.0.0.1:${server.port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...chat, stream: true }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    await closed; // the test times out (fails) if the gateway keeps the engine request open
    expect(engine.closedEarly).toBe(1);
  });
});

describe('one Response per answer (no middleware re-wraps it)', () => {
  // Every middleware that follows an answer is on: metrics (observe), per-key token limits (usage
  // tap), admission (slot + idle guard). Replacing c.res after the handler (to wrap a stream, or to
  // add headers) would build more Responses and return another one than the handler built: that
  // materializes node-server's lightweight Response and costs every stream a timer turn before
  // its first byte. Deterministic: it counts constructions, it does not time anything.
  const KEY = 'sk-one-response-key';
  let built: { res: Response; body: unknown }[];
  beforeEach(() => {
    built = [];
    const Base = globalThis.Response;
    class Recording extends Base {
      constructor(...args: ConstructorParameters<typeof Response>) {
        super(...args);
        built.push({ res: this, body: args[0] });
      }
    }
    vi.stubGlobal('Response', Recording);
  });
  afterEach(() => void vi.unstubAllGlobals());

  const guarded = () => {
    const admission = new Admission({ maxConcurrent: 4, maxQueue: 0, queueTimeoutMs: 1000 });
    const metrics = new Metrics();
    const a = app({
      settings: { maxRequestBytes: 1024, streamIdleTimeoutMs: 60_000 },
      keys: new KeyStore({ keys: [KEY], defaults: { tpm: 1000 } }),
      rateLimiter: new RateLimiter(() => 0),
      admission,
      metrics,
    });
    const call = (body: unknown) =>
      a.request('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
        body: JSON.stringify(body),
      });
    return { call, admission, metrics };
  };

  it('an SSE answer is the Response forward() built, over the one stream that carries every hook', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    engine.on('/v1/chat/completions', async (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk('a'));
      await gate; // the rest once the test has looked at the open stream
      res.write(`data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } })}\n\n`);
      res.end('data: [DONE]\n\n');
    });
    const { call, admission, metrics } = guarded();
    const res = await call({ ...chat, stream: true, max_tokens: 100 });
    expect(res.status).toBe(200);
    expect(built).toHaveLength(1);
    expect(res).toBe(built[0]!.res);
    expect(built[0]!.body).toBeInstanceOf(ReadableStream);
    // Headers the middleware add after the handler are on that same Response.
    expect(res.headers.get('x-ratelimit-limit-tokens')).toBe('1000');
    expect(res.headers.get(OVERHEAD_HEADER)).toMatch(/^\d+\.\d{3}$/);
    expect(admission.inFlight).toBe(1); // held by the stream until its end
    release();
    expect(await res.text()).toContain('data: [DONE]');
    // Its end ran every hook once: slot released, tokens settled to the usage chunk, metrics done.
    expect(admission.inFlight).toBe(0);
    expect(metrics.inflight).toBe(0);
    const after = await call({ ...chat, temperature: 99 }); // refused (400): costs nothing
    expect(after.headers.get('x-ratelimit-remaining-tokens')).toBe('993');
  });

  it('a JSON answer is one Response over the engine bytes as a Uint8Array (node-server writes it in one call)', async () => {
    engine.on('/v1/chat/completions', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion('yo'))));
    const { call, admission } = guarded();
    const res = await call({ ...chat, max_tokens: 100 });
    expect(res.status).toBe(200);
    expect(built).toHaveLength(1);
    expect(res).toBe(built[0]!.res);
    expect(built[0]!.body).toBeInstanceOf(Uint8Array);
    expect(res.headers.get('x-ratelimit-remaining-tokens')).toBe('994'); // settled to usage.total_tokens = 6
    expect(admission.inFlight).toBe(0);
    expect((await json<OpenAI.ChatCompletion>(res)).choices[0]!.message.content).toBe('yo');
  });
});
