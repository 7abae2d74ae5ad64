// The drain (SIGTERM) at the transport level, over raw loopback sockets: what a keep-alive client
// is told during the drain, and that nothing in progress is cut.
import { Hono } from 'hono';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { listen, type RunningServer } from './server.js';

let running: RunningServer | undefined;
afterEach(async () => {
  await running?.close(0);
  running = undefined;
});

/** An app whose /slow answers only when released. */
function slowApp() {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let arrived = 0;
  const app = new Hono().get('/slow', async (c) => {
    arrived++;
    await gate;
    return c.text('slow done');
  });
  app.get('/fast', (c) => c.text('fast done'));
  return { app, release, arrived: () => arrived };
}

/** A raw keep-alive connection: send requests, read everything the server sends until it closes. */
function rawClient(port: number): { socket: Socket; received: () => string; closed: Promise<void> } {
  const socket = connect(port, '127.0.0.1');
  let data = '';
  socket.setEncoding('utf8').on('data', (d: string) => (data += d));
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  socket.on('error', () => undefined);
  return { socket, received: () => data, closed };
}

const until = async (cond: () => boolean, what: string) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
};

describe('drain', () => {
  it('an answer finished during the drain says Connection: close, and the server then closes that connection', async () => {
    const { app, release, arrived } = slowApp();
    running = await listen(app, { port: 0, host: '127.0.0.1' });
    const c = rawClient(running.port);
    c.socket.write('GET /slow HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    await until(() => arrived() === 1, 'the request to reach the app');
    const closing = running.close(10_000);
    release();
    await c.closed;
    await closing;
    expect(c.received()).toMatch(/^HTTP\/1\.1 200/);
    expect(c.received()).toMatch(/\r\nconnection: close\r\n/i);
    expect(c.received()).toMatch(/slow done$/);
    running = undefined;
  });

  it('a keep-alive connection that answers a request during the drain is told to close, while another request is still running', async () => {
    const { app, release, arrived } = slowApp();
    running = await listen(app, { port: 0, host: '127.0.0.1' });
    const slow = rawClient(running.port);
    slow.socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => arrived() === 1, 'the slow request to reach the app');
    // A second connection, busy with a request that has arrived but is answered only after the drain began.
    const other = rawClient(running.port);
    other.socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => arrived() === 2, 'the second request to reach the app');
    const closing = running.close(10_000);
    release();
    await Promise.all([slow.closed, other.closed]);
    await closing;
    for (const c of [slow, other]) {
      expect(c.received()).toMatch(/^HTTP\/1\.1 200[^]*\r\nconnection: close\r\n[^]*slow done$/i);
    }
    running = undefined;
  });

  it('a keep-alive connection whose next request is partly received when the drain starts gets its answer, not a reset', async () => {
    const { app, release, arrived } = slowApp();
    running = await listen(app, { port: 0, host: '127.0.0.1' });
    const slow = rawClient(running.port);
    slow.socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => arrived() === 1, 'the slow request');
    const ka = rawClient(running.port);
    ka.socket.write('GET /fast HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => ka.received().includes('fast done'), 'the first answer on the keep-alive connection');
    // The next request's first bytes are on their way when SIGTERM lands.
    ka.socket.write('GET /fast HTTP/1.1\r\nHost: x\r\n');
    await new Promise((r) => setImmediate(r));
    const closing = running.close(10_000);
    release();
    await slow.closed;
    expect(ka.socket.destroyed).toBe(false);
    ka.socket.write('\r\n');
    await ka.closed;
    await closing;
    expect(ka.received().match(/fast done/g)).toHaveLength(2);
    expect(ka.received()).toMatch(/\r\nconnection: close\r\n[^]*fast done$/i);
    running = undefined;
  });

  it('the drain ends as soon as the last answer is out, not at the deadline', async () => {
    const { app, release, arrived } = slowApp();
    running = await listen(app, { port: 0, host: '127.0.0.1' });
    const idle = rawClient(running.port);
    idle.socket.write('GET /fast HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => idle.received().includes('fast done'), 'the first answer');
    const busy = rawClient(running.port);
    busy.socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => arrived() === 1, 'the slow request');
    const t0 = Date.now();
    const closing = running.close(30_000);
    // The idle keep-alive connection is closed at once; the busy one is not.
    await idle.closed;
    expect(busy.socket.destroyed).toBe(false);
    release();
    await Promise.all([closing, busy.closed]);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(busy.received()).toMatch(/slow done$/);
    running = undefined;
  });
});
