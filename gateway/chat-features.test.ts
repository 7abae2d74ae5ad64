// The chat pipeline's engine-specific parts against a fake engine (SIMULATION of vLLM v0.11.0 and
// trtllm-serve answers): reasoning under both names, nvext translation, tool-choice validation,
// and the tokenize/render routes each engine has or lacks.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from './app.js';
import { bound, planChat } from './tools.js';
import { Upstream } from './upstream.js';
import type { EngineDialect } from '../core/engine.js';
import { fakeEngine, type FakeEngine } from '../tests/helpers/fake-engine.js';

const MODEL = { id: 'm', root: '/m', maxModelLen: 4096 };
let engine: FakeEngine;
let upstream: Upstream;

const app = (dialect: EngineDialect) =>
  createApp({ settings: { maxRequestBytes: 1 << 20 }, model: MODEL, upstream, engine: { dialect }, readiness: { isReady: () => true, reason: () => '' } }).app;
const post = (dialect: EngineDialect, path: string, body: unknown) =>
  app(dialect).request(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const chat = { model: 'm', messages: [{ role: 'user', content: 'think' }] };
const sent = () => JSON.parse(engine.received.filter((r) => r.url !== '/health').at(-1)!.body) as Record<string, unknown>;

beforeEach(async () => {
  engine = await fakeEngine();
  upstream = new Upstream(engine.url);
});
afterEach(async () => {
  await upstream.close();
  await engine.close();
});

describe('reasoning: reasoning_content and reasoning both (simulation)', () => {
  it('JSON: an engine answering reasoning_content (vLLM v0.11.0, llama.cpp) gets reasoning too, and the reverse', async () => {
    const answer = (m: Record<string, unknown>) => ({ id: 'x', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: '42', ...m }, finish_reason: 'stop' }] });
    engine.on('/v1/chat/completions', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer({ reasoning_content: 'because' }))));
    const r = (await (await post('openai', '/v1/chat/completions', chat)).json()) as { choices: { message: Record<string, unknown> }[] };
    expect(r.choices[0]!.message).toMatchObject({ content: '42', reasoning_content: 'because', reasoning: 'because' });
    engine.on('/v1/chat/completions', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer({ reasoning: 'since' }))));
    const r2 = (await (await post('llamacpp', '/v1/chat/completions', chat)).json()) as { choices: { message: Record<string, unknown> }[] };
    expect(r2.choices[0]!.message).toMatchObject({ reasoning_content: 'since', reasoning: 'since' });
    // No reasoning: the engine's bytes unchanged.
    const plain = JSON.stringify(answer({}));
    engine.on('/v1/chat/completions', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(plain));
    expect(await (await post('openai', '/v1/chat/completions', chat)).text()).toBe(plain);
  });

  it('SSE: deltas split across TCP writes come out whole, with both names', async () => {
    const ev = (delta: Record<string, unknown>) => `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;
    const body = ev({ role: 'assistant' }) + ev({ reasoning_content: 'let me ' }) + ev({ reasoning_content: 'see' }) + ev({ content: 'ok' }) + 'data: [DONE]\n\n';
    engine.on('/v1/chat/completions', async (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // Cut mid-line, mid-JSON and mid-UTF-8-free text, paced so they arrive as separate chunks.
      for (const part of [body.slice(0, 70), body.slice(70, 150), body.slice(150)]) {
        res.write(part);
        await new Promise((r) => setTimeout(r, 20));
      }
      res.end();
    });
    const text = await (await post('openai', '/v1/chat/completions', { ...chat, stream: true })).text();
    const deltas = text
      .split('\n\n')
      .filter((e) => e.startsWith('data: {'))
      .map((e) => (JSON.parse(e.slice(6)) as { choices: { delta: Record<string, unknown> }[] }).choices[0]!.delta);
    expect(deltas).toEqual([{ role: 'assistant' }, { reasoning_content: 'let me ', reasoning: 'let me ' }, { reasoning_content: 'see', reasoning: 'see' }, { content: 'ok' }]);
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
  });
});

describe('nvext (simulation)', () => {
  const ok = (res: { writeHead: (s: number, h: Record<string, string>) => { end: (b: string) => void } }) =>
    void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'x', object: 'chat.completion', choices: [] }));
  beforeEach(() => engine.on('/v1/chat/completions', (_q, res) => ok(res)));

  it('vLLM v0.11.0: top-level guided_* and sampling fields', async () => {
    const nvext = { guided_json: { type: 'object' }, top_k: 5, min_p: 0.1, repetition_penalty: 1.1, ignore_eos: true };
    expect((await post('openai', '/v1/chat/completions', { ...chat, nvext })).status).toBe(200);
    expect(sent()).toMatchObject(nvext);
    expect(sent().nvext).toBeUndefined();
  });

  it('llama.cpp: json_schema, a GBNF grammar for guided_choice, repeat_penalty, reasoning_budget_tokens', async () => {
    await post('llamacpp', '/v1/chat/completions', { ...chat, nvext: { guided_choice: ['yes', 'no "way"'], repetition_penalty: 1.2, max_thinking_tokens: 64 } });
    expect(sent()).toMatchObject({ grammar: 'root ::= "yes" | "no \\"way\\""', repeat_penalty: 1.2, reasoning_budget_tokens: 64 });
    await post('llamacpp', '/v1/chat/completions', { ...chat, nvext: { guided_json: '{"type":"object"}' } });
    expect(sent()).toMatchObject({ json_schema: { type: 'object' } });
  });

  it('refused with a 400 naming the field: unknown, wrong type, or not supported by the engine', async () => {
    const err = async (d: EngineDialect, nvext: unknown) => {
      const r = await post(d, '/v1/chat/completions', { ...chat, nvext });
      return [r.status, ((await r.json()) as { error: { param: string; message: string } }).error] as const;
    };
    expect(await err('openai', { guided_whatever: 1 })).toEqual([400, expect.objectContaining({ param: 'nvext.guided_whatever' })]);
    expect(await err('openai', { top_k: 'five' })).toEqual([400, expect.objectContaining({ param: 'nvext.top_k' })]);
    expect(await err('openai', { max_thinking_tokens: 10 })).toEqual([400, expect.objectContaining({ param: 'nvext.max_thinking_tokens', message: expect.stringContaining('vLLM v0.11.0') })]);
    expect(await err('llamacpp', { guided_regex: 'a+' })).toEqual([400, expect.objectContaining({ param: 'nvext.guided_regex', message: expect.stringContaining('llama.cpp') })]);
    expect(await err('trtllm', { guided_json: {} })).toEqual([400, expect.objectContaining({ param: 'nvext.guided_json', message: expect.stringContaining('TensorRT-LLM') })]);
    expect(await err('openai', [1])).toEqual([400, expect.objectContaining({ param: 'nvext' })]);
  });
});

describe('tool choice (simulation)', () => {
  const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }];
  it('vLLM enforces required / named itself: the request goes through unchanged', () => {
    const body = { ...chat, tools, tool_choice: 'required' };
    expect(planChat(body, 'openai')).toEqual({ engineBody: body, rewritten: false });
  });
  it('llama.cpp: a named function becomes a json_schema for that call, tools stay in the prompt', () => {
    const p = planChat({ ...chat, tools, tool_choice: { type: 'function', function: { name: 'f' } }, max_tokens: 80, stream: true, stream_options: { include_usage: true } }, 'llamacpp');
    expect(p.enforced).toEqual({ stream: true, includeUsage: true, names: ['f'] });
    expect(p.engineBody).toMatchObject({ tools, tool_choice: 'none', stream: false });
    expect(p.engineBody.stream_options).toBeUndefined();
    expect((p.engineBody.response_format as { json_schema: { schema: unknown } }).json_schema.schema).toEqual({
      type: 'object',
      properties: { name: { const: 'f' }, arguments: { type: 'object', properties: { q: { type: 'string', maxLength: 10 } } } },
      required: ['name', 'arguments'],
      additionalProperties: false,
    });
  });
  it('bounds only what is unbounded', () => {
    const s = { type: 'object', properties: { a: { type: 'string' }, b: { type: 'string', enum: ['x'] }, c: { type: 'string', maxLength: 3 }, d: { type: 'array', items: { type: 'string' } } } };
    // 1 + 4 (array items) unbounded strings; 400 tokens / 8 / 5 = 10 characters each.
    expect(bound(s, 400)).toEqual({
      type: 'object',
      properties: { a: { type: 'string', maxLength: 10 }, b: { type: 'string', enum: ['x'] }, c: { type: 'string', maxLength: 3 }, d: { type: 'array', items: { type: 'string', maxLength: 10 }, maxItems: 4 } },
    });
  });
});

describe('tokenize and render per engine (simulation)', () => {
  it('trtllm-serve 1.3.0rc3 has no tokenize/render routes: 501 saying so, the engine is not called', async () => {
    for (const [path, body] of [['/tokenize', { model: 'm', prompt: 'x' }], ['/detokenize', { model: 'm', tokens: [1] }], ['/v1/chat/completions/render', chat]] as const) {
      const r = await post('trtllm', path, body);
      expect(r.status).toBe(501);
      expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/TensorRT-LLM engine \(trtllm-serve 1\.3\.0rc3 has no such route\)/);
    }
    expect(engine.received.filter((r) => r.url !== '/health')).toEqual([]);
  });

  it('vLLM v0.11.0 has no render routes: render is /tokenize (messages) then /detokenize', async () => {
    engine.on('/tokenize', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ count: 3, max_model_len: 4096, tokens: [1, 2, 3] })));
    engine.on('/detokenize', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ prompt: '<s>user: think' })));
    const r = await post('openai', '/v1/chat/completions/render', chat);
    expect(await r.json()).toEqual({ prompt: '<s>user: think', prompt_token_ids: [1, 2, 3] });
    const calls = engine.received.filter((x) => x.url !== '/health').map((x) => [x.url, JSON.parse(x.body) as unknown]);
    expect(calls[0]).toEqual(['/tokenize', expect.objectContaining({ messages: chat.messages })]);
    expect(calls[1]).toEqual(['/detokenize', { model: 'm', tokens: [1, 2, 3] }]);
  });
});
