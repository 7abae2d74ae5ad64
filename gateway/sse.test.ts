// sseFromUpstream: every hook sees each engine chunk and exactly one end, on every path (done,
// client gone, engine failure, idle engine, stalled client). No timing assertions: waits are
// bounded polls, the idle timeout is short only so the tests are quick.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { sseFromUpstream, type StreamHooks, type StreamOutcome } from './sse.js';
import { until as poll } from '../tests/helpers/poll.js';

const dec = new TextDecoder();

function recorder(extra: Partial<StreamHooks> = {}) {
  const chunks: string[] = [];
  const ends: StreamOutcome[] = [];
  const hooks: StreamHooks = { chunk: (b) => void chunks.push(dec.decode(b)), end: (o) => void ends.push(o), ...extra };
  return { hooks, chunks, ends };
}

const until = (cond: () => boolean, what: string): Promise<void> => poll(cond, what, { withinMs: 2000, everyMs: 5 });

async function readAll(s: ReadableStream<Uint8Array>): Promise<string> {
  let out = '';
  const reader = s.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return out;
    out += dec.decode(value);
  }
}

describe('sseFromUpstream hooks', () => {
  it('done: every chunk to every hook, then one ok end each, before the client sees the end', async () => {
    const src = new PassThrough();
    const a = recorder();
    const b = recorder();
    const s = sseFromUpstream(src, [a.hooks, b.hooks]);
    src.write('data: 1\n\n');
    src.end('data: [DONE]\n\n');
    expect(await readAll(s)).toBe('data: 1\n\ndata: [DONE]\n\n');
    for (const r of [a, b]) {
      expect(r.chunks.join('')).toBe('data: 1\n\ndata: [DONE]\n\n');
      expect(r.ends).toEqual(['ok']);
    }
  });

  it('reads the engine no further ahead of the client than one chunk (a slow client slows the engine read)', async () => {
    const src = new PassThrough();
    const a = recorder();
    const s = sseFromUpstream(src, [a.hooks]);
    for (let i = 0; i < 5; i++) src.write(`data: ${i}\n\n`);
    await new Promise((r) => setImmediate(r));
    expect(a.chunks).toEqual(['data: 0\n\n']); // taken and queued; the rest wait in the engine body
    expect(src.isPaused()).toBe(true);
    const reader = s.getReader();
    expect(dec.decode((await reader.read()).value)).toBe('data: 0\n\n');
    expect(dec.decode((await reader.read()).value)).toBe('data: 1\n\n');
    src.end();
    await reader.cancel();
  });

  it('client gone: one aborted end, and the engine body is destroyed', async () => {
    const src = new PassThrough();
    const a = recorder();
    const s = sseFromUpstream(src, [a.hooks]);
    src.write('data: 1\n\n');
    const reader = s.getReader();
    await reader.read();
    await reader.cancel();
    await reader.cancel().catch(() => {});
    expect(a.ends).toEqual(['aborted']);
    expect(src.destroyed).toBe(true);
  });

  it('engine failure mid-stream: an error event and [DONE] for the client, one error end with what it was told', async () => {
    const src = new PassThrough();
    const errs: unknown[] = [];
    const a = recorder({ end: (o, err) => void errs.push([o, err?.code]) });
    const s = sseFromUpstream(src, [a.hooks]);
    src.write('data: 1\n\n');
    setImmediate(() => src.destroy(Object.assign(new Error('socket hang up'), { code: 'UND_ERR_SOCKET' })));
    const events = (await readAll(s)).split('\n\n').filter(Boolean);
    expect(events[0]).toBe('data: 1');
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(JSON.parse(events.at(-2)!.slice('data: '.length)).error.code).toBe('engine_unavailable');
    expect(errs).toHaveLength(1);
    expect(errs[0]).toEqual(['error', 'engine_unavailable']);
    expect(a.chunks).toEqual(['data: 1\n\n']); // the gateway's own events are not engine chunks
  });

  it('idle engine, client reading: engine_timeout event + [DONE], one idle end, engine body destroyed', async () => {
    const src = new PassThrough();
    const a = recorder();
    const b = recorder({ idleMs: 30 });
    const s = sseFromUpstream(src, [a.hooks, b.hooks]);
    src.write('data: 1\n\n'); // then silence
    const events = (await readAll(s)).split('\n\n').filter(Boolean);
    expect(events[0]).toBe('data: 1');
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(JSON.parse(events.at(-2)!.slice('data: '.length)).error.code).toBe('engine_timeout');
    expect(a.ends).toEqual(['idle']);
    expect(b.ends).toEqual(['idle']);
    expect(src.destroyed).toBe(true);
  });

  it('client stopped reading: stalled() tears it down, one idle end, engine body destroyed', async () => {
    const src = new PassThrough();
    let stalled = 0;
    const a = recorder({ idleMs: 30, stalled: () => void stalled++ });
    const s = sseFromUpstream(src, [a.hooks]);
    src.write('data: 1\n\n');
    const reader = s.getReader();
    await reader.read(); // one chunk, then the client reads no more
    await until(() => a.ends.length > 0, 'the idle timeout');
    expect(a.ends).toEqual(['idle']);
    expect(stalled).toBe(1);
    expect(src.destroyed).toBe(true);
    await reader.cancel(); // the server's own teardown afterwards: no second end
    expect(a.ends).toEqual(['idle']);
  });

  it('a throwing hook does not keep the others from their end', async () => {
    const src = new PassThrough();
    const a = recorder({ end: () => { throw new Error('metrics bug'); } });
    const b = recorder();
    const s = sseFromUpstream(src, [a.hooks, b.hooks]);
    src.end('data: [DONE]\n\n');
    expect(await readAll(s)).toBe('data: [DONE]\n\n');
    expect(b.ends).toEqual(['ok']);
  });
});
