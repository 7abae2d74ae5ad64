import { describe, expect, it } from 'vitest';
import { createLimiter } from './limit.js';

const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};

describe('createLimiter', () => {
  it('runs at most max tasks at once, in FIFO order', async () => {
    const limit = createLimiter(2);
    const gates = [deferred(), deferred(), deferred()];
    const started: number[] = [];
    const runs = gates.map((g, i) =>
      limit.run(async () => {
        started.push(i);
        await g.promise;
        return i;
      }),
    );
    await Promise.resolve();
    expect(started).toEqual([0, 1]);
    expect([limit.active, limit.waiting]).toEqual([2, 1]);
    gates[0]!.resolve();
    await runs[0];
    await Promise.resolve();
    expect(started).toEqual([0, 1, 2]);
    gates[1]!.resolve();
    gates[2]!.resolve();
    expect(await Promise.all(runs)).toEqual([0, 1, 2]);
    expect([limit.active, limit.waiting]).toEqual([0, 0]);
  });

  it('releases the slot when a task fails', async () => {
    const limit = createLimiter(1);
    await expect(limit.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(limit.run(async () => 'ok')).resolves.toBe('ok');
  });

  it('drops an aborted waiter from the queue without running it', async () => {
    const limit = createLimiter(1);
    const gate = deferred();
    const first = limit.run(() => gate.promise);
    const ctl = new AbortController();
    let ran = false;
    const second = limit.run(async () => {
      ran = true;
    }, ctl.signal);
    ctl.abort(new Error('client gone'));
    await expect(second).rejects.toThrow('client gone');
    expect(limit.waiting).toBe(0);
    gate.resolve();
    await first;
    expect(ran).toBe(false);
    expect(limit.active).toBe(0);
    await expect(limit.run(async () => 1, AbortSignal.abort(new Error('already')))).rejects.toThrow('already');
  });
});
