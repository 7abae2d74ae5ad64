// The translated routes inside the app, against a scripted engine: what the engine receives, what
// the client gets back, and that the chat pipeline (auth, admission, errors, overhead header)
// applies. The vLLM/trtllm pass-through runs against the fake engine: a simulation.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp, type AppDeps } from '../app.js';
import { Admission } from '../admission.js';
import { KeyStore } from '../auth.js';
import { OVERHEAD_HEADER } from '../observe.js';
import { Upstream } from '../upstream.js';
import { chunk, completion, fakeEngine, type FakeEngine } from '../../tests/helpers/fake-engine.js';
import { parseEvents } from './test-chunks.js';

const MODEL = { id: 'test-model', root: '/models/test', maxModelLen: 4096 };
let engine: FakeEngine;
let upstream: Upstream;

function app(over: Partial<AppDeps> = {}) {
  return createApp({
    settings: { maxRequestBytes: 64 * 1024 },
    model: MODEL,
    upstream,
    engine: { dialect: 'llamacpp' },
    readiness: { isReady: () => true, reason: () => '' },
    ...over,
  }).app;
}
const post = (a: ReturnType<typeof app>, path: string, body: unknown, headers: Record<string, string> = {}) =>
  a.request(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
const engineCalls = () => engine.received.filter((r) => r.url !== '/health');

beforeEach(async () => {
  engine = await fakeEngine();
  upstream = new Upstream(engine.url);
});
afterEach(async () => {
  await upstream.close();
  await engine.close();
});

describe('POST /v1/responses on llama.cpp: translated over chat completions', () => {
  it('the engine gets a chat request; the client gets a Response, with the overhead header', async () => {
    engine.on('/v1/chat/completions', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion('Hi there'))));
    const res = await post(app(), '/v1/responses', { model: 'test-model', input: 'Hello', instructions: 'Be kind', max_output_tokens: 5 });
    expect(res.status).toBe(200);
    expect(res.headers.get(OVERHEAD_HEADER)).toMatch(/^\d+\.\d{3}$/);
    const sent = JSON.parse(engineCalls()[0]!.body) as Record<string, unknown>;
    expect(engineCalls()[0]!.url).toBe('/v1/chat/completions');
    expect(sent).toEqual({ model: 'test-model', max_tokens: 5, messages: [{ role: 'system', content: 'Be kind' }, { role: 'user', content: 'Hello' }] });
    const body = (await res.json()) as { object: string; status: string; output: { content: { text: string }[] }[]; usage: { input_tokens: number; output_tokens: number } };
    expect(body.object).toBe('response');
    expect(body.status).toBe('completed');
    expect(body.output[0]!.content[0]!.text).toBe('Hi there');
    expect(body.usage).toMatchObject({ input_tokens: 5, output_tokens: 1 });
  });

  it('streams the Responses events and releases the admission slot at the end', async () => {
    engine.on('/v1/chat/completions', (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk('A'));
      res.write(chunk('B', 'stop'));
      res.end('data: [DONE]\n\n');
    });
    const admission = new Admission({ maxConcurrent: 1, maxQueue: 0, queueTimeoutMs: 1000 });
    const res = await post(app({ admission }), '/v1/responses', { model: 'test-model', input: 'x', stream: true });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = parseEvents(await res.text());
    expect(events.map((e) => e.event)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(JSON.parse(engineCalls()[0]!.body)).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(admission.inFlight).toBe(0);
  });

  it('a client that cancels a translated stream cancels the engine request and frees the slot', async () => {
    let sent = 0;
    engine.on('/v1/chat/completions', (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk('A'));
      sent++;
      // The engine keeps generating (never ends by itself) until its connection is dropped.
      const t = setInterval(() => {
        if (sent < 200) res.write(chunk('x')), sent++;
      }, 5);
      res.on('close', () => clearInterval(t));
    });
    const admission = new Admission({ maxConcurrent: 1, maxQueue: 0, queueTimeoutMs: 1000 });
    for (const [path, body] of [
      ['/v1/responses', { model: 'test-model', input: 'x', stream: true }],
      ['/v1/messages', { model: 'test-model', max_tokens: 8, messages: [{ role: 'user', content: 'x' }], stream: true }],
    ] as const) {
      const closedBefore = engine.closedEarly;
      const res = await post(app({ admission }), path, body);
      const reader = res.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      expect(first).toContain(path === '/v1/responses' ? 'response.created' : 'message_start');
      await reader.cancel();
      for (let i = 0; i < 100 && engine.closedEarly === closedBefore; i++) await new Promise((r) => setTimeout(r, 10));
      expect(engine.closedEarly, path).toBe(closedBefore + 1);
      expect(admission.inFlight, path).toBe(0);
    }
  });

  it('previous_response_id → 400 naming it, and the engine is not called (both dialects)', async () => {
    for (const dialect of ['llamacpp', 'openai'] as const) {
      const res = await post(app({ engine: { dialect } }), '/v1/responses', { model: 'test-model', input: 'x', previous_response_id: 'resp_1' });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: unknown }).error).toMatchObject({ code: 'invalid_parameter', param: 'previous_response_id' });
    }
    expect(engineCalls()).toHaveLength(0);
  });

  it('an unknown model → 404 model_not_found before the engine', async () => {
    const res = await post(app(), '/v1/responses', { model: 'other', input: 'x' });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('model_not_found');
    expect(engineCalls()).toHaveLength(0);
  });
});

describe('POST /v1/responses on vLLM/trtllm (simulation: a fake engine)', () => {
  it('simulation: passes the client bytes through to the engine /v1/responses and its answer back', async () => {
    const answer = JSON.stringify({ id: 'resp_engine', object: 'response', status: 'completed', output: [] });
    engine.on('/v1/responses', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(answer));
    const raw = '{"model":"test-model","input":"x",  "reasoning":{"effort":"low"}}';
    for (const dialect of ['openai', 'trtllm'] as const) {
      const res = await post(app({ engine: { dialect } }), '/v1/responses', raw);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(answer);
    }
    expect(engineCalls().map((r) => [r.url, r.body])).toEqual([
      ['/v1/responses', raw],
      ['/v1/responses', raw],
    ]);
  });

  it('simulation: input_image URLs go through the media guard and reach the engine as data: URIs', async () => {
    engine.on('/v1/responses', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    const seen: unknown[] = [];
    const media = {
      // A recording double of the guard (the real one is tested in gateway/media and e2e): it gets chat parts.
      async normalize(body: Record<string, unknown>) {
        seen.push(structuredClone(body));
        for (const m of body.messages as { content: { image_url: { url: string } }[] }[]) for (const p of m.content) p.image_url.url = 'data:image/png;base64,iVBO';
        return true;
      },
    };
    const input = [{ role: 'user', content: [{ type: 'input_text', text: 'what?' }, { type: 'input_image', image_url: 'https://example.com/a.png' }] }];
    await post(app({ engine: { dialect: 'openai' }, media }), '/v1/responses', { model: 'test-model', input });
    expect(seen).toEqual([{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] }] }]);
    const sent = JSON.parse(engineCalls()[0]!.body) as { input: { content: unknown[] }[] };
    expect(sent.input[0]!.content[1]).toEqual({ type: 'input_image', image_url: 'data:image/png;base64,iVBO' });
  });
});

describe('GET /v1/responses/{id}', () => {
  it('404 response_not_stored: portico keeps no responses', async () => {
    const res = await app().request('/v1/responses/resp_123');
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: unknown }).error).toMatchObject({ code: 'response_not_stored', type: 'not_found_error', message: expect.stringContaining('resp_123') });
  });
});

describe('POST /v1/messages', () => {
  it('translated over chat; errors in Anthropic shape', async () => {
    engine.on('/v1/chat/completions', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion('Hey'))));
    const a = app();
    const ok = await post(a, '/v1/messages', { model: 'test-model', max_tokens: 8, system: 'S', messages: [{ role: 'user', content: 'Hi' }] });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ type: 'message', role: 'assistant', content: [{ type: 'text', text: 'Hey' }], stop_reason: 'end_turn', usage: { input_tokens: 5, output_tokens: 1 } });
    expect(JSON.parse(engineCalls()[0]!.body)).toEqual({ model: 'test-model', max_tokens: 8, messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'Hi' }] });

    const missing = await post(a, '/v1/messages', { model: 'test-model', messages: [{ role: 'user', content: 'Hi' }] });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('max_tokens') } });
    const badJson = await post(a, '/v1/messages', '{"model":');
    expect(await badJson.json()).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('not valid JSON') } });
    const unknownModel = await post(a, '/v1/messages', { model: 'nope', max_tokens: 8, messages: [{ role: 'user', content: 'Hi' }] });
    expect(unknownModel.status).toBe(404);
    expect(await unknownModel.json()).toEqual({ type: 'error', error: { type: 'not_found_error', message: 'The model `nope` does not exist' } });
  });

  it('the key from x-api-key or Authorization; a wrong one is a 401 in Anthropic shape', async () => {
    engine.on('/v1/chat/completions', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion())));
    const a = app({ keys: new KeyStore({ keys: ['sk-right'] }) });
    const body = { model: 'test-model', max_tokens: 8, messages: [{ role: 'user', content: 'Hi' }] };
    expect((await post(a, '/v1/messages', body, { 'x-api-key': 'sk-right' })).status).toBe(200);
    expect((await post(a, '/v1/messages', body, { authorization: 'Bearer sk-right' })).status).toBe(200);
    const wrong = await post(a, '/v1/messages', body, { 'x-api-key': 'sk-wrong' });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ type: 'error', error: { type: 'authentication_error', message: 'Invalid API key' } });
    const none = await post(a, '/v1/messages', body);
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { type: string } }).error.type).toBe('authentication_error');
    // Authorization wins when both are sent; x-api-key works on the OpenAI routes too.
    expect((await post(a, '/v1/messages', body, { authorization: 'Bearer sk-wrong', 'x-api-key': 'sk-right' })).status).toBe(401);
    const chatRes = await post(a, '/v1/chat/completions', { model: 'test-model', messages: [{ role: 'user', content: 'x' }] }, { 'x-api-key': 'sk-right' });
    expect(chatRes.status).toBe(200);
    expect(engineCalls()).toHaveLength(3);
  });

  it('count_tokens: the engine tokenizes the chat messages with tools (vLLM /tokenize, simulation)', async () => {
    engine.on('/tokenize', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ count: 17, max_model_len: 4096, tokens: [], token_strs: null })));
    const res = await post(app({ engine: { dialect: 'openai' } }), '/v1/messages/count_tokens', {
      model: 'test-model',
      messages: [{ role: 'user', content: 'Hi' }],
      tools: [{ name: 't', input_schema: { type: 'object' } }],
    });
    expect(await res.json()).toEqual({ input_tokens: 17 });
    expect(JSON.parse(engineCalls()[0]!.body)).toEqual({
      model: 'test-model',
      messages: [{ role: 'user', content: 'Hi' }],
      tools: [{ type: 'function', function: { name: 't', parameters: { type: 'object' } } }],
      add_generation_prompt: true,
    });
  });
});
