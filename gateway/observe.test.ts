// Per-request observation through the real app and node-server, against a scripted engine:
// counters move by exactly the requests made, tokens come from usage (the final usage chunk of a
// stream), every response carries x-portico-overhead-ms and x-request-id, one access log line each.
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chunk, completion, fakeEngine, type FakeEngine } from '../tests/helpers/fake-engine.js';
import { createApp, type AppDeps } from './app.js';
import { Metrics } from './metrics.js';
import { OVERHEAD_HEADER, upstreamKind } from './observe.js';
import { listen, type RunningServer } from './server.js';
import { Upstream } from './upstream.js';
import { PorticoError } from '../core/errors.js';

const MODEL = { id: 'test-model', root: '/models/test', maxModelLen: 4096 };
const chat = { model: 'test-model', messages: [{ role: 'user', content: 'hi' }] };

let engine: FakeEngine;
let upstream: Upstream;
let server: RunningServer | undefined;
let metrics: Metrics;
let logLines: Record<string, unknown>[];

async function start(over: Partial<AppDeps> = {}): Promise<string> {
  const out = new PassThrough();
  out.setEncoding('utf8');
  let buf = '';
  out.on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      logLines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
      buf = buf.slice(i + 1);
    }
  });
  const log = pino({ level: 'info', base: undefined }, out);
  const { app } = createApp({
    settings: { maxRequestBytes: 1 << 20 },
    model: MODEL,
    upstream,
    engine: { dialect: 'openai' },
    readiness: { isReady: () => true, reason: () => '' },
    metrics,
    log,
    ...over,
  });
  server = await listen(app, { port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${server.port}`;
}

const post = (url: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

/** Value of one series in the exposition (0 when absent). */
async function series(line: string): Promise<number> {
  const text = await metrics.render({ model: MODEL.id, ready: true });
  const hit = text.split('\n').find((l) => l.startsWith(`${line} `));
  return hit ? Number(hit.slice(line.length + 1)) : 0;
}

/** Wait (bounded) until the gateway has settled every request (streams end after the body). */
async function settled(): Promise<void> {
  for (let i = 0; i < 200 && metrics.inflight > 0; i++) await new Promise((r) => setTimeout(r, 10));
  expect(metrics.inflight).toBe(0);
}

beforeEach(async () => {
  engine = await fakeEngine();
  upstream = new Upstream(engine.url);
  metrics = new Metrics();
  logLines = [];
});
afterEach(async () => {
  await server?.close(0);
  server = undefined;
  await upstream.close();
  await engine.close();
});

const REQ = 'portico_http_requests_total{route="/v1/chat/completions",method="POST",status="200"}';

describe('request metrics', () => {
  it('move by exactly the requests made, with tokens from each usage', async () => {
    engine.on('/v1/chat/completions', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion())));
    const url = await start();
    for (let i = 0; i < 3; i++) expect((await post(url, '/v1/chat/completions', chat)).status).toBe(200);
    await settled();
    expect(await series(REQ)).toBe(3);
    expect(await series('prompt_tokens_total{model_name="test-model"}')).toBe(15);
    expect(await series('generation_tokens_total{model_name="test-model"}')).toBe(3);
    expect(await series('request_success_total{model_name="test-model"}')).toBe(3);
    expect(await series('request_failure_total{model_name="test-model"}')).toBe(0);
    expect(await series('e2e_request_latency_seconds_count{model_name="test-model"}')).toBe(3);
    expect(await series('portico_http_request_duration_seconds_count{route="/v1/chat/completions",method="POST"}')).toBe(3);
    expect(await series('portico_gateway_overhead_seconds_count{route="/v1/chat/completions"}')).toBe(3);
    expect(await series('portico_http_request_bytes_total{route="/v1/chat/completions"}')).toBe(3 * JSON.stringify(chat).length);
    expect(await series('portico_http_response_bytes_total{route="/v1/chat/completions"}')).toBe(3 * JSON.stringify(completion()).length);
    expect(await series('portico_http_requests_in_flight')).toBe(0);
    // Other routes are counted under their own label, unknown paths under one label.
    await fetch(`${url}/v1/models`);
    await fetch(`${url}/nope/${Math.random()}`);
    expect(await series('portico_http_requests_total{route="/v1/models",method="GET",status="200"}')).toBe(1);
    expect(await series('portico_http_requests_total{route="unmatched",method="GET",status="404"}')).toBe(1);
  });

  it('counts stream tokens from the final usage chunk, even split across TCP writes', async () => {
    const usage = `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 36, completion_tokens: 41, total_tokens: 77 } })}\n\n`;
    engine.on('/v1/chat/completions', async (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk('Hel'));
      res.write(chunk('lo', 'stop'));
      // The usage event arrives in two TCP chunks.
      res.write(usage.slice(0, 40));
      await new Promise((r) => setTimeout(r, 30));
      res.write(usage.slice(40));
      res.end('data: [DONE]\n\n');
    });
    const url = await start();
    const res = await post(url, '/v1/chat/completions', { ...chat, stream: true, stream_options: { include_usage: true } });
    expect(res.headers.get(OVERHEAD_HEADER)).toMatch(/^\d+\.\d{3}$/);
    const text = await res.text();
    expect(text).toContain('"prompt_tokens":36');
    await settled();
    expect(await series('prompt_tokens_total{model_name="test-model"}')).toBe(36);
    expect(await series('generation_tokens_total{model_name="test-model"}')).toBe(41);
    expect(await series('time_to_first_token_seconds_count{model_name="test-model"}')).toBe(1);
    expect(await series('time_per_output_token_seconds_count{model_name="test-model"}')).toBe(1);
    expect(await series('portico_http_time_to_first_byte_seconds_count{route="/v1/chat/completions"}')).toBe(1);
    expect(await series('portico_http_response_bytes_total{route="/v1/chat/completions"}')).toBe(Buffer.byteLength(text));
    expect(await series(REQ)).toBe(1);
    const access = logLines.filter((l) => l.path === '/v1/chat/completions');
    expect(access).toHaveLength(1);
    expect(access[0]).toMatchObject({ status: 200, prompt_tokens: 36, completion_tokens: 41, stream: 'ok', component: 'gateway' });
  });

  it('a stream without usage counts no tokens; an abandoned stream is a failure and leaves nothing in flight', async () => {
    engine.on('/v1/chat/completions', (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`${chunk('a', 'stop')}data: [DONE]\n\n`);
    });
    const url = await start();
    await (await post(url, '/v1/chat/completions', { ...chat, stream: true })).text();
    await settled();
    expect(await series('prompt_tokens_total{model_name="test-model"}')).toBe(0);
    expect(await series('request_success_total{model_name="test-model"}')).toBe(1);

    engine.on('/v1/chat/completions', (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk('a'));
      // Never ends: only the client going away ends it.
    });
    // One client aborts its request; another's connection is cut by the server going away.
    const ac = new AbortController();
    const aborted = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...chat, stream: true }), signal: ac.signal });
    const reader = aborted.body!.getReader();
    await reader.read();
    ac.abort();
    await reader.cancel().catch(() => {});
    const cut = await post(url, '/v1/chat/completions', { ...chat, stream: true });
    expect(cut.status).toBe(200);
    server!.server.closeAllConnections();
    await settled();
    expect(await series('request_failure_total{model_name="test-model"}')).toBe(2);
    const streams = logLines.filter((l) => l.path === '/v1/chat/completions').map((l) => l.stream);
    expect(streams.sort()).toEqual(['aborted', 'aborted', 'ok']);
  });

  it('counts upstream errors by kind and failures by model', async () => {
    engine.on('/v1/chat/completions', (_q, res) => void res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"message":"boom"}}'));
    engine.on('/v1/completions', (_q, res) => void res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"too long"}}'));
    const url = await start();
    expect((await post(url, '/v1/chat/completions', chat)).status).toBe(502);
    expect((await post(url, '/v1/completions', { model: 'test-model', prompt: 'x' })).status).toBe(400);
    await engine.close();
    expect((await post(url, '/v1/chat/completions', chat)).status).toBe(503);
    await settled();
    expect(await series('portico_upstream_errors_total{kind="http_5xx"}')).toBe(1);
    expect(await series('portico_upstream_errors_total{kind="http_4xx"}')).toBe(1);
    expect(await series('portico_upstream_errors_total{kind="unavailable"}')).toBe(1);
    expect(await series('request_failure_total{model_name="test-model"}')).toBe(3);
    const failed = logLines.find((l) => l.status === 502);
    expect(failed).toMatchObject({ level: 40, error: 'engine_error', error_message: 'The inference engine failed: boom' });
  });

  it('classifies engine failures', () => {
    expect(upstreamKind(new PorticoError('engine_unavailable', 'x', { cause: new Error('ECONNREFUSED') }))).toBe('unavailable');
    expect(upstreamKind(new PorticoError('engine_timeout', 'x'))).toBe('timeout');
    expect(upstreamKind(new PorticoError('engine_error', 'boom'))).toBe('http_5xx');
    expect(upstreamKind(new PorticoError('engine_error', 'x', { cause: new Error('socket') }))).toBe('transport');
    expect(upstreamKind(new PorticoError('not_implemented', 'x'))).toBe('http_5xx');
    expect(upstreamKind(new PorticoError('invalid_request', 'x', { status: 400 }))).toBe('http_4xx');
    expect(upstreamKind(new Error('x'))).toBe('transport');
  });

  it('counts auth failures by code', async () => {
    const url = await start({ settings: { maxRequestBytes: 1 << 20, apiKeys: ['k1'] } });
    expect((await fetch(`${url}/v1/models`)).status).toBe(401);
    expect((await fetch(`${url}/v1/models`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    expect((await fetch(`${url}/v1/models`, { headers: { authorization: 'Bearer k1' } })).status).toBe(200);
    await settled();
    expect(await series('portico_auth_failures_total{code="missing_api_key"}')).toBe(1);
    expect(await series('portico_auth_failures_total{code="invalid_api_key"}')).toBe(1);
  });
});

describe('headers and logs', () => {
  it('an unexpected failure is logged once with its stack and the request id; the client sees no detail', async () => {
    const url = await start({ media: { normalize: () => Promise.reject(new Error('kaboom in media')) } });
    const res = await post(url, '/v1/chat/completions', chat, { 'x-request-id': 'boom-1' });
    expect(res.status).toBe(500);
    expect(JSON.stringify(await res.json())).not.toContain('kaboom');
    await settled();
    const errors = logLines.filter((l) => l.level === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ request_id: 'boom-1', component: 'gateway' });
    expect((errors[0]!.err as { stack: string }).stack).toContain('kaboom in media');
    expect(logLines.find((l) => l.status === 500)).toMatchObject({ request_id: 'boom-1', level: 40, error: 'internal_error' });
  });

  it('every response carries x-portico-overhead-ms and x-request-id (incoming one honoured and forwarded)', async () => {
    engine.on('/v1/chat/completions', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion())));
    const url = await start();
    const responses = [
      await post(url, '/v1/chat/completions', chat, { 'x-request-id': 'req-abc.123' }),
      await post(url, '/v1/chat/completions', { model: 'nope', messages: [] }),
      await fetch(`${url}/v1/health/live`),
      await fetch(`${url}/v1/metrics`),
      await fetch(`${url}/missing`),
      await fetch(`${url}/v1/models`, { method: 'POST' }),
    ];
    for (const r of responses) {
      expect(r.headers.get(OVERHEAD_HEADER), r.url).toMatch(/^\d+\.\d{3}$/);
      expect(r.headers.get('x-request-id')).toBeTruthy();
      await r.arrayBuffer();
    }
    expect(responses[0]!.headers.get('x-request-id')).toBe('req-abc.123');
    expect(engine.received.find((q) => q.url === '/v1/chat/completions')?.headers['x-request-id']).toBe('req-abc.123');
    await settled();
    // One access line per request, each with its request id, status, duration, overhead.
    const access = logLines.filter((l) => l.component === 'gateway' && typeof l.status === 'number');
    expect(access).toHaveLength(responses.length);
    expect(access.map((l) => l.request_id)).toEqual(responses.map((r) => r.headers.get('x-request-id')));
    const first = access[0]!;
    expect(first).toMatchObject({ request_id: 'req-abc.123', method: 'POST', path: '/v1/chat/completions', status: 200, prompt_tokens: 5, completion_tokens: 1 });
    expect(typeof first.duration_ms).toBe('number');
    expect(first.overhead_ms as number).toBeLessThanOrEqual(first.duration_ms as number);
    expect(Number(responses[0]!.headers.get(OVERHEAD_HEADER))).toBeCloseTo(first.overhead_ms as number, 2);
  });
});
