// LoRA adapters as models of the registry, against scripted engines on 127.0.0.1 that record the
// bodies they receive: what each engine dialect is sent for the base model, an adapter and an
// unrelated model, and what the client gets back.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EngineDialect } from '../core/engine.js';
import { createApp } from './app.js';
import { Admission } from './admission.js';
import { LoraModels, renameModelSse } from './lora-models.js';
import { ModelRegistry } from './models.js';
import { Upstream } from './upstream.js';
import { fakeEngine, type FakeEngine } from '../tests/helpers/fake-engine.js';
import { json, type ModelList } from '../tests/helpers/json.js';

const BASE = 'org/chat';
let engine: FakeEngine;
let other: FakeEngine;
let ups: Upstream[];

const answer = (model: string) => ({ id: 'c1', object: 'chat.completion', created: 1, model, choices: [{ index: 0, message: { role: 'assistant', content: 'the "model":"org/chat" text stays' }, finish_reason: 'stop' }] });

function setup(dialect: EngineDialect) {
  const registry = new ModelRegistry();
  const add = (id: string, e: FakeEngine, d: EngineDialect) => {
    const u = new Upstream(e.url);
    ups.push(u);
    return registry.add({
      served: { id, root: `/models/${id}`, maxModelLen: 4096 },
      upstream: u,
      engine: { dialect: d },
      admission: new Admission({ maxConcurrent: 4, maxQueue: 0, queueTimeoutMs: 1000 }),
      readiness: { isReady: () => true, reason: () => '' },
    });
  };
  add(BASE, engine, dialect);
  add('org/other', other, dialect);
  const loras = new LoraModels();
  loras.set([
    { id: 'sql', root: '/loras/sql' },
    { id: 'poet', root: '/loras/poet' },
  ]);
  const { app } = createApp({ settings: { maxRequestBytes: 64 * 1024 }, registry, loras: [loras] });
  return { app, registry, loras };
}
const chat = (app: ReturnType<typeof setup>['app'], body: Record<string, unknown>) =>
  app.request('/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], ...body }) });
const sent = (e: FakeEngine) => e.received.filter((r) => r.url === '/v1/chat/completions').map((r) => JSON.parse(r.body) as Record<string, unknown>);

beforeEach(async () => {
  ups = [];
  engine = await fakeEngine();
  other = await fakeEngine();
  for (const e of [engine, other]) {
    e.on('/v1/chat/completions', (q, res) => {
      const body = JSON.parse(q.body) as { stream?: boolean };
      // The engine names its own alias, as llama-server does.
      const model = e === engine ? BASE : 'org/other';
      if (!body.stream) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer(model)));
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const text = ['ab', 'cd'].map((t) => `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', model, choices: [{ index: 0, delta: { content: t } }] })}\n\n`).join('') + 'data: [DONE]\n\n';
      // Split mid-pattern, so the renaming has to join lines across chunks.
      const cut = text.indexOf('"model"') + 4;
      res.write(text.slice(0, cut));
      setTimeout(() => res.end(text.slice(cut)), 5);
    });
  }
});
afterEach(async () => {
  await Promise.all(ups.map((u) => u.close()));
  await Promise.all([engine.close(), other.close()]);
});

describe('adapters in the registry', () => {
  it('are listed after their base with parent and root, follow set(), and an unknown or removed one is a 404', async () => {
    const { app, loras, registry } = setup('openai');
    const list = async () => (await json<ModelList>(await app.request('/v1/models'))).data.map((m) => [m.id, m.parent, m.root]);
    expect(await list()).toEqual([[BASE, null, '/models/org/chat'], ['org/other', null, '/models/org/other'], ['sql', BASE, '/loras/sql'], ['poet', BASE, '/loras/poet']]);
    expect((await app.request('/v1/models/sql')).status).toBe(200);
    loras.set([{ id: 'poet', root: '/loras/poet' }, { id: 'math', root: '/loras/math' }]);
    expect(await list()).toEqual([[BASE, null, '/models/org/chat'], ['org/other', null, '/models/org/other'], ['poet', BASE, '/loras/poet'], ['math', BASE, '/loras/math']]);
    const gone = await chat(app, { model: 'sql' });
    expect(gone.status).toBe(404);
    expect((await json(gone)).error).toMatchObject({ code: 'model_not_found', param: 'model' });
    // A folder named like another model is not served as an adapter.
    expect(loras.set([{ id: 'org/other', root: '/loras/x' }])).toEqual(['org/other']);
    expect(registry.find('org/other')?.parent).toBeNull();
  });
});

describe('llama.cpp: the whole lora vector on every request to the base model and its adapters', () => {
  it('adapter at scale 1, the others 0; the base model all 0; another model untouched', async () => {
    const { app } = setup('llamacpp');
    for (const model of ['poet', BASE, 'sql']) expect((await chat(app, { model })).status).toBe(200);
    expect(sent(engine).map((b) => b.lora)).toEqual([
      [{ id: 0, scale: 0 }, { id: 1, scale: 1 }],
      [{ id: 0, scale: 0 }, { id: 1, scale: 0 }],
      [{ id: 0, scale: 1 }, { id: 1, scale: 0 }],
    ]);
    expect((await chat(app, { model: 'org/other' })).status).toBe(200);
    expect(sent(other)[0]).not.toHaveProperty('lora');
  });

  it('the answer names the adapter, not the engine alias (JSON and stream), content untouched', async () => {
    const { app } = setup('llamacpp');
    const r = await json<ReturnType<typeof answer>>(await chat(app, { model: 'sql' }));
    expect(r.model).toBe('sql');
    expect(r.choices[0]!.message.content).toBe('the "model":"org/chat" text stays');
    expect((await json<ReturnType<typeof answer>>(await chat(app, { model: BASE }))).model).toBe(BASE);
    const s = await (await chat(app, { model: 'sql', stream: true })).text();
    expect(s.match(/"model":"[^"]*"/g)).toEqual(['"model":"sql"', '"model":"sql"']);
    expect(s.endsWith('data: [DONE]\n\n')).toBe(true);
  });
});

describe('several models, each with its own adapters', () => {
  it('an adapter reaches its own base model\'s engine with that engine\'s vector', async () => {
    const registry = new ModelRegistry();
    const entries = [BASE, 'org/other'].map((id, i) => {
      const u = new Upstream([engine, other][i]!.url);
      ups.push(u);
      return registry.add({
        served: { id, root: `/models/${id}`, maxModelLen: 4096 },
        upstream: u,
        engine: { dialect: 'llamacpp' },
        admission: new Admission({ maxConcurrent: 4, maxQueue: 0, queueTimeoutMs: 1000 }),
        readiness: { isReady: () => true, reason: () => '' },
      });
    });
    const mine = new LoraModels();
    mine.set([{ id: 'sql', root: '/loras/sql' }]);
    mine.bind(registry, entries[0]!);
    const theirs = new LoraModels();
    theirs.set([{ id: 'x', root: '/other-loras/x' }, { id: 'y', root: '/other-loras/y' }]);
    theirs.bind(registry, entries[1]!);
    const { app } = createApp({ settings: { maxRequestBytes: 64 * 1024 }, registry, loras: [mine, theirs] });
    expect((await json<ModelList>(await app.request('/v1/models'))).data.map((m) => [m.id, m.parent])).toEqual([[BASE, null], ['org/other', null], ['sql', BASE], ['x', 'org/other'], ['y', 'org/other']]);
    for (const model of ['y', 'sql', 'org/other']) expect((await chat(app, { model })).status).toBe(200);
    expect(sent(engine).map((b) => b.lora)).toEqual([[{ id: 0, scale: 1 }]]);
    expect(sent(other).map((b) => b.lora)).toEqual([[{ id: 0, scale: 0 }, { id: 1, scale: 1 }], [{ id: 0, scale: 0 }, { id: 1, scale: 0 }]]);
    const y = await json<ReturnType<typeof answer>>(await chat(app, { model: 'y' }));
    expect(y.model).toBe('y');
  });
});

describe('TensorRT-LLM: lora_request from the folder', () => {
  it('an adapter gets lora_request with a stable id; a client-sent lora_request is never forwarded', async () => {
    const { app } = setup('trtllm');
    const evil = { lora_name: 'x', lora_int_id: 9, lora_path: '/etc' };
    for (const model of ['sql', 'poet', 'sql', BASE]) expect((await chat(app, { model, lora_request: evil })).status).toBe(200);
    expect((await chat(app, { model: 'org/other', lora_request: evil })).status).toBe(200);
    expect(sent(engine).map((b) => b.lora_request)).toEqual([
      { lora_name: 'sql', lora_int_id: 1, lora_path: '/loras/sql', lora_ckpt_source: 'hf' },
      { lora_name: 'poet', lora_int_id: 2, lora_path: '/loras/poet', lora_ckpt_source: 'hf' },
      { lora_name: 'sql', lora_int_id: 1, lora_path: '/loras/sql', lora_ckpt_source: 'hf' },
      undefined,
    ]);
    expect(sent(other)[0]).not.toHaveProperty('lora_request');
  });
});

describe('vLLM: an adapter is a model name the engine routes itself', () => {
  it('the client bytes go out unchanged', async () => {
    const { app } = setup('openai');
    const body = JSON.stringify({ model: 'sql', messages: [{ role: 'user', content: 'hi' }] });
    expect((await app.request('/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status).toBe(200);
    expect(engine.received.find((r) => r.url === '/v1/chat/completions')!.body).toBe(body);
  });
});

describe('renameModelSse', () => {
  it('renames whole lines whatever the chunking, multi-byte characters included', async () => {
    const text = 'data: {"model":"org/chat","x":"é→ü"}\n\ndata: {"model":"org/chat"}\n\ndata: [DONE]\n\n';
    const bytes = new TextEncoder().encode(text);
    for (const size of [1, 2, 3, 7, bytes.length]) {
      const chunks: Uint8Array<ArrayBuffer>[] = [];
      for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.slice(i, i + size));
      const out = await new Response(renameModelSse(new Response(new Blob(chunks)).body!, 'org/chat', 'sql')).text();
      expect(out).toBe(text.replaceAll('"model":"org/chat"', '"model":"sql"'));
    }
  });
});
