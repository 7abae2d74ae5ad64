// The real Debian nginx, rendered from nginx/nginx.conf.template exactly as the container renders it,
// in front of (1) the real stack (launcher + gateway + llama-server) and (2) an in-process gateway
// over a scripted engine, where the test decides when the engine finishes a stream.
// All traffic is on 127.0.0.1.
import { execa } from 'execa';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../gateway/app.js';
import { listen, type RunningServer } from '../gateway/server.js';
import { Upstream } from '../gateway/upstream.js';
import { freePort, startNginx, type RunningNginx } from '../nginx/testing.js';
import { chunk, fakeEngine, type FakeEngine } from './helpers/fake-engine.js';
import { startStack, type Stack } from './helpers/stack.js';
import { readRest } from './helpers/json.js';
import { until } from './helpers/poll.js';

const LIMIT = 64 * 1024;

async function json(res: Response): Promise<{ error?: Record<string, unknown> } & Record<string, unknown>> {
  return (await res.json()) as { error?: Record<string, unknown> } & Record<string, unknown>;
}

const waitFor = (check: () => Promise<boolean>, what: string, tries = 600): Promise<void> => until(check, what, { withinMs: tries * 100 });

describe('nginx in front of the real stack', () => {
  let nginx: RunningNginx;
  let stack: Stack | undefined;
  let gatewayPort: number;

  beforeAll(async () => {
    gatewayPort = await freePort();
    nginx = await startNginx({ NIM_GATEWAY_PORT: String(gatewayPort), NIM_MAX_REQUEST_BYTES: String(LIMIT) });
  });
  afterAll(async () => {
    await stack?.stop();
    await nginx?.stop();
  });

  it('answers liveness itself before the gateway is up, and readiness with a 503 envelope', async () => {
    const live = await fetch(`${nginx.url}/v1/health/live`);
    expect(live.status).toBe(200);
    expect(await json(live)).toEqual({ object: 'health.response', message: 'Service is live.' });
    const ready = await fetch(`${nginx.url}/v1/health/ready`);
    expect(ready.status).toBe(503);
    expect(ready.headers.get('content-type')).toContain('application/json');
    expect((await json(ready)).error).toMatchObject({ type: 'server_error', code: 'engine_unavailable', param: null });
  });

  it('refuses a body over NIM_MAX_REQUEST_BYTES with 413 itself (the gateway is not even running)', async () => {
    const big = JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'a'.repeat(LIMIT + 1) }] });
    const res = await fetch(`${nginx.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'too-big-1' },
      body: big,
    });
    expect(res.status).toBe(413);
    expect(res.headers.get('x-request-id')).toBe('too-big-1');
    const body = await json(res);
    expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'payload_too_large', param: null });
    expect(String(body.error?.message)).toContain(String(LIMIT));
  });

  it('proxies readiness, models, chat and request ids once the stack is up', async () => {
    stack = await startStack({ NIM_SERVER_PORT: String(gatewayPort), NIM_MAX_REQUEST_BYTES: String(LIMIT) }, { waitReady: false });
    const s = stack;
    await waitFor(
      () => fetch(`${nginx.url}/v1/health/ready`).then((r) => r.status === 200, () => false),
      `readiness through nginx; stack output:\n${s.output()}`,
    );
    const ready = await fetch(`${nginx.url}/v1/health/ready`);
    expect(await json(ready)).toMatchObject({ message: 'Service is ready.' });

    const models = await json(await fetch(`${nginx.url}/v1/models`));
    const model = (models.data as { id: string }[])[0]!.id;

    const res = await fetch(`${nginx.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'through-nginx-7' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 }),
    });
    expect(res.status).toBe(200);
    // The client's id reached the gateway (which echoes it) through nginx.
    expect(res.headers.get('x-request-id')).toBe('through-nginx-7');
    expect((await json(res)).object).toBe('chat.completion');

    // Without one, nginx makes an id and the gateway echoes that.
    const r2 = await fetch(`${nginx.url}/v1/models`);
    expect(r2.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);

    // A gateway error passes through untouched (not replaced by nginx's pages).
    const r3 = await fetch(`${nginx.url}/v1/no-such-route`);
    expect(r3.status).toBe(404);
    expect((await json(r3)).error).toMatchObject({ code: 'route_not_found' });
  });

  it('streams SSE from the real engine through nginx, with X-Accel-Buffering for outer proxies', async () => {
    const models = await json(await fetch(`${nginx.url}/v1/models`));
    const model = (models.data as { id: string }[])[0]!.id;
    const res = await fetch(`${nginx.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8, stream: true }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    expect(res.headers.get('x-accel-buffering')).toBe('no');
    const text = await res.text();
    const events = text.split('\n\n').filter((e) => e.trim());
    expect(events.length).toBeGreaterThan(1);
    expect(events.at(-1)).toBe('data: [DONE]');
  });

  it('refuses an oversized body with 413 in front of the running stack too', async () => {
    const res = await fetch(`${nginx.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: 'x'.repeat(LIMIT + 1),
    });
    expect(res.status).toBe(413);
    expect((await json(res)).error).toMatchObject({ code: 'payload_too_large' });
  });

  it('keeps answering liveness once the gateway is stopped; readiness becomes 503', async () => {
    await stack!.stop();
    stack = undefined;
    const live = await fetch(`${nginx.url}/v1/health/live`);
    expect(live.status).toBe(200);
    const ready = await fetch(`${nginx.url}/v1/health/ready`);
    expect(ready.status).toBe(503);
    expect(ready.headers.get('retry-after')).toBe('5');
    expect((await json(ready)).error).toMatchObject({ code: 'engine_unavailable' });
  });
});

describe('nginx in front of a gateway over a scripted engine', () => {
  let engine: FakeEngine;
  let upstream: Upstream;
  let server: RunningServer;
  let nginx: RunningNginx;
  const chat = { model: 'test-model', messages: [{ role: 'user', content: 'hi' }], stream: true };

  beforeAll(async () => {
    engine = await fakeEngine();
    upstream = new Upstream(engine.url);
    const { app } = createApp({
      settings: { maxRequestBytes: LIMIT },
      model: { id: 'test-model', root: '/models/test', maxModelLen: 4096 },
      upstream,
      engine: { dialect: 'openai' },
      readiness: { isReady: () => true, reason: () => '' },
    });
    server = await listen(app, { port: 0, host: '127.0.0.1' });
    nginx = await startNginx({ NIM_GATEWAY_PORT: String(server.port), NIM_MAX_REQUEST_BYTES: String(LIMIT) });
  });
  afterAll(async () => {
    await nginx?.stop();
    await server?.close(1000);
    await upstream?.close();
    await engine?.close();
  });

  it("delivers an SSE stream's first chunk before the engine finishes (unbuffered)", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    engine.on('/v1/chat/completions', async (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk('a'));
      await gate; // the engine holds the rest until the client has read the first chunk through nginx
      res.write(chunk('b', 'stop'));
      res.end('data: [DONE]\n\n');
    });
    const res = await fetch(`${nginx.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chat),
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain('"content":"a"');
    expect(first).not.toContain('"content":"b"');
    release();
    const rest = await readRest(reader);
    expect(rest).toContain('"content":"b"');
    expect(rest.trim().endsWith('data: [DONE]')).toBe(true);
  });

  it('streams the first chunk even when the upstream sends no X-Accel-Buffering, and adds it for outer proxies', async () => {
    // nginx straight in front of the scripted engine, which sends no X-Accel-Buffering header.
    const direct = await startNginx({ NIM_NGINX_UPSTREAM: new URL(engine.url).host, NIM_GATEWAY_PORT: String(await freePort()) });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    engine.on('/v1/chat/completions', async (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk('a'));
      await gate;
      res.end('data: [DONE]\n\n');
    });
    try {
      const res = await fetch(`${direct.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(chat) });
      expect(res.headers.get('x-accel-buffering')).toBe('no'); // added by nginx for outer proxies
      const reader = res.body!.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toContain('"content":"a"');
      release();
      while (!(await reader.read()).done);
    } finally {
      release();
      await direct.stop();
    }
  });

  it('passes a client disconnect on to the engine (nginx closes the upstream request)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const before = engine.closedEarly;
    engine.on('/v1/chat/completions', async (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk('a'));
      await gate;
      if (!res.destroyed) res.end('data: [DONE]\n\n');
    });
    const ac = new AbortController();
    const res = await fetch(`${nginx.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chat),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    try {
      await waitFor(async () => engine.closedEarly > before, 'the engine to see the client go away', 100);
    } finally {
      release();
    }
    expect(engine.closedEarly).toBeGreaterThan(before);
  });
});

describe('nginx with TLS (NIM_SSL_MODE=TLS)', () => {
  let dir: string;
  let nginx: RunningNginx;
  let ca: Buffer;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portico-tls-'));
    // A throwaway self-signed certificate for 127.0.0.1 (openssl, Debian package openssl).
    await execa('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ]);
    ca = await readFile(join(dir, 'cert.pem'));
    nginx = await startNginx(
      {
        NIM_GATEWAY_PORT: String(await freePort()),
        NIM_SSL_MODE: 'TLS',
        NIM_SSL_KEY_PATH: join(dir, 'key.pem'),
        NIM_SSL_CERTS_PATH: join(dir, 'cert.pem'),
      },
      { scheme: 'https' },
    );
  });
  afterAll(async () => {
    await nginx?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('terminates TLS and answers liveness over HTTPS', async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpsRequest(`${nginx.url}/v1/health/live`, { ca }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ message: 'Service is live.' });
  });
});
