// Admission control for inference: at most NIM_MAX_CONCURRENT_REQUESTS requests in flight on the
// engine. Over it, a request is refused at once with 429 + Retry-After (TGI's choice), or, with
// NIM_MAX_QUEUE > 0, waits in a bounded FIFO for up to NIM_QUEUE_TIMEOUT_MS. A slot is held until
// the response is over, which for SSE is when the stream ends (done, client gone, failure or idle
// timeout), and is released exactly once on every path.
import { PorticoError } from '../core/errors.js';
import { Slot, type LifeObserver } from './lifecycle.js';

export interface AdmissionOptions {
  /** 0 = no limit. */
  maxConcurrent: number;
  /** Waiting room size; 0 = refuse at once when full. */
  maxQueue: number;
  queueTimeoutMs: number;
}

export type Release = () => void;

interface Waiter {
  resolve: (release: Release) => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/** Seconds a refused client is told to wait: generations end in seconds, so try again soon. */
const RETRY_AFTER_S = 1;

export class Admission {
  private active = 0;
  private readonly queue: Waiter[] = [];

  constructor(readonly opts: AdmissionOptions) {}

  /** Requests holding a slot. */
  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** A slot, now or after a wait in the queue; throws a 429 PorticoError when refused. */
  async acquire(signal?: AbortSignal): Promise<Release> {
    return this.tryAcquire() ?? this.wait(signal);
  }

  /** A slot if one is free now (no promise, no turn): the common path. */
  tryAcquire(): Release | undefined {
    const { maxConcurrent } = this.opts;
    if (maxConcurrent > 0 && this.active >= maxConcurrent) return undefined;
    this.active++;
    return this.releaser();
  }

  /** Wait in the queue for a slot (or be refused at once when the queue is full). */
  async wait(signal?: AbortSignal): Promise<Release> {
    const { maxConcurrent, maxQueue, queueTimeoutMs } = this.opts;
    if (this.queue.length >= maxQueue) {
      throw overloaded(`${this.active} requests are in flight (NIM_MAX_CONCURRENT_REQUESTS=${maxConcurrent})${maxQueue > 0 ? ' and the queue is full' : ''}`);
    }
    if (signal?.aborted) throw overloaded('the client went away');
    return new Promise<Release>((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        signal,
        timer: setTimeout(() => {
          this.drop(w);
          reject(overloaded(`no slot became free within ${queueTimeoutMs} ms (NIM_QUEUE_TIMEOUT_MS)`));
        }, queueTimeoutMs),
        onAbort: () => {
          this.drop(w);
          reject(overloaded('the client went away while queued'));
        },
      };
      w.timer.unref?.();
      signal?.addEventListener('abort', w.onAbort, { once: true });
      this.queue.push(w);
    });
  }

  private drop(w: Waiter): void {
    clearTimeout(w.timer);
    w.signal?.removeEventListener('abort', w.onAbort);
    const i = this.queue.indexOf(w);
    if (i >= 0) this.queue.splice(i, 1);
  }

  /** A release function that works once; the slot goes straight to the oldest waiter (FIFO). */
  private releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.queue.shift();
      if (next) {
        this.drop(next);
        next.resolve(this.releaser());
      } else {
        this.active--;
      }
    };
  }
}

function overloaded(detail: string): PorticoError {
  return new PorticoError('too_many_requests', `The server is at capacity: ${detail}. Retry shortly.`, {
    headers: { 'retry-after': String(RETRY_AFTER_S) },
  });
}

const SLOT = new Slot<Release>();

/**
 * The in-flight limit as an observer of each request's life (gateway/lifecycle.ts): an inference
 * request takes a slot of its model's limit (`life.admission`, set once the model is known) only
 * once its whole body is read and valid (accept), so a client that sends headers and then stalls
 * never holds one (two such sockets would otherwise lock every chat out). The slot is released
 * when the request ends: when its answer is returned, or, for an SSE answer, when the stream ends,
 * which is also ended after `streamIdleMs` without a byte (0 = never).
 */
export function admissionObserver(opts: { streamIdleMs?: number } = {}): LifeObserver {
  return {
    accept(life) {
      const adm = life.admission;
      if (!life.inference || !adm) return;
      // A stream holding the slot is also ended after streamIdleMs without a byte.
      life.idleMs = opts.streamIdleMs ?? 0;
      const now = adm.tryAcquire();
      if (now) return void life.put(SLOT, now);
      return adm.wait(life.signal).then((release) => void life.put(SLOT, release));
    },
    end(life) {
      life.get(SLOT)?.();
    },
  };
}
