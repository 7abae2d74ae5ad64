// A counting semaphore shared fairly: at most `max` tasks run at once; waiters queue per owner (a
// request, a key) and a freed slot goes to the owners in turn, so one caller's many slow URLs do
// not delay another caller's single one (issue 12, item 7). A waiter whose signal aborts, or whose
// `maxWaitMs` passes (its own fetch deadline), leaves the queue at once.

export interface RunOptions {
  /** Who the task is for; waiters of different owners are served in turn. Default: one shared owner. */
  owner?: unknown;
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

export function createLimiter(max: number): Limiter {
  if (!(max >= 1)) throw new RangeError(`limit must be at least 1, got ${max}`);
  let active = 0;
  let waiting = 0;
  const queues = new Map<unknown, (() => void)[]>();
  // Per owner with a task running or waiting: its running count and when it was last given a slot.
  // A freed slot goes to the waiting owner served longest ago (never served first).
  const owners = new Map<unknown, { running: number; served: number }>();
  let tick = 0;
  const ownerOf = (o: unknown) => {
    let st = owners.get(o);
    if (!st) owners.set(o, (st = { running: 0, served: 0 }));
    return st;
  };
  const forget = (o: unknown) => {
    const st = owners.get(o);
    if (st && st.running === 0 && !queues.has(o)) owners.delete(o);
  };

  const release = (from: unknown) => {
    ownerOf(from).running--;
    forget(from);
    let pick: unknown;
    let best = Infinity;
    for (const o of queues.keys()) {
      const served = ownerOf(o).served;
      if (served < best) [pick, best] = [o, served];
    }
    if (best === Infinity) {
      active--;
      return;
    }
    const q = queues.get(pick)!;
    const next = q.shift()!;
    if (q.length === 0) queues.delete(pick);
    waiting--;
    next();
  };

  const acquire = (signal: AbortSignal | undefined, opts: RunOptions): Promise<void> => {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const owner = opts.owner ?? SHARED;
    if (active < max) {
      active++;
      const st = ownerOf(owner);
      st.running++;
      st.served = ++tick;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const leave = (reason: unknown) => {
        const q = queues.get(owner);
        const i = q ? q.indexOf(grant) : -1;
        if (i >= 0) {
          q!.splice(i, 1);
          if (q!.length === 0) queues.delete(owner);
          waiting--;
          forget(owner);
        }
        signal?.removeEventListener('abort', onAbort);
        clearTimeout(timer);
        reject(reason);
      };
      // The slot passes straight from releaser to waiter, so `active` does not change.
      const grant = () => {
        const st = ownerOf(owner);
        st.running++;
        st.served = ++tick;
        signal?.removeEventListener('abort', onAbort);
        clearTimeout(timer);
        resolve();
      };
      const onAbort = () => leave(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.maxWaitMs !== undefined) {
        timer = setTimeout(() => leave(opts.waitError?.() ?? new Error(`no slot within ${opts.maxWaitMs} ms`)), opts.maxWaitMs);
      }
      ownerOf(owner);
      let q = queues.get(owner);
      if (!q) queues.set(owner, (q = []));
      q.push(grant);
      waiting++;
    });
  };

  return {
    async run(task, signal, opts = {}) {
      await acquire(signal, opts);
      try {
        return await task();
      } finally {
        release(opts.owner ?? SHARED);
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
