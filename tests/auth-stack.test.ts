// The real stack (`portico serve` + llama-server) with NIM_SSL_MODE=TLS and NIM_API_KEYS_FILE:
// the OpenAI SDK over HTTPS, deny-by-default on every non-health route, a scoped key refused,
// keys rotated with SIGHUP, and no key in the log (only fingerprints).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_MODEL_NAME } from '../launcher/plan.js';
import { startStack, type Stack } from './helpers/stack.js';
import { until as poll } from './helpers/poll.js';

const OLD = 'sk-stack-old-0123456789abcdef';
const NEW = 'sk-stack-new-0123456789abcdef';
const SCOPED = 'sk-stack-scoped-0123456789ab';
let dir: string;
let stack: Stack;
let base: string;
let dispatcher: Agent;
const f = (n: string) => join(dir, n);

const get = (path: string, key?: string) =>
  undiciFetch(`${base}${path}`, { dispatcher, headers: key ? { authorization: `Bearer ${key}` } : {} });
const post = (path: string, body: unknown, key?: string) =>
  undiciFetch(`${base}${path}`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify(body),
  });
const client = (key: string) =>
  new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0, fetch: undiciFetch as unknown as typeof fetch, fetchOptions: { dispatcher } as Record<string, unknown> });

const until = (cond: () => Promise<boolean>, what: string): Promise<void> => poll(cond, what, { withinMs: 30_000, detail: () => stack.output() });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portico-stack-auth-'));
  const ssl = (...a: string[]) => execFileSync('openssl', a, { stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=test-ca');
  ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost');
  writeFileSync(f('ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '2', '-extfile', f('ext'));
  writeFileSync(f('keys'), `# portico keys\n${OLD}\n${SCOPED} models=some-other-model\n`);
  dispatcher = new Agent({ connect: { ca: readFileSync(f('ca.crt')) } });
  stack = await startStack(
    { NIM_SSL_MODE: 'TLS', NIM_SSL_KEY_PATH: f('server.key'), NIM_SSL_CERTS_PATH: f('server.crt'), NIM_API_KEYS_FILE: f('keys') },
    { waitReady: false },
  );
  base = `https://127.0.0.1:${stack.port}`;
  await until(() => get('/v1/health/ready').then((r) => r.status === 200, () => false), 'the stack to be ready over HTTPS');
});
afterAll(async () => {
  const code = await stack?.stop();
  await dispatcher?.close();
  rmSync(dir, { recursive: true, force: true });
  expect(code).toBe(0);
});

describe('the stack behind TLS with API keys', () => {
  it('denies every non-health route without a key', async () => {
    expect((await get('/v1/health/live')).status).toBe(200);
    for (const p of ['/v1/models', '/v1/metrics', '/metrics', '/v1/metadata', '/v1/manifest', '/docs', '/openapi.json', '/v1/nothing']) {
      const res = await get(p);
      expect(res.status, p).toBe(401);
      expect(res.headers.get('www-authenticate'), p).toMatch(/^Bearer/);
    }
    for (const p of ['/tokenize', '/detokenize', '/v1/chat/completions', '/v1/chat/completions/render']) {
      expect((await post(p, { prompt: 'hi', tokens: [1] })).status, p).toBe(401);
    }
  });

  it('serves the OpenAI SDK with a key; a scoped key is refused the model', async () => {
    const c = client(OLD);
    const out = await c.chat.completions.create({ model: DEMO_MODEL_NAME, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 });
    expect(out.choices[0]?.message).toBeDefined();
    expect((await post('/tokenize', { model: DEMO_MODEL_NAME, prompt: 'hi' }, OLD)).status).toBe(200);
    await expect(
      client(SCOPED).chat.completions.create({ model: DEMO_MODEL_NAME, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 }),
    ).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError);
  });

  it('rotates keys on SIGHUP; only fingerprints are logged', async () => {
    writeFileSync(f('keys'), `${NEW}\n`);
    process.kill(stack.proc.pid!, 'SIGHUP');
    await until(() => get('/v1/models', NEW).then((r) => r.status === 200), 'the new key to be accepted');
    expect((await get('/v1/models', OLD)).status).toBe(401);
    const log = stack.output();
    expect(log).toContain(createHash('sha256').update(NEW).digest('hex').slice(0, 8));
    for (const k of [OLD, NEW, SCOPED]) expect(log).not.toContain(k);
  });
});
