// Admission control and per-key rate limits through the real server (streams held open on a
// socket), plus the idle-stream timeout. Loopback only; waits are bounded, nothing asserts timing.
import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Admission } from '../gateway/admission.js';
import { KeyStore } from '../gateway/auth.js';
import { errorCounts } from '../core/errors.js';
import { RateLimiter } from '../gateway/rate-limit.js';
import { listen, type RunningServer } from '../gateway/server.js';
import { chunk } from './helpers/fake-engine.js';
import { json } from './helpers/json.js';
import { isEnvelope, rig, sampleBody, type Rig } from './helpers/secure-app.js';
import { until as poll } from './helpers/poll.js';

let r: Rig;
let server: RunningServer | undefined;
beforeEach(async () => {
  r = await rig();
});
afterEach(async () => {
  await server?.close(100);
  server = undefined;
  await r.close();
});

const KEY = 'sk-limits-test-key';
const auth = { authorization: `Bearer ${KEY}` };
const streamBody = JSON.stringify({ ...sampleBody('/v1/chat/completions'), stream: true });

const until = (cond: () => boolean, what: string): Promise<void> => poll(cond, what, { withinMs: 4000, everyMs: 10 });

/** The engine holds every stream open after its first chunk until released. */
function slowStreams() {
  const releases: (() => void)[] = [];
  r.engine.on('/v1/chat/completions', (_q, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(chunk('first'));
    releases.push(() => {
      res.write(chunk('last', 'stop'));
      res.end('data: [DONE]\n\n');
    });
  });
  return releases;
}

describe('admission control (NIM_MAX_CONCURRENT_REQUESTS)', () => {
  it('holds N streams; the N+1th gets 429 + Retry-After at once; ended or abandoned streams free their slot', async () => {
    const N = 3;
    const releases = slowStreams();
    const adm = new Admission({ maxConcurrent: N, maxQueue: 0, queueTimeoutMs: 1000 });
    server = await listen(r.make({ admission: adm }).app, { port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${server.port}`;
    const post = (signal?: AbortSignal) =>
      fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: streamBody, signal });

    const aborts = Array.from({ length: N }, () => new AbortController());
    const held = await Promise.all(aborts.map((a) => post(a.signal)));
    const readers = held.map((res) => res.body!.getReader());
    for (const rd of readers) expect(new TextDecoder().decode((await rd.read()).value)).toContain('first');
    expect(adm.inFlight).toBe(N);

    const refused = await post();
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    const body = await json(refused);
    expect(isEnvelope(body)).toBe(true);
    expect(body.error).toMatchObject({ code: 'too_many_requests', type: 'rate_limit_error' });

    // Health, models and tokenize are not inference: never refused by the limit.
    expect((await fetch(`${url}/v1/health/ready`)).status).toBe(200);
    expect((await fetch(`${url}/v1/models`)).status).toBe(200);

    // A stream that ends frees its slot (once: the count never goes below the real holders).
    releases[0]!();
    let rest = '';
    for (;;) {
      const { done, value } = await readers[0]!.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    expect(rest).toContain('[DONE]');
    await until(() => adm.inFlight === N - 1, 'the finished stream to release its slot');

    // A client that goes away frees its slot and the engine request is cancelled.
    aborts[1]!.abort();
    await until(() => adm.inFlight === N - 2, 'the aborted stream to release its slot');
    await until(() => r.engine.closedEarly >= 1, 'the engine request to be cancelled');

    // Room again: a new stream is admitted.
    const again = await post();
    expect(again.status).toBe(200);
    await again.body!.cancel();
    aborts[2]!.abort();
    await until(() => adm.inFlight === 0, 'every slot to be released');
  });

  it('with NIM_MAX_QUEUE, waits in line and is served when a slot frees; over the queue, 429', async () => {
    const releases = slowStreams();
    const adm = new Admission({ maxConcurrent: 1, maxQueue: 1, queueTimeoutMs: 30_000 });
    server = await listen(r.make({ admission: adm }).app, { port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${server.port}`;
    const post = () => fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: streamBody });
    const first = await post();
    const rd = first.body!.getReader();
    await rd.read();
    const queued = post();
    await until(() => adm.queued === 1, 'the second request to queue');
    const overflow = await post();
    expect(overflow.status).toBe(429);
    releases[0]!();
    while (!(await rd.read()).done);
    const second = await queued;
    expect(second.status).toBe(200);
    await until(() => releases.length === 2, 'the queued request to reach the engine');
    releases[1]!();
    expect(await second.text()).toContain('[DONE]');
    await until(() => adm.inFlight === 0, 'slots to be released');
  });

  it('a slot is taken once the body is complete and valid: sockets stalled mid-body hold none', async () => {
    r.engine.on('/v1/chat/completions', (_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }));
    });
    const adm = new Admission({ maxConcurrent: 2, maxQueue: 0, queueTimeoutMs: 1000 });
    server = await listen(r.make({ admission: adm }).app, { port: 0, host: '127.0.0.1' });
    let seen = 0;
    server.server.on('request', () => seen++);
    // Two clients send their headers and `{`, then stall (the slow-loris of the issue).
    const stalled = Array.from({ length: 2 }, () => {
      const sock = connect(server!.port, '127.0.0.1');
      sock.on('error', () => undefined);
      sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{`);
      return sock;
    });
    try {
      await until(() => seen === 2, 'the stalled requests to reach the server');
      const res = await fetch(`http://127.0.0.1:${server.port}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(sampleBody('/v1/chat/completions')),
      });
      expect(res.status, JSON.stringify(await res.clone().json())).toBe(200);
      expect(((await res.json()) as { choices: unknown[] }).choices).toHaveLength(1);
      expect(adm.inFlight).toBe(0);
      // An invalid body never takes a slot either.
      const bad = await fetch(`http://127.0.0.1:${server.port}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": 1}' });
      expect(bad.status).toBe(400);
      expect(adm.inFlight).toBe(0);
    } finally {
      for (const sock of stalled) sock.destroy();
    }
  });

  it('ends a stream the engine stops feeding (NIM_STREAM_IDLE_TIMEOUT_MS) with an error event, and frees the slot', async () => {
    slowStreams(); // never released: the engine goes silent after one chunk
    const adm = new Admission({ maxConcurrent: 4, maxQueue: 0, queueTimeoutMs: 1000 });
    server = await listen(r.make({ admission: adm, settings: { maxRequestBytes: 65536, streamIdleTimeoutMs: 150 } }).app, { port: 0, host: '127.0.0.1' });
    const before = errorCounts()['stream:engine_timeout'] ?? 0;
    const res = await fetch(`http://127.0.0.1:${server.port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: streamBody,
    });
    const events = (await res.text()).split('\n\n').filter(Boolean);
    expect(events[0]).toContain('first');
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(JSON.parse(events.at(-2)!.slice('data: '.length)).error).toMatchObject({ code: 'engine_timeout' });
    await until(() => r.engine.closedEarly === 1, 'the engine request to be cancelled');
    await until(() => adm.inFlight === 0, 'the slot to be released');
    expect(errorCounts()['stream:engine_timeout']).toBe(before + 1);
  });
});

describe('a client that goes away', () => {
  it('during a non-streamed generation: the engine request is cancelled and the slot freed', async () => {
    r.engine.on('/v1/chat/completions', () => {
      /* never answers: only the client's disconnect can end this */
    });
    const adm = new Admission({ maxConcurrent: 4, maxQueue: 0, queueTimeoutMs: 1000 });
    server = await listen(r.make({ admission: adm }).app, { port: 0, host: '127.0.0.1' });
    const ac = new AbortController();
    const pending = fetch(`http://127.0.0.1:${server.port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(sampleBody('/v1/chat/completions')),
      signal: ac.signal,
    }).catch(() => 'aborted');
    await until(() => r.engine.received.some((q) => q.url === '/v1/chat/completions'), 'the request to reach the engine');
    expect(adm.inFlight).toBe(1);
    ac.abort();
    expect(await pending).toBe('aborted');
    await until(() => r.engine.closedEarly === 1, 'the engine request to be cancelled');
    await until(() => adm.inFlight === 0, 'the slot to be released');
  });
});

describe('a client that stops reading', () => {
  it('is disconnected after NIM_STREAM_IDLE_TIMEOUT_MS and its engine request cancelled', async () => {
    let engineWrites = 0;
    r.engine.on('/v1/chat/completions', (_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const big = chunk('x'.repeat(64 * 1024));
      const pump = () => {
        // Stream as fast as the gateway takes it, until it lets go (bounded).
        while (!res.destroyed && engineWrites < 2000 && res.write(big)) engineWrites++;
        if (!res.destroyed && engineWrites < 2000) res.once('drain', pump);
      };
      pump();
    });
    const adm = new Admission({ maxConcurrent: 4, maxQueue: 0, queueTimeoutMs: 1000 });
    server = await listen(r.make({ admission: adm, settings: { maxRequestBytes: 65536, streamIdleTimeoutMs: 200 } }).app, { port: 0, host: '127.0.0.1' });
    const socket = connect(server.port, '127.0.0.1');
    const closed = new Promise<void>((res) => socket.on('close', () => res()));
    socket.on('error', () => {});
    socket.setTimeout(20_000, () => socket.destroy());
    await new Promise<void>((res) => socket.once('connect', () => res()));
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(streamBody)}\r\n\r\n${streamBody}`);
    socket.pause(); // never read: buffers fill, the gateway stops pulling from the engine
    await until(() => r.engine.closedEarly === 1, 'the engine request to be cancelled');
    await until(() => adm.inFlight === 0, 'the slot to be released');
    socket.resume(); // drain what was buffered; the server has closed its side
    await closed;
    expect(engineWrites).toBeLessThan(2000);
  });
});

describe('per-key rate limits', () => {
  it('requests/min: 429 + Retry-After + x-ratelimit-*, refilled with time; health never throttled', async () => {
    let now = 0;
    const limiter = new RateLimiter(() => now);
    const keys = new KeyStore({ keys: [KEY], defaults: { rpm: 2 } });
    const { app } = r.make({ keys, rateLimiter: limiter });
    const models = () => app.request('/v1/models', { headers: auth });
    const a = await models();
    expect(a.status).toBe(200);
    expect(a.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect(a.headers.get('x-ratelimit-remaining-requests')).toBe('1');
    expect((await models()).headers.get('x-ratelimit-remaining-requests')).toBe('0');
    const refused = await models();
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('30');
    expect(refused.headers.get('x-ratelimit-reset-requests')).toBe('1m0s');
    expect((await json(refused)).error).toMatchObject({ code: 'rate_limit_exceeded', type: 'rate_limit_error' });
    for (let i = 0; i < 20; i++) {
      expect((await app.request('/v1/health/live', { headers: auth })).status).toBe(200);
      expect((await app.request('/v1/health/ready', { headers: auth })).status).toBe(200);
    }
    now += 30_000; // half a minute refills one request
    expect((await models()).status).toBe(200);
    expect((await models()).status).toBe(429);
  });

  it('tokens/min: charged up front from max_tokens, settled to the usage of JSON and SSE answers', async () => {
    let now = 0;
    const limiter = new RateLimiter(() => now);
    const keys = new KeyStore({ keys: [KEY], defaults: { tpm: 1000 } });
    const { app } = r.make({ keys, rateLimiter: limiter });
    const chat = (extra: Record<string, unknown>) =>
      app.request('/v1/chat/completions', {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ ...sampleBody('/v1/chat/completions'), ...extra }),
      });
    const ok = await chat({ max_tokens: 500 });
    expect(ok.status).toBe(200);
    // The fake engine reports usage.total_tokens = 6: the 500+ charged up front is settled to 6.
    expect(ok.headers.get('x-ratelimit-remaining-tokens')).toBe('994');
    const sse = await chat({ max_tokens: 500, stream: true });
    expect(await sse.text()).toContain('[DONE]');
    const after = await app.request('/v1/models', { headers: auth });
    expect(after.headers.get('x-ratelimit-remaining-tokens')).toBe('987'); // SSE usage chunk: 7
    // More than the bucket holds: needs a full bucket.
    const big = await chat({ max_tokens: 5000 });
    expect(big.status).toBe(429);
    expect(Number(big.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await json(big)).error.message).toMatch(/1000 tokens per minute/);
    // A refused or failed request costs nothing.
    const bad = await chat({ temperature: 99 });
    expect(bad.status).toBe(400);
    now += 60_000;
    expect((await chat({ max_tokens: 5000 })).status).toBe(200);
  });
});
