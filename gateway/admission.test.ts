import { describe, expect, it } from 'vitest';
import { Admission } from './admission.js';
import { PorticoError } from '../core/errors.js';

describe('Admission', () => {
  it('refuses at once over the limit with 429 + Retry-After when there is no queue', async () => {
    const a = new Admission({ maxConcurrent: 2, maxQueue: 0, queueTimeoutMs: 1000 });
    const r1 = await a.acquire();
    await a.acquire();
    const err = await a.acquire().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PorticoError);
    expect((err as PorticoError).status).toBe(429);
    expect((err as PorticoError).headers['retry-after']).toBe('1');
    r1();
    r1(); // a second release is a no-op
    expect(a.inFlight).toBe(1);
    await a.acquire();
    expect(a.inFlight).toBe(2);
  });

  it('0 means no limit', async () => {
    const a = new Admission({ maxConcurrent: 0, maxQueue: 0, queueTimeoutMs: 1 });
    for (let i = 0; i < 1000; i++) await a.acquire();
    expect(a.inFlight).toBe(1000);
  });

  it('queues FIFO up to maxQueue, hands slots over in order, and times out', async () => {
    const a = new Admission({ maxConcurrent: 1, maxQueue: 2, queueTimeoutMs: 60_000 });
    const first = await a.acquire();
    const order: number[] = [];
    const p1 = a.acquire().then((r) => (order.push(1), r));
    const p2 = a.acquire().then((r) => (order.push(2), r));
    await expect(a.acquire()).rejects.toMatchObject({ code: 'too_many_requests' }); // queue full
    expect(a.queued).toBe(2);
    first();
    const r1 = await p1;
    expect(a.inFlight).toBe(1);
    r1();
    const r2 = await p2;
    r2();
    expect(order).toEqual([1, 2]);
    expect(a.inFlight).toBe(0);

    const b = new Admission({ maxConcurrent: 1, maxQueue: 1, queueTimeoutMs: 20 });
    await b.acquire();
    await expect(b.acquire()).rejects.toMatchObject({ code: 'too_many_requests', message: expect.stringContaining('NIM_QUEUE_TIMEOUT_MS') });
    expect(b.queued).toBe(0);
  });

  it('a client that goes away leaves the queue without taking a slot', async () => {
    const a = new Admission({ maxConcurrent: 1, maxQueue: 5, queueTimeoutMs: 60_000 });
    const held = await a.acquire();
    const ac = new AbortController();
    const waiting = a.acquire(ac.signal);
    const after = a.acquire();
    ac.abort();
    await expect(waiting).rejects.toBeInstanceOf(PorticoError);
    held();
    const r = await after;
    expect(a.inFlight).toBe(1);
    r();
    expect(a.inFlight).toBe(0);
  });
});
