// The vLLM LoRA client against a recording fake vLLM on 127.0.0.1 that answers as v0.11.0 does
// (../shared/data/engines/vllm-v0.11.0.json: lora_runtime, models_response).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { applyLoraChanges, reconcileLoras, VLLM_RUNTIME_LORA_ENV, vllmLoraArgs, VllmLoraClient } from './lora-vllm.js';

interface Call {
  method: string;
  path: string;
  contentType: string | undefined;
  body: unknown;
}
let server: Server;
let url: string;
const calls: Call[] = [];
const adapters = new Map<string, string>();

function fakeVllm(req: IncomingMessage, res: ServerResponse): void {
  let raw = '';
  req.setEncoding('utf8').on('data', (d: string) => (raw += d));
  req.on('end', () => {
    const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
    calls.push({ method: req.method!, path: req.url!, contentType: req.headers['content-type'], body });
    const text = (status: number, t: string) => res.writeHead(status, { 'content-type': 'text/plain' }).end(t);
    const error = (status: number, message: string) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message, type: status === 404 ? 'NotFoundError' : 'BadRequestError', param: null, code: status } }));
    if (req.method === 'POST' && req.url === '/v1/load_lora_adapter') {
      const name = body?.lora_name;
      const path = body?.lora_path;
      if (typeof name !== 'string' || typeof path !== 'string') return error(400, 'Both \'lora_name\' and \'lora_path\' must be provided.');
      if (adapters.has(name)) return error(400, `The lora adapter '${name}' has already been loaded.`);
      if (!path.startsWith('/loras/')) return error(404, `No adapter found for ${path}`);
      adapters.set(name, path);
      return text(200, `Success: LoRA adapter '${name}' added successfully.`);
    }
    if (req.method === 'POST' && req.url === '/v1/unload_lora_adapter') {
      const name = body?.lora_name;
      if (typeof name !== 'string') return error(400, "'lora_name' needs to be provided to unload a LoRA adapter.");
      if (!adapters.delete(name)) return error(404, `The lora adapter '${name}' cannot be found.`);
      return text(200, `Success: LoRA adapter '${name}' removed successfully.`);
    }
    if (req.method === 'GET' && req.url === '/v1/models') {
      const card = (id: string, root: string, parent: string | null, maxModelLen: number | null) => ({ id, object: 'model', created: 1, owned_by: 'vllm', root, parent, max_model_len: maxModelLen, permission: [] });
      return res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ object: 'list', data: [card('meta/llama-3.1-8b-instruct', '/models/llama', null, 8192), ...[...adapters].map(([n, p]) => card(n, p, 'meta/llama-3.1-8b-instruct', null))] }));
    }
    error(404, 'Not Found');
  });
}

beforeAll(async () => {
  server = createServer(fakeVllm);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  calls.length = 0;
  adapters.clear();
});

describe('simulation: vLLM runtime LoRA client against a recording fake vLLM', () => {
  it('load and unload call the exact paths with the exact JSON fields', async () => {
    const c = new VllmLoraClient(url);
    expect(await c.load('math', '/loras/math')).toEqual({ ok: true, message: "Success: LoRA adapter 'math' added successfully." });
    expect(await c.unload('math')).toEqual({ ok: true, message: "Success: LoRA adapter 'math' removed successfully." });
    expect(calls).toEqual([
      { method: 'POST', path: '/v1/load_lora_adapter', contentType: 'application/json', body: { lora_name: 'math', lora_path: '/loras/math' } },
      { method: 'POST', path: '/v1/unload_lora_adapter', contentType: 'application/json', body: { lora_name: 'math' } },
    ]);
  });

  it('reports vLLM\'s refusals with their status and message', async () => {
    const c = new VllmLoraClient(url);
    await c.load('math', '/loras/math');
    expect(await c.load('math', '/loras/math')).toEqual({ ok: false, status: 400, message: "The lora adapter 'math' has already been loaded." });
    expect(await c.load('bad', '/elsewhere/bad')).toEqual({ ok: false, status: 404, message: 'No adapter found for /elsewhere/bad' });
    expect(await c.unload('ghost')).toEqual({ ok: false, status: 404, message: "The lora adapter 'ghost' cannot be found." });
  });

  it('lists the adapters from /v1/models (cards with a parent), not the base model', async () => {
    const c = new VllmLoraClient(url);
    await c.load('math', '/loras/math');
    await c.load('poet', '/loras/poet');
    expect(await c.list()).toEqual([
      { name: 'math', path: '/loras/math', parent: 'meta/llama-3.1-8b-instruct' },
      { name: 'poet', path: '/loras/poet', parent: 'meta/llama-3.1-8b-instruct' },
    ]);
  });

  it('a refresh: a removed folder is unloaded, a new one loaded, a moved one reloaded (unload first)', async () => {
    const c = new VllmLoraClient(url);
    for (const n of ['keep', 'gone', 'moved']) await c.load(n, `/loras/${n}`);
    calls.length = 0;
    const changes = reconcileLoras(
      [
        { name: 'keep', path: '/loras/keep' },
        { name: 'moved', path: '/loras/moved-v2' },
        { name: 'new', path: '/loras/new' },
      ],
      await c.list(),
    );
    expect(changes).toEqual({ unload: ['gone', 'moved'], load: [{ name: 'moved', path: '/loras/moved-v2' }, { name: 'new', path: '/loras/new' }] });
    const results = await applyLoraChanges(c, changes);
    expect(results.every((r) => r.result.ok)).toBe(true);
    expect(calls.map((x) => `${x.path} ${JSON.stringify(x.body)}`)).toEqual([
      '/v1/models undefined',
      '/v1/unload_lora_adapter {"lora_name":"gone"}',
      '/v1/unload_lora_adapter {"lora_name":"moved"}',
      '/v1/load_lora_adapter {"lora_name":"moved","lora_path":"/loras/moved-v2"}',
      '/v1/load_lora_adapter {"lora_name":"new","lora_path":"/loras/new"}',
    ]);
    expect((await c.list()).map((a) => a.name).sort()).toEqual(['keep', 'moved', 'new']);
    // nothing to do once in sync
    expect(reconcileLoras([{ name: 'keep', path: '/loras/keep' }], [{ name: 'keep', path: '/loras/keep', parent: 'x' }])).toEqual({ load: [], unload: [] });
  });

  it('a failed load is reported and does not stop the others', async () => {
    const c = new VllmLoraClient(url);
    const results = await applyLoraChanges(c, { unload: [], load: [{ name: 'bad', path: '/tmp/bad' }, { name: 'ok', path: '/loras/ok' }] });
    expect(results.map((r) => [r.name, r.result.ok])).toEqual([['bad', false], ['ok', true]]);
  });
});

describe('vLLM LoRA settings', () => {
  it('the env var that registers the runtime endpoints', () => {
    expect(VLLM_RUNTIME_LORA_ENV).toEqual({ VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True' });
  });
  it('limits map to --max-loras, --max-cpu-loras, --max-lora-rank; static adapters to --lora-modules in its JSON form', () => {
    expect(vllmLoraArgs({ maxLoras: 4, maxCpuLoras: 16, maxLoraRank: 64 }, [{ name: 'math', path: '/loras/math' }, { name: 'poet', path: '/loras/poet' }])).toEqual([
      '--enable-lora', '--max-loras', '4', '--max-cpu-loras', '16', '--max-lora-rank', '64', '--lora-modules', '{"name":"math","path":"/loras/math"}', '{"name":"poet","path":"/loras/poet"}',
    ]);
    expect(vllmLoraArgs({})).toEqual(['--enable-lora']);
  });
});
