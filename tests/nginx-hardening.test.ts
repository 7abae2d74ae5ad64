// nginx front hardening (issue 12, item 9), with the real nginx in front of a loopback recorder that
// stands in for the gateway: only what nginx forwards and answers itself is under test here.
//  - X-Request-Id is forwarded only when it is [A-Za-z0-9._-]{1,128}; anything else is replaced by
//    nginx's own fresh id (a client cannot inject header/log text or unbounded ids downstream).
//  - /v1/health/live answers GET and HEAD only; any other method gets 405 in the OpenAI envelope.
import { createServer, type Server } from 'node:http';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startNginx, type RunningNginx } from '../nginx/testing.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw request (fetch would refuse some of the header values under test). */
function send(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

describe('nginx front: request ids and liveness methods', () => {
  let nginx: RunningNginx;
  let upstream: Server;
  const seen: (string | undefined)[] = [];

  beforeAll(async () => {
    const port = await freePort();
    upstream = createServer((req, res) => {
      seen.push(req.headers['x-request-id'] as string | undefined);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"object":"list","data":[]}');
    });
    await new Promise<void>((r) => upstream.listen(port, '127.0.0.1', r));
    nginx = await startNginx({ NIM_GATEWAY_PORT: String(port) });
  });
  afterAll(async () => {
    await nginx?.stop();
    await new Promise((r) => upstream?.close(r));
  });

  it('forwards and echoes a well-formed X-Request-Id unchanged (128 chars of the allowed set)', async () => {
    const id = 'Ab9._-'.repeat(21) + 'xy'; // 128 chars
    expect(id).toHaveLength(128);
    const res = await send(nginx.port, 'GET', '/v1/models', { 'x-request-id': id });
    expect(res.status).toBe(200);
    expect(seen.at(-1)).toBe(id);
  });

  for (const [what, bad] of [
    ['a space and a quote', 'abc def"'],
    ['JSON and log text', 'id{"level":"error"}'],
    ['a slash and a colon', 'a/b:c'],
    ['129 characters', 'a'.repeat(129)],
    ['non-ASCII', 'id-\u00e9'],
  ] as const) {
    it(`replaces an X-Request-Id with ${what} by a fresh id, to the gateway and on nginx's own answers`, async () => {
      const res = await send(nginx.port, 'GET', '/v1/models', { 'x-request-id': Buffer.from(bad, 'utf8').toString('latin1') });
      expect(res.status).toBe(200);
      const fwd = seen.at(-1);
      expect(fwd).toMatch(/^[0-9a-f]{32}$/); // nginx's $request_id
      const live = await send(nginx.port, 'GET', '/v1/health/live', { 'x-request-id': Buffer.from(bad, 'utf8').toString('latin1') });
      expect(live.status).toBe(200);
      expect(live.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    });
  }

  it('an absent or empty X-Request-Id gets a fresh id', async () => {
    await send(nginx.port, 'GET', '/v1/models');
    expect(seen.at(-1)).toMatch(/^[0-9a-f]{32}$/);
    await send(nginx.port, 'GET', '/v1/models', { 'x-request-id': '' });
    expect(seen.at(-1)).toMatch(/^[0-9a-f]{32}$/);
  });

  it('answers /v1/health/live for GET and HEAD', async () => {
    const get = await send(nginx.port, 'GET', '/v1/health/live', { 'x-request-id': 'live-1' });
    expect(get.status).toBe(200);
    expect(JSON.parse(get.body)).toEqual({ object: 'health.response', message: 'Service is live.' });
    expect(get.headers['x-request-id']).toBe('live-1');
    const head = await send(nginx.port, 'HEAD', '/v1/health/live');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    it(`refuses ${method} /v1/health/live with 405 in the OpenAI envelope`, async () => {
      const before = seen.length;
      const res = await send(nginx.port, method, '/v1/health/live', { 'x-request-id': 'm-1' });
      expect(res.status).toBe(405);
      expect(res.headers['content-type']).toContain('application/json');
      expect(res.headers.allow).toBe('GET, HEAD');
      expect(res.headers['x-request-id']).toBe('m-1');
      expect(JSON.parse(res.body)).toEqual({
        error: { message: `${method} is not allowed on /v1/health/live; use GET, HEAD`, type: 'invalid_request_error', param: null, code: 'method_not_allowed' },
      });
      expect(seen.length).toBe(before); // nginx answered; nothing reached the gateway
    });
  }
});
