// Several models behind one app: each request goes to its model's engine (two scripted engines on
// 127.0.0.1 record what reaches them), with its own admission slots and readiness.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from './app.js';
import { Admission } from './admission.js';
import { KeyStore } from './auth.js';
import { Metrics } from './metrics.js';
import { ModelRegistry, type ModelSpec } from './models.js';
import { Upstream } from './upstream.js';
import { completion, fakeEngine, type FakeEngine } from '../tests/helpers/fake-engine.js';
import { json, type ModelCard, type ModelList } from '../tests/helpers/json.js';

const EMBEDDING = { object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.5, 0.25] }], model: 'embed', usage: { prompt_tokens: 2, total_tokens: 2 } };

let chatEngine: FakeEngine;
let embedEngine: FakeEngine;
let ups: Upstream[];
let ready: Record<string, boolean>;

const upstream = (url: string) => {
  const u = new Upstream(url);
  ups.push(u);
  return u;
};
const spec = (id: string, engine: FakeEngine, task: ModelSpec['task'], over: Partial<ModelSpec> = {}): ModelSpec => ({
  served: { id, root: `/models/${id}`, maxModelLen: id === 'org/chat' ? 4096 : 512 },
  task,
  upstream: upstream(engine.url),
  engine: { dialect: 'openai' },
  admission: new Admission({ maxConcurrent: 1, maxQueue: 0, queueTimeoutMs: 1000 }),
  readiness: { isReady: () => ready[id] ?? false, reason: () => 'the engine is starting' },
  ...over,
});

function twoModels(over: { keys?: KeyStore; metrics?: Metrics } = {}) {
  const registry = new ModelRegistry();
  const chat = registry.add(spec('org/chat', chatEngine, 'chat', { aliases: ['chat-alias'] }));
  const embed = registry.add(spec('org/embed', embedEngine, 'embedding'));
  const { app } = createApp({ settings: { maxRequestBytes: 64 * 1024 }, registry, ...over });
  return { app, registry, chat, embed };
}

const post = (app: ReturnType<typeof twoModels>['app'], path: string, body: unknown, headers: Record<string, string> = {}) =>
  app.request(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
const engineCalls = (e: FakeEngine) => e.received.filter((r) => r.url !== '/health' && r.url !== '/metrics');

beforeEach(async () => {
  ups = [];
  ready = { 'org/chat': true, 'org/embed': true };
  chatEngine = await fakeEngine();
  embedEngine = await fakeEngine();
  chatEngine.on('/v1/chat/completions', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion('from chat'))));
  chatEngine.on('/tokenize', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"count":3,"max_model_len":4096,"tokens":[1,2,3],"token_strs":null}'));
  embedEngine.on('/v1/embeddings', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(EMBEDDING)));
  embedEngine.on('/tokenize', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"count":2,"max_model_len":512,"tokens":[7,8],"token_strs":null}'));
});
afterEach(async () => {
  await Promise.all(ups.map((u) => u.close()));
  await Promise.all([chatEngine.close(), embedEngine.close()]);
});

describe('routing by model', () => {
  it('sends chat to the chat engine and embeddings to the embedding engine, nothing to the other', async () => {
    const { app } = twoModels();
    const c = await post(app, '/v1/chat/completions', { model: 'org/chat', messages: [{ role: 'user', content: 'hi' }] });
    expect(c.status).toBe(200);
    expect((await json<{ choices: { message: { content: string } }[] }>(c)).choices[0]!.message.content).toBe('from chat');
    const e = await post(app, '/v1/embeddings', { model: 'org/embed', input: 'hello' });
    expect(e.status).toBe(200);
    expect((await json<typeof EMBEDDING>(e)).data[0]!.embedding).toEqual([0.5, 0.25]);
    expect(engineCalls(chatEngine).map((r) => r.url)).toEqual(['/v1/chat/completions']);
    expect(engineCalls(embedEngine).map((r) => r.url)).toEqual(['/v1/embeddings']);
  });

  it('refuses a route the model does not serve with 400 model_route_mismatch, before any engine is called', async () => {
    const { app } = twoModels();
    const toEmbed = await post(app, '/v1/chat/completions', { model: 'org/embed', messages: [{ role: 'user', content: 'hi' }] });
    expect(toEmbed.status).toBe(400);
    const a = await json(toEmbed);
    expect(a.error).toMatchObject({ code: 'model_route_mismatch', type: 'invalid_request_error', param: 'model' });
    expect(a.error.message).toContain('org/embed');
    const toChat = await post(app, '/v1/embeddings', { model: 'org/chat', input: 'hello' });
    expect(toChat.status).toBe(400);
    expect((await json(toChat)).error.code).toBe('model_route_mismatch');
    for (const [path, body] of [
      ['/v1/completions', { model: 'org/embed', prompt: 'x' }],
      ['/v1/chat/completions/render', { model: 'org/embed', messages: [{ role: 'user', content: 'hi' }] }],
      ['/v1/messages', { model: 'org/embed', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }],
      ['/v1/responses', { model: 'org/embed', input: 'hi' }],
    ] as const) {
      const r = await post(app, path, body);
      expect(r.status, path).toBe(400);
      const text = await r.text();
      expect(text, path).toContain('does not serve');
    }
    expect(engineCalls(chatEngine)).toHaveLength(0);
    expect(engineCalls(embedEngine)).toHaveLength(0);
  });

  it('answers an unknown model with 404 model_not_found, and tokenize goes to the named model', async () => {
    const { app } = twoModels();
    const r = await post(app, '/v1/chat/completions', { model: 'nope', messages: [{ role: 'user', content: 'hi' }] });
    expect(r.status).toBe(404);
    expect((await json(r)).error.code).toBe('model_not_found');
    const t1 = await post(app, '/tokenize', { model: 'org/embed', prompt: 'hello' });
    expect((await json<{ tokens: number[] }>(t1)).tokens).toEqual([7, 8]);
    const t2 = await post(app, '/tokenize', { model: 'org/chat', prompt: 'hello' });
    expect((await json<{ tokens: number[] }>(t2)).tokens).toEqual([1, 2, 3]);
  });

  it('sends an alias to the engine as the model id', async () => {
    const { app } = twoModels();
    const r = await post(app, '/v1/chat/completions', { model: 'chat-alias', messages: [{ role: 'user', content: 'hi' }] });
    expect(r.status).toBe(200);
    expect(JSON.parse(engineCalls(chatEngine)[0]!.body).model).toBe('org/chat');
  });
});

describe('per-model admission and readiness', () => {
  it('a model whose slots are full answers 429 while the other model still serves', async () => {
    let hold!: () => void;
    const held = new Promise<void>((r) => (hold = r));
    chatEngine.on('/v1/chat/completions', async (_q, res) => {
      await held;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion()));
    });
    const { app, chat } = twoModels();
    const first = post(app, '/v1/chat/completions', { model: 'org/chat', messages: [{ role: 'user', content: 'hi' }] });
    for (let i = 0; i < 100 && chat.admission.inFlight === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(chat.admission.inFlight).toBe(1);
    const second = await post(app, '/v1/chat/completions', { model: 'org/chat', messages: [{ role: 'user', content: 'hi' }] });
    expect(second.status).toBe(429);
    const other = await post(app, '/v1/embeddings', { model: 'org/embed', input: 'x' });
    expect(other.status).toBe(200);
    hold();
    expect((await first).status).toBe(200);
    expect(chat.admission.inFlight).toBe(0);
  });

  it('is ready only when every model is; /v1/models/{id} shows each one; a not-ready model answers 503, the other serves', async () => {
    const { app } = twoModels();
    expect((await app.request('/v1/health/ready')).status).toBe(200);
    ready['org/embed'] = false;
    const r = await app.request('/v1/health/ready');
    expect(r.status).toBe(503);
    expect((await json(r)).error.message).toContain('org/embed: the engine is starting');
    const card = await json<ModelCard & { ready: boolean; reason?: string }>(await app.request('/v1/models/org/embed'));
    expect(card).toMatchObject({ id: 'org/embed', ready: false, reason: 'the engine is starting', parent: null, max_model_len: 512 });
    expect(await json<{ ready: boolean }>(await app.request('/v1/models/org/chat'))).toMatchObject({ id: 'org/chat', ready: true });
    const e = await post(app, '/v1/embeddings', { model: 'org/embed', input: 'x' });
    expect(e.status).toBe(503);
    expect((await json(e)).error.code).toBe('engine_unavailable');
    expect((await post(app, '/v1/chat/completions', { model: 'org/chat', messages: [{ role: 'user', content: 'hi' }] })).status).toBe(200);
    expect((await app.request('/v1/models/nope')).status).toBe(404);
  });
});

describe('the model list, keys, metadata and metrics', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'portico-models-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('lists every model; a key scoped with models= sees and uses only its models', async () => {
    const file = join(dir, 'keys');
    writeFileSync(file, 'sk-all-0123456789abcdef\nsk-embed-0123456789abcdef models=org/embed\n');
    const { app } = twoModels({ keys: new KeyStore({ file }) });
    const all = { authorization: 'Bearer sk-all-0123456789abcdef' };
    const scoped = { authorization: 'Bearer sk-embed-0123456789abcdef' };
    const list = await json<ModelList>(await app.request('/v1/models', { headers: all }));
    expect(list.data.map((m) => m.id)).toEqual(['org/chat', 'org/embed']);
    const mine = await json<ModelList>(await app.request('/v1/models', { headers: scoped }));
    expect(mine.data.map((m) => m.id)).toEqual(['org/embed']);
    expect((await post(app, '/v1/embeddings', { model: 'org/embed', input: 'x' }, scoped)).status).toBe(200);
    const denied = await post(app, '/v1/chat/completions', { model: 'org/chat', messages: [{ role: 'user', content: 'hi' }] }, scoped);
    expect(denied.status).toBe(403);
    expect((await json(denied)).error.code).toBe('model_not_allowed');
    expect((await app.request('/v1/models/org/chat', { headers: scoped })).status).toBe(403);
    expect(engineCalls(chatEngine)).toHaveLength(0);
  });

  it('/v1/metadata lists every model; metrics carry each request under its model_name', async () => {
    const metrics = new Metrics();
    const { app } = twoModels({ metrics });
    const meta = await json<{ modelInfo: { servedModelName: string; maxModelLen: number }[] }>(await app.request('/v1/metadata'));
    expect(meta.modelInfo.map((m) => [m.servedModelName, m.maxModelLen])).toEqual([
      ['org/chat', 4096],
      ['org/embed', 512],
    ]);
    await post(app, '/v1/chat/completions', { model: 'org/chat', messages: [{ role: 'user', content: 'hi' }] });
    await post(app, '/v1/embeddings', { model: 'org/embed', input: 'x' });
    await post(app, '/v1/embeddings', { model: 'org/embed', input: 'y' });
    const text = await (await app.request('/v1/metrics')).text();
    expect(text).toContain('request_success_total{model_name="org/chat"} 1');
    expect(text).toContain('request_success_total{model_name="org/embed"} 2');
    expect(text).toContain('num_requests_running{model_name="org/embed"} 0');
  });

  it('merges the engines’ own series, each labelled with its model', async () => {
    const exposition = (n: number) => `# HELP llamacpp:requests_processing Number of requests processing.\n# TYPE llamacpp:requests_processing gauge\nllamacpp:requests_processing ${n}\n`;
    chatEngine.on('/metrics', (_q, res) => void res.writeHead(200, { 'content-type': 'text/plain' }).end(exposition(3)));
    embedEngine.on('/metrics', (_q, res) => void res.writeHead(200, { 'content-type': 'text/plain' }).end(exposition(1)));
    const { app } = twoModels();
    const text = await (await app.request('/v1/metrics')).text();
    expect(text.match(/^# TYPE llamacpp:requests_processing gauge$/gm)).toHaveLength(1);
    expect(text).toContain('llamacpp:requests_processing{model_name="org/chat"} 3\nllamacpp:requests_processing{model_name="org/embed"} 1');
    expect(text).toContain('num_requests_running{model_name="org/chat"} 3');
    expect(text).toContain('num_requests_running{model_name="org/embed"} 1');
  });
});

describe('entries added and removed at run time', () => {
  it('serves a model added after start (sharing its parent’s engine) and stops serving it once removed', async () => {
    const { app, registry, chat } = twoModels();
    registry.add({ ...chat, served: { ...chat.served, id: 'org/chat-lora', root: '/adapters/x' }, aliases: [], parent: 'org/chat' });
    const list = await json<ModelList>(await app.request('/v1/models'));
    expect(list.data.find((m) => m.id === 'org/chat-lora')).toMatchObject({ parent: 'org/chat', root: '/adapters/x' });
    const r = await post(app, '/v1/chat/completions', { model: 'org/chat-lora', messages: [{ role: 'user', content: 'hi' }] });
    expect(r.status).toBe(200);
    expect(JSON.parse(engineCalls(chatEngine)[0]!.body).model).toBe('org/chat-lora');
    expect(() => registry.add({ ...chat, served: { ...chat.served, id: 'org/chat-lora' } })).toThrow(/already served/);
    expect(registry.remove('org/chat-lora')?.id).toBe('org/chat-lora');
    expect((await post(app, '/v1/chat/completions', { model: 'org/chat-lora', messages: [{ role: 'user', content: 'hi' }] })).status).toBe(404);
  });
});
