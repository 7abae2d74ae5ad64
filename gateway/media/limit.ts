// A counting semaphore shared fairly: at most `max` tasks run at once. Waiters queue per owner (a
// request) inside a group (an API key); a freed slot goes to the group served longest ago, and in
// it to the owner served longest ago. So one caller's many slow URLs do not delay another caller's
// single one, and one key sending many requests at once does not crowd out another key. A waiter
// whose signal aborts, or whose `maxWaitMs` passes (its own fetch deadline), leaves the queue at once.

export interface RunOptions {
  /** Who the task is for (a request). Default: one shared owner. */
  owner?: unknown;
  /** The owner's group (an API key). Default: the owner alone. */
  group?: unknown;
  /** Longest wait for a slot; then the task is refused with `waitError()`. */
  maxWaitMs?: number;
  waitError?: () => Error;
}

export interface Limiter {
  run<T>(task: () => Promise<T>, signal?: AbortSignal, opts?: RunOptions): Promise<T>;
  readonly active: number;
  readonly waiting: number;
}

const SHARED = Symbol('shared');

/** Round-robin bookkeeping for one level: who has something running or waiting, and when each was last served. */
class Turns<K> {
  private readonly st = new Map<K, { running: number; served: number }>();
  private of(k: K) {
    let s = this.st.get(k);
    if (!s) this.st.set(k, (s = { running: 0, served: 0 }));
    return s;
  }
  started(k: K, tick: number): void {
    const s = this.of(k);
    s.running++;
    s.served = tick;
  }
  ended(k: K, stillWaiting: boolean): void {
    const s = this.of(k);
    s.running--;
    this.forget(k, stillWaiting);
  }
  forget(k: K, stillWaiting: boolean): void {
    const s = this.st.get(k);
    if (s && s.running === 0 && !stillWaiting) this.st.delete(k);
  }
  /** Of `candidates`, the one served longest ago (never served first). */
  pick(candidates: Iterable<K>): K | undefined {
    let pick: K | undefined;
    let best = Infinity;
    for (const k of candidates) {
      const served = this.st.get(k)?.served ?? 0;
      if (served < best) [pick, best] = [k, served];
    }
    return pick;
  }
}

export function createLimiter(max: number): Limiter {
  if (!(max >= 1)) throw new RangeError(`limit must be at least 1, got ${max}`);
  let active = 0;
  let waiting = 0;
  let tick = 0;
  // group → owner → waiters (FIFO within an owner).
  const queues = new Map<unknown, Map<unknown, (() => void)[]>>();
  const groups = new Turns<unknown>();
  const owners = new Turns<unknown>();
  const start = (group: unknown, owner: unknown) => {
    tick++;
    groups.started(group, tick);
    owners.started(owner, tick);
  };
  const dequeue = (group: unknown, owner: unknown, grant: () => void): boolean => {
    const g = queues.get(group);
    const q = g?.get(owner);
    const i = q ? q.indexOf(grant) : -1;
    if (i < 0) return false;
    q!.splice(i, 1);
    if (q!.length === 0) g!.delete(owner);
    if (g!.size === 0) queues.delete(group);
    waiting--;
    return true;
  };

  const release = (group: unknown, owner: unknown) => {
    groups.ended(group, queues.has(group));
    owners.ended(owner, queues.get(group)?.has(owner) ?? false);
    const g = groups.pick(queues.keys());
    if (g === undefined) {
      active--;
      return;
    }
    const inGroup = queues.get(g)!;
    const o = owners.pick(inGroup.keys());
    const next = inGroup.get(o)![0]!;
    dequeue(g, o, next);
    next(); // the slot passes straight from releaser to waiter, so `active` does not change
  };

  const acquire = (signal: AbortSignal | undefined, owner: unknown, group: unknown, opts: RunOptions): Promise<void> => {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (active < max) {
      active++;
      start(group, owner);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        signal?.removeEventListener('abort', onAbort);
        clearTimeout(timer);
      };
      const leave = (reason: unknown) => {
        if (dequeue(group, owner, grant)) {
          groups.forget(group, queues.has(group));
          owners.forget(owner, queues.get(group)?.has(owner) ?? false);
        }
        done();
        reject(reason);
      };
      const grant = () => {
        start(group, owner);
        done();
        resolve();
      };
      const onAbort = () => leave(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.maxWaitMs !== undefined) {
        timer = setTimeout(() => leave(opts.waitError?.() ?? new Error(`no slot within ${opts.maxWaitMs} ms`)), opts.maxWaitMs);
      }
      let g = queues.get(group);
      if (!g) queues.set(group, (g = new Map()));
      let q = g.get(owner);
      if (!q) g.set(owner, (q = []));
      q.push(grant);
      waiting++;
    });
  };

  return {
    async run(task, signal, opts = {}) {
      const owner = opts.owner ?? SHARED;
      const group = opts.group ?? owner;
      await acquire(signal, owner, group, opts);
      try {
        return await task();
      } finally {
        release(group, owner);
      }
    },
    get active() {
      return active;
    },
    get waiting() {
      return waiting;
    },
  };
}
