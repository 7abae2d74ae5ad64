// Requests refused before the app (issue 12, item 8): the Node adaptor's own checks (a Host that is
// not a host, a backslash in the path, HTTP/1.1 without Host) used to answer an empty 400. Over raw
// loopback sockets: each gets the OpenAI envelope, an access-log line and the error metric.
import { Hono } from 'hono';
import { connect } from 'node:net';
import pino from 'pino';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { errorCounts } from '../core/errors.js';
import { listen, type RunningServer } from './server.js';

let running: RunningServer | undefined;
afterEach(async () => {
  await running?.close(0);
  running = undefined;
});

/** Send raw bytes, read until the server closes (bounded: 5 s). */
function exchange(port: number, raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within 5 s; got: ${JSON.stringify(data)}`));
    }, 5000);
    socket.setEncoding('utf8').on('data', (d: string) => (data += d));
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
    socket.on('error', () => undefined);
    socket.write(raw);
  });
}

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

describe('requests refused before the app', () => {
  const cases: [string, string, string][] = [
    ['a Host with userinfo (x@y)', 'GET /v1/models HTTP/1.1\r\nHost: x@y\r\n\r\n', '/v1/models'],
    ['a backslash in the path', 'GET /v1\\models HTTP/1.1\r\nHost: localhost\r\n\r\n', '/v1\\models'],
    ['HTTP/1.1 without a Host header', 'GET /v1/models HTTP/1.1\r\n\r\n', '/v1/models'],
  ];
  for (const [what, raw, path] of cases) {
    it(`${what}: 400 in the envelope, one access-log line, portico_errors_total`, async () => {
      let reached = 0;
      const app = new Hono().all('*', (c) => {
        reached++;
        return c.json({ ok: true });
      });
      const { log, lines } = capture();
      running = await listen(app, { port: 0, host: '127.0.0.1', log });
      const before = errorCounts()['response:bad_request'] ?? 0;
      const answer = await exchange(running.port, raw);
      expect(reached).toBe(0);
      const [head, body] = answer.split('\r\n\r\n');
      expect(head).toMatch(/^HTTP\/1\.1 400 /);
      expect(head).toMatch(/\r\ncontent-type: application\/json/i);
      expect(head).toMatch(/\r\nconnection: close/i);
      const id = /\r\nx-request-id: ([0-9a-f-]{36})/i.exec(head!)?.[1];
      expect(id).toBeDefined();
      const env = JSON.parse(body!) as { error: Record<string, unknown> };
      expect(env.error).toMatchObject({ type: 'invalid_request_error', param: null, code: 'bad_request' });
      expect(String(env.error.message)).toMatch(/^Malformed HTTP request: /);
      expect(errorCounts()['response:bad_request']).toBe(before + 1);
      const access = lines.filter((l) => l.status === 400);
      expect(access).toHaveLength(1);
      expect(access[0]).toMatchObject({ request_id: id, method: 'GET', path, status: 400, error: 'bad_request' });
    });
  }

  it('a well-formed request still reaches the app', async () => {
    const app = new Hono().get('/v1/models', (c) => c.json({ ok: true }));
    running = await listen(app, { port: 0, host: '127.0.0.1' });
    const answer = await exchange(running.port, 'GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toMatch(/\{"ok":true\}$/);
  });
});
