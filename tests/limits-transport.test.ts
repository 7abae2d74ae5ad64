// Transport limits over raw sockets: slow-loris headers and bodies are cut off, oversize bodies are
// refused while they are still being sent, header count and size are capped, POST bodies must be
// JSON of sane depth. Every refusal is the JSON envelope. Loopback only; no timing assertions.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonDepthExceeds } from '../gateway/body.js';
import { listen, type RunningServer } from '../gateway/server.js';
import { json, type ErrorEnvelope } from './helpers/json.js';
import { isEnvelope, rig, sampleBody, type Rig } from './helpers/secure-app.js';

let r: Rig;
let server: RunningServer;
const LIMIT = 4096;

beforeAll(async () => {
  r = await rig();
  const { app } = r.make({ settings: { maxRequestBytes: LIMIT, maxHeaders: 50 } });
  server = await listen(app, {
    port: 0,
    host: '127.0.0.1',
    limits: { headersTimeoutMs: 300, requestTimeoutMs: 600, maxHeaderBytes: 8192, maxHeaders: 50 },
  });
});
afterAll(async () => {
  await server.close(100);
  await r.close();
});

interface Conn {
  socket: Socket;
  /** Everything received, resolved when the server closes the connection (bounded). */
  closed: Promise<string>;
  received(): string;
}

function open(): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1');
    let data = '';
    const closed = new Promise<string>((res) => {
      socket.on('close', () => res(data));
      socket.on('error', () => {});
    });
    socket.setEncoding('utf8').on('data', (d: string) => (data += d));
    socket.setTimeout(20_000, () => socket.destroy()); // the test's own bound
    socket.once('connect', () => resolve({ socket, closed, received: () => data }));
    socket.once('error', reject);
  });
}

/** A raw HTTP/1.1 answer: status, lower-cased head, and the body when it is JSON (an envelope here). */
function parse(raw: string): { status: number; headers: string; body: ErrorEnvelope | null } {
  const [head = '', ...rest] = raw.split('\r\n\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  let body: ErrorEnvelope | null = null;
  try {
    body = JSON.parse(rest.join('\r\n\r\n')) as ErrorEnvelope | null;
  } catch {
    /* not JSON */
  }
  return { status, headers: head.toLowerCase(), body };
}

const engineCalls = () => r.engine.received.filter((q) => q.url !== '/health').length;

describe('slow clients', () => {
  it('cuts off a client that never finishes its headers (slow-loris) with a 408 envelope', async () => {
    const c = await open();
    c.socket.write('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n');
    const res = parse(await c.closed);
    expect(res.status).toBe(408);
    expect(res.body?.error).toMatchObject({ code: 'request_timeout' });
    expect(res.headers).toContain('connection: close');
  });

  it('cuts off a body that trickles in, without reaching the engine', async () => {
    const before = engineCalls();
    const c = await open();
    const body = JSON.stringify(sampleBody('/v1/chat/completions'));
    c.socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
    c.socket.write(body.slice(0, 10));
    // Keep trickling a byte now and then (never the whole body) until the server gives up.
    let i = 10;
    const timer = setInterval(() => {
      if (i < body.length - 1 && !c.socket.destroyed) c.socket.write(body[i++]!);
    }, 50);
    const raw = await c.closed;
    clearInterval(timer);
    const res = parse(raw);
    expect(res.status).toBe(408);
    expect(isEnvelope(res.body)).toBe(true);
    expect(engineCalls()).toBe(before);
  });
});

describe('oversize bodies', () => {
  it('refuses a declared oversize body at once, without waiting for it', async () => {
    const c = await open();
    c.socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n{"model":`);
    for (let i = 0; i < 200 && !c.received().includes('\r\n\r\n'); i++) await new Promise((res) => setTimeout(res, 10));
    const res = parse(c.received());
    expect(res.status).toBe(413);
    expect(res.body?.error).toMatchObject({ code: 'payload_too_large' });
    c.socket.destroy();
  });

  it('refuses a chunked body once it passes the limit, while the client is still sending', async () => {
    const c = await open();
    c.socket.write('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
    const piece = `{"pad":"${'x'.repeat(1000)}`;
    let sent = 0;
    // Send ~1 KB chunks until the server answers; it must answer after about LIMIT bytes.
    while (!c.received().includes('\r\n\r\n') && !c.socket.destroyed && sent < 1024 * 1024) {
      c.socket.write(`${piece.length.toString(16)}\r\n${piece}\r\n`);
      sent += piece.length;
      await new Promise((res) => setTimeout(res, 5));
    }
    const res = parse(c.received());
    expect(res.status).toBe(413);
    expect(sent).toBeLessThan(LIMIT * 20);
    c.socket.destroy();
  });
});

describe('headers', () => {
  it('431 for too many header lines', async () => {
    const extra = Array.from({ length: 60 }, (_, i) => `X-H${i}: ${i}`).join('\r\n');
    const c = await open();
    c.socket.write(`GET /v1/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n\r\n`);
    for (let i = 0; i < 200 && !c.received().includes('}'); i++) await new Promise((res) => setTimeout(res, 10));
    const res = parse(c.received());
    expect(res.status).toBe(431);
    expect(res.body?.error).toMatchObject({ code: 'headers_too_large' });
    c.socket.destroy();
  });

  it('431 envelope for headers over the size cap', async () => {
    const c = await open();
    c.socket.write(`GET /v1/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`);
    const res = parse(await c.closed);
    expect(res.status).toBe(431);
    expect(res.body?.error).toMatchObject({ code: 'headers_too_large' });
  });

  it('400 envelope for a request Node cannot parse', async () => {
    const c = await open();
    c.socket.write('THIS IS NOT HTTP\r\n\r\n');
    const res = parse(await c.closed);
    expect(res.status).toBe(400);
    expect(isEnvelope(res.body)).toBe(true);
  });

  it('a normal request is unaffected', async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/v1/health/live`);
    expect(res.status).toBe(200);
  });
});

describe('body shape', () => {
  const post = (body: string, type?: string) =>
    r.make({ settings: { maxRequestBytes: 1 << 20 } }).app.request('/v1/chat/completions', {
      method: 'POST',
      headers: type === undefined ? {} : { 'content-type': type },
      body,
    });
  const chat = JSON.stringify(sampleBody('/v1/chat/completions'));

  it('415 unless the body is declared JSON', async () => {
    for (const type of [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx']) {
      const res = await post(chat, type);
      expect(res.status, String(type)).toBe(415);
      expect((await json(res)).error.code).toBe('unsupported_media_type');
    }
    for (const type of ['application/json', 'application/json; charset=utf-8', 'Application/JSON', 'application/vnd.api+json']) {
      expect((await post(chat, type)).status, type).toBe(200);
    }
  });

  it('400 json_too_deep for absurd nesting, before parsing', async () => {
    const deep = `{"model":"test-model","messages":[{"role":"user","content":"hi"}],"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const res = await post(deep, 'application/json');
    expect(res.status).toBe(400);
    expect((await json(res)).error.code).toBe('json_too_deep');
    const fine = JSON.stringify({ ...sampleBody('/v1/chat/completions'), tools: [{ type: 'function', function: { name: 'f', parameters: nest(40) } }] });
    expect((await post(fine, 'application/json')).status).toBe(200);
  });

  it('depth scan skips strings and escapes', () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    expect(jsonDepthExceeds(enc('[[[]]]'), 3)).toBe(false);
    expect(jsonDepthExceeds(enc('[[[[]]]]'), 3)).toBe(true);
    expect(jsonDepthExceeds(enc(`["${'['.repeat(50)}"]`), 3)).toBe(false);
    expect(jsonDepthExceeds(enc(String.raw`["a\"[[[[[", "\\", [[["x"]]]]`), 3)).toBe(true);
    expect(jsonDepthExceeds(enc(String.raw`["a\\\"[[[[[", 1]`), 3)).toBe(false);
    expect(jsonDepthExceeds(enc('["unterminated [[[[[['), 3)).toBe(false);
  });
});

function nest(n: number): Record<string, unknown> {
  let o: Record<string, unknown> = { type: 'string' };
  for (let i = 0; i < n; i++) o = { type: 'object', properties: { a: o } };
  return o;
}
