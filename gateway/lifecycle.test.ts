// The request's life: every observer sees each phase at most once, `end` exactly once (at a
// stream's last byte, or when a JSON answer or an error is returned), usage is read once from the
// answer, and every answer carries the request id and the overhead header. Real Hono app, real
// streams; nothing is timed.
import { PassThrough } from 'node:stream';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { PorticoError } from '../core/errors.js';
import { lifecycle, OVERHEAD_HEADER, Slot, type LifeObserver, type RequestLife } from './lifecycle.js';
import { SSE_HEADERS } from './sse.js';

const ROUTES = [
  { method: 'POST', path: '/stream', inference: true },
  { method: 'POST', path: '/json', inference: true },
  { method: 'GET', path: '/fail', inference: false },
];

const JSON_ANSWER = '{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}';

function recorder(name: string, log: string[], extra: Partial<LifeObserver> = {}): LifeObserver {
  return {
    open: (l) => void log.push(`${name} open ${l.inference}`),
    accept: (l) => void log.push(`${name} accept ${l.model}`),
    head: (_l, status, out) => {
      log.push(`${name} head ${status}`);
      out[`x-${name}`] = 'yes';
    },
    end: (l) => void log.push(`${name} end ${l.status} ${l.outcome} ${JSON.stringify(l.usage ?? null)} bytes=${l.bytesOut}`),
    ...extra,
  };
}

function app(observers: LifeObserver[], seen: { life?: RequestLife; source?: PassThrough } = {}) {
  const a = new Hono();
  a.use(lifecycle({ observers, model: { id: 'served' }, routes: ROUTES }));
  a.post('/stream', async (c) => {
    const life = (seen.life = c.get('life'));
    await life.accept({ model: 'asked', stream: true });
    const source = (seen.source = new PassThrough());
    return life.reply(life.stream(source), 200, SSE_HEADERS);
  });
  a.post('/json', async (c) => {
    const life = c.get('life');
    await life.accept({ model: 'asked' });
    const bytes = new Uint8Array(Buffer.from(JSON_ANSWER));
    life.json(bytes);
    return life.reply(bytes, 200, { 'content-type': 'application/json' });
  });
  a.get('/fail', () => {
    throw new PorticoError('model_not_found', 'x');
  });
  a.onError((err, c) => c.json({ error: String(err) }, (err as PorticoError).status as 404));
  return a;
}

describe('RequestLife', () => {
  it('a stream ends every observer once, at its last byte, with the usage of its usage chunk', async () => {
    const log: string[] = [];
    const seen: { life?: RequestLife; source?: PassThrough } = {};
    const res = await app([recorder('a', log), recorder('b', log)], seen).request('/stream', { method: 'POST', headers: { 'x-request-id': 'req-1' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('req-1');
    expect(res.headers.get(OVERHEAD_HEADER)).toMatch(/^\d+\.\d{3}$/);
    expect(res.headers.get('x-a')).toBe('yes');
    expect(res.headers.get('content-type')).toBe(SSE_HEADERS['content-type']);
    // Returned, stream still open: nobody has ended.
    expect(log).toEqual(['a open true', 'b open true', 'a accept asked', 'b accept asked', 'a head 200', 'b head 200']);
    seen.source!.write('data: {"choices":[{"delta":{"content":"x"}}]}\n\n');
    const usage = 'data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":1,"total_tokens":5}}\n\n';
    seen.source!.end(`${usage}data: [DONE]\n\n`);
    const text = await res.text();
    expect(text).toContain('[DONE]');
    const ends = log.filter((l) => l.includes(' end '));
    expect(ends).toEqual([`a end 200 ok {"prompt":4,"completion":1} bytes=${Buffer.byteLength(text)}`, `b end 200 ok {"prompt":4,"completion":1} bytes=${Buffer.byteLength(text)}`]);
    expect(seen.life!.streamUsage!.events).toBe(3);
    expect(seen.life!.model).toBe('asked');
  });

  it('a JSON answer ends when returned, its usage read from the body; an error answer is headed with its status', async () => {
    const log: string[] = [];
    const a = app([recorder('a', log)]);
    const res = await a.request('/json', { method: 'POST' });
    expect(await res.json()).toMatchObject({ usage: { prompt_tokens: 3 } });
    expect(log).toEqual(['a open true', 'a accept asked', 'a head 200', `a end 200 ok {"prompt":3,"completion":2} bytes=${JSON_ANSWER.length}`]);
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);

    log.length = 0;
    const failed = await a.request('/fail', { headers: { 'x-request-id': 'bad id with spaces' } });
    expect(failed.status).toBe(404);
    expect(log).toEqual(['a open false', 'a head 404', 'a end 404 ok null bytes=0']);
    // An unusable incoming id is replaced, and the error answer still carries the life's headers.
    expect(failed.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);
    expect(failed.headers.get(OVERHEAD_HEADER)).toMatch(/^\d+\.\d{3}$/);
    expect(failed.headers.get('x-a')).toBe('yes');
  });

  it('an observer that throws at the end does not keep the others from theirs; slots keep per-request state', async () => {
    const log: string[] = [];
    const slot = new Slot<number>();
    let n = 0;
    const counter: LifeObserver = {
      open: (l) => l.put(slot, ++n),
      end: (l) => void log.push(`slot ${l.get(slot)}`),
    };
    const a = app([{ end: () => { throw new Error('observer bug'); } }, counter]);
    expect((await a.request('/json', { method: 'POST' })).status).toBe(200);
    expect((await a.request('/json', { method: 'POST' })).status).toBe(200);
    expect(log).toEqual(['slot 1', 'slot 2']);
  });
});
