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

describe('createLimiter: fair shares and bounded waits (issue 12, item 7)', () => {
  it("a freed slot goes to the owners in turn: another owner's one task does not wait behind one owner's many", async () => {
    const limit = createLimiter(1);
    const gates = Array.from({ length: 5 }, deferred);
    const order: string[] = [];
    const hold = limit.run(() => gates[0]!.promise, undefined, { owner: 'A' });
    const many = [1, 2, 3].map((i) => limit.run(async () => { order.push(`A${i}`); await gates[i]!.promise; }, undefined, { owner: 'A' }));
    const one = limit.run(async () => { order.push('B1'); await gates[4]!.promise; }, undefined, { owner: 'B' });
    expect(limit.waiting).toBe(4);
    gates[0]!.resolve();
    await hold;
    await new Promise((r) => setImmediate(r));
    // A had the slot; B is next in turn, before A's other waiters.
    expect(order).toEqual(['B1']);
    gates[4]!.resolve();
    await one;
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['B1', 'A1']);
    for (const g of gates) g.resolve();
    await Promise.all(many);
    expect(order).toEqual(['B1', 'A1', 'A2', 'A3']);
    expect([limit.active, limit.waiting]).toEqual([0, 0]);
  });

  it('a waiter leaves after maxWaitMs with its own error, and never runs', async () => {
    const limit = createLimiter(1);
    const gate = deferred();
    const first = limit.run(() => gate.promise);
    let ran = false;
    const t0 = performance.now();
    const late = limit.run(async () => { ran = true; }, undefined, { maxWaitMs: 50, waitError: () => new Error('fetch deadline while queued') });
    await expect(late).rejects.toThrow('fetch deadline while queued');
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(limit.waiting).toBe(0);
    gate.resolve();
    await first;
    expect(ran).toBe(false);
    expect([limit.active, limit.waiting]).toEqual([0, 0]);
  });
});

describe('createLimiter: groups (API keys) share slots in turn, then their owners (requests)', () => {
  it("one key's three requests do not crowd out another key's one request; within a key, requests take turns", async () => {
    const limit = createLimiter(1);
    const order: string[] = [];
    const gate = deferred();
    const hold = limit.run(() => gate.promise, undefined, { owner: 'hold', group: 'A' });
    const task = (label: string) => async () => void order.push(label);
    // Key A: requests r1 (two URLs), r2, r3; key B: request s1, queued last.
    const runs = [
      limit.run(task('A.r1.1'), undefined, { owner: 'r1', group: 'A' }),
      limit.run(task('A.r1.2'), undefined, { owner: 'r1', group: 'A' }),
      limit.run(task('A.r2.1'), undefined, { owner: 'r2', group: 'A' }),
      limit.run(task('A.r3.1'), undefined, { owner: 'r3', group: 'A' }),
      limit.run(task('B.s1.1'), undefined, { owner: 's1', group: 'B' }),
    ];
    expect(limit.waiting).toBe(5);
    gate.resolve();
    await hold;
    await Promise.all(runs);
    // B goes first (A held the slot); A's requests then alternate before r1's second URL.
    expect(order).toEqual(['B.s1.1', 'A.r1.1', 'A.r2.1', 'A.r3.1', 'A.r1.2']);
    expect([limit.active, limit.waiting]).toEqual([0, 0]);
  });

  it('without groups, each owner is its own group (the one-level behaviour)', async () => {
    const limit = createLimiter(1);
    const order: string[] = [];
    const gate = deferred();
    const hold = limit.run(() => gate.promise, undefined, { owner: 'A' });
    const runs = ['A', 'A', 'B'].map((o, i) => limit.run(async () => void order.push(`${o}${i}`), undefined, { owner: o }));
    gate.resolve();
    await hold;
    await Promise.all(runs);
    expect(order).toEqual(['B2', 'A0', 'A1']);
  });
});
