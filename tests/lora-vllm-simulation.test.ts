// Simulation: LoRA adapters on vLLM, through the real CLI (dist/serve/main.js) on a simulated GPU
// machine. A fake `nvidia-smi` and a fake `vllm` go first on PATH; the fake vllm is a small HTTP
// server that answers as vLLM v0.11.0 does for what LoRA uses (../shared/data/engines/
// vllm-v0.11.0.json: --lora-modules, /v1/models with parent, /v1/load_lora_adapter and
// /v1/unload_lora_adapter only with VLLM_ALLOW_RUNTIME_LORA_UPDATING) and records every call.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { until } from './helpers/poll.js';
import { startStack, type Stack } from './helpers/stack.js';

const MODEL = 'meta/llama-3.1-8b-instruct';
const CONTRACT_QUERY = '--query-gpu=index,name,pci.device_id,memory.total,compute_cap';

// The fake vLLM (CommonJS, no dependencies). Writes one JSON line per event to LOG.
const FAKE_VLLM = (log: string) => `#!/usr/bin/env node
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const record = (o) => fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify(o) + '\\n');
const argv = process.argv.slice(2);
const runtime = ['1', 'true'].includes(String(process.env.VLLM_ALLOW_RUNTIME_LORA_UPDATING || '').toLowerCase());
record({ argv, runtime });
const at = (f) => argv[argv.indexOf(f) + 1];
const port = Number(at('--port'));
const served = at('--served-model-name');
const loras = new Map();
const i = argv.indexOf('--lora-modules');
if (i >= 0) for (const v of argv.slice(i + 1)) { if (v.startsWith('--')) break; const m = JSON.parse(v); loras.set(m.name, m.path); }
const send = (res, status, body, type = 'application/json') => res.writeHead(status, { 'content-type': type }).end(typeof body === 'string' ? body : JSON.stringify(body));
const error = (res, status, message) => send(res, status, { error: { message, type: status === 404 ? 'NotFoundError' : 'BadRequestError', param: null, code: status } });
http.createServer((req, res) => {
  let raw = '';
  req.setEncoding('utf8').on('data', (d) => (raw += d)).on('end', () => {
    const body = raw ? JSON.parse(raw) : undefined;
    if (req.url !== '/health' && req.url !== '/metrics') record({ method: req.method, path: req.url, body });
    if (req.url === '/health') return send(res, 200, '');
    if (req.method === 'GET' && req.url === '/v1/models') {
      const card = (id, root, parent) => ({ id, object: 'model', created: 1, owned_by: 'vllm', root, parent, max_model_len: 4096 });
      return send(res, 200, { object: 'list', data: [card(served, argv[1], null), ...[...loras].map(([n, p]) => card(n, p, served))] });
    }
    if (runtime && req.method === 'POST' && req.url === '/v1/load_lora_adapter') {
      const { lora_name: name, lora_path: p } = body || {};
      if (typeof name !== 'string' || typeof p !== 'string') return error(res, 400, "Both 'lora_name' and 'lora_path' must be provided.");
      if (loras.has(name)) return error(res, 400, "The lora adapter '" + name + "' has already been loaded.");
      let cfg;
      try { cfg = JSON.parse(fs.readFileSync(path.join(p, 'adapter_config.json'), 'utf8')); } catch { return error(res, 404, 'No adapter found for ' + p); }
      // As vLLM refuses an adapter whose modules the model lacks (add_lora failure: 400).
      if ((cfg.target_modules || []).includes('lm_head')) return error(res, 400, 'While loading ' + p + ', expected target modules in [q_proj, v_proj] but received [lm_head]');
      loras.set(name, p);
      return send(res, 200, "Success: LoRA adapter '" + name + "' added successfully.", 'text/plain');
    }
    if (runtime && req.method === 'POST' && req.url === '/v1/unload_lora_adapter') {
      const name = body && body.lora_name;
      if (!loras.delete(name)) return error(res, 404, "The lora adapter '" + name + "' cannot be found.");
      return send(res, 200, "Success: LoRA adapter '" + name + "' removed successfully.", 'text/plain');
    }
    if (req.method === 'POST' && req.url === '/v1/chat/completions') {
      if (body.model !== served && !loras.has(body.model)) return error(res, 404, 'The model \`' + body.model + '\` does not exist.');
      return send(res, 200, { id: 'c', object: 'chat.completion', created: 1, model: body.model, choices: [{ index: 0, message: { role: 'assistant', content: 'answered by ' + body.model }, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 } });
    }
    return error(res, 404, 'Not Found');
  });
}).listen(port, '127.0.0.1');
`;

let dir: string;
let bin: string;
let peft: string;
let logFile: string;
const events = () => readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { argv?: string[]; runtime?: boolean; method?: string; path?: string; body?: Record<string, unknown> });
const loraCalls = () => events().filter((e) => e.path?.includes('_lora_adapter')).map((e) => [e.path, e.body]);

function adapter(name: string, r: number, root = peft): void {
  mkdirSync(join(root, name), { recursive: true });
  writeFileSync(join(root, name, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r, lora_alpha: 16, target_modules: ['q_proj', 'v_proj'] }));
  writeFileSync(join(root, name, 'adapter_model.safetensors'), 'weights');
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'portico-lora-sim-'));
  bin = join(dir, 'bin');
  peft = join(dir, 'loras');
  logFile = join(dir, 'vllm.jsonl');
  mkdirSync(bin);
  mkdirSync(peft);
  const exe = (name: string, body: string) => {
    writeFileSync(join(bin, name), body);
    chmodSync(join(bin, name), 0o755);
  };
  writeFileSync(join(bin, 'gpus.csv'), '0, NVIDIA L40S, 0x26B910DE, 46068, 8.9\n');
  exe('nvidia-smi', `#!/bin/sh\ncase "$1" in\n  ${CONTRACT_QUERY}) cat '${join(bin, 'gpus.csv')}' ;;\n  *) exit 0 ;;\nesac\n`);
  exe('vllm', FAKE_VLLM(logFile));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const env = (extra: Record<string, string> = {}) => ({
  PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`,
  NIM_CACHE_PATH: inject('cachePath'),
  NIM_MODEL_PATH: MODEL,
  NIM_PEFT_SOURCE: peft,
  NIM_MAX_GPU_LORAS: '2',
  NIM_MAX_CPU_LORAS: '4',
  NIM_MAX_LORA_RANK: '32',
  ...extra,
});

describe('simulation: vLLM LoRA, static and dynamic', () => {
  let stack: Stack;
  let client: OpenAI;
  const models = async () => (await client.models.list()).data.map((m) => [m.id, (m as unknown as { parent: string | null }).parent]);
  const ask = async (model: string) => (await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] })).choices[0]!.message.content;

  beforeAll(async () => {
    adapter('sql', 8);
    adapter('poet', 16);
    adapter('huge', 64); // above NIM_MAX_LORA_RANK: skipped before vLLM sees it
    mkdirSync(join(peft, 'half-copied'));
    writeFileSync(join(peft, 'half-copied', 'adapter_config.json'), '{"r": 8}');
    stack = await startStack(env({ NIM_PEFT_REFRESH_INTERVAL: '1' }));
    client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('simulation: the feat_lora profile starts vllm with the limits, the static --lora-modules and the runtime-update env var', () => {
    const start = events()[0]!;
    const argv = start.argv!;
    const at = (f: string) => argv[argv.indexOf(f) + 1];
    expect(argv).toContain('--enable-lora');
    expect([at('--max-loras'), at('--max-cpu-loras'), at('--max-lora-rank')]).toEqual(['2', '4', '32']);
    const i = argv.indexOf('--lora-modules');
    expect(argv.slice(i + 1, i + 3).map((s) => JSON.parse(s) as unknown)).toEqual([
      { name: 'poet', path: join(peft, 'poet') },
      { name: 'sql', path: join(peft, 'sql') },
    ]);
    expect(start.runtime).toBe(true);
    expect(stack.output()).toMatch(/skipping adapter folder "huge": rank 64 is above NIM_MAX_LORA_RANK=32/);
    expect(stack.output()).toMatch(/skipping adapter folder "half-copied": holds no adapter_model\.safetensors or adapter_model\.bin/);
  });

  it('simulation: the static adapters are models: listed with their parent, routed by name, 404 for others', async () => {
    expect(await models()).toEqual([[MODEL, null], ['poet', MODEL], ['sql', MODEL]]);
    expect(await ask('sql')).toBe('answered by sql');
    expect(await ask(MODEL)).toBe(`answered by ${MODEL}`);
    await expect(ask('huge')).rejects.toMatchObject({ status: 404, error: { code: 'model_not_found' } });
  });

  it('simulation: a folder added and one removed while running are loaded and unloaded through the runtime endpoints', async () => {
    const staging = join(dir, 'staging');
    adapter('math', 8, staging);
    await rename(join(staging, 'math'), join(peft, 'math'));
    rmSync(join(peft, 'sql'), { recursive: true });
    await until(async () => JSON.stringify(await models()) === JSON.stringify([[MODEL, null], ['poet', MODEL], ['math', MODEL]]), 'math listed, sql gone', {
      withinMs: 20_000,
      detail: () => stack.output(),
    });
    expect(loraCalls()).toEqual([
      ['/v1/unload_lora_adapter', { lora_name: 'sql' }],
      ['/v1/load_lora_adapter', { lora_name: 'math', lora_path: join(peft, 'math') }],
    ]);
    expect(await ask('math')).toBe('answered by math');
    await expect(ask('sql')).rejects.toMatchObject({ status: 404, error: { code: 'model_not_found' } });
  });

  it('simulation: replaced weights are reloaded under the same name; an adapter vLLM refuses is logged and not served', async () => {
    const before = loraCalls().length;
    writeFileSync(join(peft, 'poet', 'adapter_model.safetensors'), 'new weights, longer');
    const staging = join(dir, 'staging2');
    adapter('refused', 8, staging);
    writeFileSync(join(staging, 'refused', 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 8, target_modules: ['lm_head'] }));
    await rename(join(staging, 'refused'), join(peft, 'refused'));
    // The fake records a call before answering it: wait for the gateway's log of the answer too.
    await until(() => loraCalls().length >= before + 3 && /vLLM refused to load adapter "refused"/.test(stack.output()), 'poet reloaded and refused tried', {
      withinMs: 20_000,
      detail: () => stack.output(),
    });
    const calls = loraCalls().slice(before).map((c) => JSON.stringify(c));
    const unloadPoet = JSON.stringify(['/v1/unload_lora_adapter', { lora_name: 'poet' }]);
    const loadPoet = JSON.stringify(['/v1/load_lora_adapter', { lora_name: 'poet', lora_path: join(peft, 'poet') }]);
    const loadRefused = JSON.stringify(['/v1/load_lora_adapter', { lora_name: 'refused', lora_path: join(peft, 'refused') }]);
    // The two changes may land in one pass or two; either way each call is made once.
    expect([...calls].sort()).toEqual([loadPoet, loadRefused, unloadPoet].sort());
    expect(calls.indexOf(unloadPoet)).toBeLessThan(calls.indexOf(loadPoet));
    expect(stack.output()).toMatch(/vLLM refused to load adapter "refused" \(400\): While loading .*received \[lm_head\]/);
    expect(await models()).toEqual([[MODEL, null], ['poet', MODEL], ['math', MODEL]]);
    expect(await ask('poet')).toBe('answered by poet');
    // Not retried while its files stay the same: a later pass (the one that loads `later`) leaves it alone.
    const n = loraCalls().length;
    adapter('later', 8, join(dir, 'staging3'));
    await rename(join(dir, 'staging3', 'later'), join(peft, 'later'));
    await until(async () => (await models()).some(([id]) => id === 'later'), 'later listed', { withinMs: 20_000, detail: () => stack.output() });
    expect(loraCalls().slice(n)).toEqual([['/v1/load_lora_adapter', { lora_name: 'later', lora_path: join(peft, 'later') }]]);
  });
});

describe('simulation: vLLM LoRA without NIM_PEFT_REFRESH_INTERVAL', () => {
  it('simulation: static adapters only: no runtime-update env var, and no load/unload calls', async () => {
    const calls = loraCalls().length;
    const stack = await startStack(env({ NIM_MAX_LORA_RANK: '64' }));
    try {
      const start = events().filter((e) => e.argv).at(-1)!;
      expect(start.runtime).toBe(false);
      expect(start.argv![start.argv!.indexOf('--max-lora-rank') + 1]).toBe('64');
      const client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      expect((await client.models.list()).data.map((m) => m.id).sort()).toEqual([MODEL, 'huge', 'later', 'math', 'poet', 'refused'].sort());
      expect(await client.chat.completions.create({ model: 'huge', messages: [{ role: 'user', content: 'hi' }] })).toMatchObject({ model: 'huge' });
      expect(loraCalls().length).toBe(calls);
    } finally {
      await stack.stop();
    }
  });
});
