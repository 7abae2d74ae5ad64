// Secrets never echo (issue 12, item 5): NIM_ENGINE_URL with credentials and a query string is
// redacted in /v1/models `root`, /v1/metadata, /v1/manifest and the start-up log; an engine's error
// message loses bearer tokens and key-shaped strings.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { redactEngineMessage } from '../core/errors.js';
import { fakeEngine, type FakeEngine } from './helpers/fake-engine.js';
import { startStack, type Stack } from './helpers/stack.js';

let engine: FakeEngine;
let stack: Stack;
const SECRETS = ['s3cret-pass', 'admin-user', 'tok-9f8e7d6c5b'];

beforeAll(async () => {
  engine = await fakeEngine();
  engine.on('/v1/models', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [{ id: 'm', max_model_len: 4096 }] })));
  const url = engine.url.replace('http://', 'http://admin-user:s3cret-pass@') + '/?token=tok-9f8e7d6c5b';
  stack = await startStack({ NIM_ENGINE_URL: url });
});
afterAll(async () => {
  await stack?.stop();
  await engine?.close();
});

it('NIM_ENGINE_URL credentials and query appear nowhere: /v1/models root, /v1/metadata, /v1/manifest, the log', async () => {
  const models = await (await fetch(`${stack.url}/v1/models`)).text();
  const metadata = await (await fetch(`${stack.url}/v1/metadata`)).text();
  const manifest = await (await fetch(`${stack.url}/v1/manifest`)).text();
  for (const [what, text] of Object.entries({ models, metadata, manifest, log: stack.output() })) {
    for (const secret of SECRETS) expect(text, `${what} shows ${secret}`).not.toContain(secret);
  }
  const port = new URL(engine.url).port;
  expect(JSON.parse(models).data[0].root).toBe(`http://***@127.0.0.1:${port}/?***`);
  expect(stack.output()).toContain(`fronting the engine at http://***@127.0.0.1:${port}/?***`);
});

it('engine error messages lose bearer tokens and key-shaped strings', () => {
  const m = redactEngineMessage(
    'auth failed: Authorization: Bearer abc.def-ghi123 key sk-proj-AbCdEf0123456789 nvapi-XyZ0123456789abc hf_AbCdEfGhIjKlMnOp api_key=zzz-secret-value',
  );
  for (const s of ['abc.def-ghi123', 'sk-proj-AbCdEf0123456789', 'nvapi-XyZ0123456789abc', 'hf_AbCdEfGhIjKlMnOp', 'zzz-secret-value']) expect(m).not.toContain(s);
  expect(m).toMatch(/^auth failed: Authorization: Bearer <redacted> key <redacted>/);
});
