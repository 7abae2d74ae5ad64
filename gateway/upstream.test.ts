// The engine connection pool must drop idle connections before the engine does: llama-server
// (cpp-httplib) and vLLM (uvicorn) close an idle keep-alive connection after 5 s without a
// Keep-Alive hint, and a request sent on a socket the engine is closing fails.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINE_IDLE_KEEPALIVE_MS, Upstream } from './upstream.js';

let server: http.Server;
let upstream: Upstream;
const sockets: Socket[] = [];

beforeAll(async () => {
  server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  // Like the engines: idle connections are closed after 5 s, and nothing tells the client so.
  server.keepAliveTimeout = 5_000;
  server.on('connection', (s) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  upstream = new Upstream(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
afterAll(async () => {
  await upstream.close();
  await new Promise<void>((r) => server.close(() => r()));
});

const call = async () => {
  const res = await upstream.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: '{}' });
  await res.body.text();
  return res.statusCode;
};

describe('engine connection pool', () => {
  it('keeps an idle connection for well under the engines’ 5 s idle timeout', () => {
    expect(ENGINE_IDLE_KEEPALIVE_MS).toBeLessThanOrEqual(2_000);
  });

  it('closes an idle connection itself before the engine would, so the next request opens a fresh one', async () => {
    expect(await call()).toBe(200);
    expect(sockets).toHaveLength(1);
    // Past the pool's idle time (plus undici's ~1 s timer tick) but before the engine's 5 s.
    await new Promise((r) => setTimeout(r, ENGINE_IDLE_KEEPALIVE_MS + 1_500));
    expect(sockets[0]!.destroyed || sockets[0]!.readableEnded).toBe(true);
    expect(await call()).toBe(200);
    expect(sockets).toHaveLength(2);
  }, 15_000);
});

describe('a connection the engine drops before answering', () => {
  const dropping = async (drops: number) => {
    let seen = 0;
    const s = http.createServer((req, res) => {
      seen++;
      // Read the whole request, then close without a byte of answer, as llama-server was seen to.
      req.resume();
      req.on('end', () => (seen <= drops ? req.socket.destroy() : res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')));
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const retried: unknown[] = [];
    const u = new Upstream(`http://127.0.0.1:${(s.address() as AddressInfo).port}`, { onRetry: (e) => retried.push(e) });
    const close = async () => {
      await u.close();
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    };
    return { u, seen: () => seen, retried, close };
  };
  const send = (u: Upstream) => u.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });

  it('is sent once more, and the answer of the second attempt is returned', async () => {
    const d = await dropping(1);
    try {
      const res = await send(d.u);
      expect([res.statusCode, await res.body.text()]).toEqual([200, '{"ok":true}']);
      expect([d.seen(), d.u.retries, d.retried.length]).toEqual([2, 1, 1]);
    } finally {
      await d.close();
    }
  });

  it('twice: 503 engine_unavailable after exactly two attempts', async () => {
    const d = await dropping(2);
    try {
      await expect(send(d.u)).rejects.toMatchObject({ code: 'engine_unavailable' });
      expect([d.seen(), d.u.retries]).toEqual([2, 1]);
    } finally {
      await d.close();
    }
  });

  it('a refused connection (engine down) is not retried', async () => {
    const d = await dropping(0);
    const port = Number(new URL(d.u.origin).port);
    await d.close();
    const u = new Upstream(`http://127.0.0.1:${port}`);
    try {
      await expect(send(u)).rejects.toMatchObject({ code: 'engine_unavailable' });
      expect(u.retries).toBe(0);
    } finally {
      await u.close();
    }
  });
});
