// One request's life in the gateway, and the hooks of what observes or limits it.
//
// The first middleware creates one RequestLife per request (`c.get('life')`). Everything that
// follows a request subscribes to it as a LifeObserver, once, when the app is built: metrics and
// the access log (observe.ts), the per-key rate limits (rate-limit.ts), the in-flight limit
// (admission.ts). The request path only reports facts to it, each once: who the caller is
// (admit), the parsed body on its way to the engine and the model it names (accept), time spent
// on the engine, the engine's JSON answer or SSE body (usage is read from it here, once), and
// the answer's status. The life then calls every observer at each phase, and `end` exactly once:
// when the answer is returned, or, for a stream, at its last byte.
//
// Answers built here (`reply`) carry every header in one plain object (request id, overhead,
// x-ratelimit-*), so node-server writes them without building a Headers object. Answers built
// elsewhere (errors, small JSON routes) get the same headers set after the handler returns.
import type { Context, MiddlewareHandler } from 'hono';
import type { Readable } from 'node:stream';
import { PorticoError, reportError, toPorticoError } from '../core/errors.js';
import type { Admission } from './admission.js';
import type { UpstreamErrorKind } from './metrics.js';
import { outgoingOf, requestHeader } from './node-request.js';
import { newRequestId } from './request-id.js';
import { setResponseHeaders } from './response-guard.js';
import { sseFromUpstream, type StreamOutcome } from './sse.js';
import { StreamUsage, usageFromJson, type Usage } from './usage.js';

export const OVERHEAD_HEADER = 'x-portico-overhead-ms';

/**
 * A subscriber to every request's life. Each hook is optional; `admit` and `accept` may refuse the
 * request by throwing (a 429); `accept` may wait (the admission queue). Per-request state goes in
 * a Slot (`life.put` / `life.get`).
 */
export interface LifeObserver {
  /** The request starts (before anything else ran). */
  open?(life: RequestLife): void;
  /** The caller is known (after auth), before the body is read. */
  admit?(life: RequestLife): void;
  /** The body is read and valid and goes to the engine now (inference routes). */
  accept?(life: RequestLife, body: Record<string, unknown>): void | Promise<void>;
  /** An engine call failed (counted once per failure). */
  engineFailed?(life: RequestLife, kind: UpstreamErrorKind): void;
  /** The answer's status is decided and its headers are written: add to `out`. */
  head?(life: RequestLife, status: number, out: Record<string, string>): void;
  /** Exactly once: the answer was returned and, for a stream, its last byte passed. */
  end?(life: RequestLife): void;
}

/** A typed place for one observer's per-request state on a RequestLife. */
export class Slot<T> {
  private static next = 0;
  readonly index = Slot.next++;
  declare readonly _type?: T;
}

export interface LifecycleOptions {
  observers: readonly LifeObserver[];
  /** The served model; read per request (an external engine's model id is learnt after start). */
  model: { readonly id: string };
  /** Routes that run inference on the engine. */
  routes: readonly { method: string; path: string; inference: boolean }[];
}

/** The observers' hooks, grouped by phase once so a request runs only the ones that exist. */
class Hooks {
  readonly open: LifeObserver[];
  readonly admit: LifeObserver[];
  readonly accept: LifeObserver[];
  readonly engineFailed: LifeObserver[];
  readonly head: LifeObserver[];
  readonly end: LifeObserver[];
  /** Inference routes: path → methods (looked up without building a key per request). */
  readonly inference = new Map<string, Set<string>>();

  constructor(readonly o: LifecycleOptions) {
    const has = (k: keyof LifeObserver) => o.observers.filter((x) => typeof x[k] === 'function');
    this.open = has('open');
    this.admit = has('admit');
    this.accept = has('accept');
    this.engineFailed = has('engineFailed');
    this.head = has('head');
    this.end = has('end');
    for (const r of o.routes) {
      if (!r.inference) continue;
      let methods = this.inference.get(r.path);
      if (!methods) this.inference.set(r.path, (methods = new Set()));
      methods.add(r.method);
    }
  }
}

declare module 'hono' {
  interface ContextVariableMap {
    life: RequestLife;
  }
}

export type Outcome = 'ok' | 'aborted' | 'error';

export class RequestLife {
  readonly start = performance.now();
  readonly id: string;
  /** Runs inference on the engine (counted in the NIM series, takes an admission slot). */
  readonly inference: boolean;
  /** The model the request is for: the served one until the body names one (accept). */
  model: string;
  /** The in-flight limit of that model (its own), set by the handler before accept. */
  admission: Admission | undefined;
  /** Time spent waiting on the engine (or for its capacity) so far (ms): not gateway overhead. */
  engineMs = 0;
  /** Gateway time before the answer started (ms); set when its headers are decided. */
  overheadMs = 0;
  /** The answer's status, once decided (0 before). */
  status = 0;
  /** When the request ended (performance.now()); 0 before. */
  endedAt = 0;
  firstByteAt = 0;
  /** Engine bytes relayed to the client (not the error events the gateway adds to a stream). */
  bytesOut = 0;
  /** The SSE answer's usage reader, when the answer is a stream. */
  streamUsage: StreamUsage | undefined;
  /** How a stream ended ('ok' for a JSON answer). */
  outcome: Outcome = 'ok';
  /** For a stream: end it after this long without a chunk (0: never). */
  idleMs = 0;
  private jsonUsage: Usage | undefined;
  private failure: PorticoError | undefined;
  private streamEnded = false;
  private responded = false;
  private headed = false;
  private done = false;
  private readonly states: unknown[] = [];

  constructor(
    private readonly hooks: Hooks,
    readonly c: Context,
  ) {
    const incoming = requestHeader(c, 'x-request-id');
    this.id = incoming && REQUEST_ID.test(incoming) ? incoming : newRequestId();
    this.model = hooks.o.model.id;
    this.inference = hooks.inference.get(c.req.path)?.has(c.req.method) === true;
    for (const o of hooks.open) o.open!(this);
  }

  get<T>(slot: Slot<T>): T | undefined {
    return this.states[slot.index] as T | undefined;
  }
  put<T>(slot: Slot<T>, value: T): void {
    this.states[slot.index] = value;
  }

  /** The usage of the answer: its JSON body's, or its stream's (usage chunk, else llama-server timings). */
  get usage(): Usage | undefined {
    return this.jsonUsage ?? this.streamUsage?.result();
  }

  /** What went wrong, as the error handler answered it (anything not a PorticoError became internal_error). */
  get error(): PorticoError | undefined {
    if (this.c.error === undefined) return undefined;
    return (this.failure ??= toPorticoError(this.c.error));
  }

  /** The client's signal: aborted when it goes away. */
  get signal(): AbortSignal {
    return this.c.req.raw.signal;
  }

  /** The caller is known (auth passed): observers may refuse it (rate limits). */
  admit(): void {
    for (const o of this.hooks.admit) o.admit!(this);
  }

  /**
   * The body is valid and goes to the engine: observers may refuse it (throw) or make it wait
   * (a promise is returned only then: the common path takes no extra turn).
   */
  accept(body: Record<string, unknown>): Promise<void> | undefined {
    if (typeof body.model === 'string') this.model = body.model;
    const hooks = this.hooks.accept;
    for (let i = 0; i < hooks.length; i++) {
      const wait = hooks[i]!.accept!(this, body);
      if (wait) return wait.then(() => this.acceptFrom(i + 1, body));
    }
    return undefined;
  }

  private async acceptFrom(from: number, body: Record<string, unknown>): Promise<void> {
    const hooks = this.hooks.accept;
    for (let i = from; i < hooks.length; i++) await hooks[i]!.accept!(this, body);
  }

  /** Run an engine call: its duration is excluded from overhead; failures are counted by kind. */
  engine<T>(call: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    let running: Promise<T>;
    try {
      running = call();
    } catch (err) {
      running = Promise.reject(err);
    }
    // One reaction on the call's own promise (no async wrapper): this runs once per request.
    return running.then(
      (value) => {
        this.engineMs += performance.now() - t0;
        return value;
      },
      (err: unknown) => {
        this.engineMs += performance.now() - t0;
        // A client that went away aborts the engine call: that is not the engine failing.
        if (!this.signal.aborted) this.engineFailed(upstreamKind(err));
        throw err;
      },
    );
  }

  /** Wait for engine capacity: excluded from overhead like engine time, but a refusal is not an engine failure. */
  async waiting<T>(wait: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await wait();
    } finally {
      this.engineMs += performance.now() - t0;
    }
  }

  /** The engine answered with an error status: count it and read its body (as engine time). */
  async engineFailure(res: { statusCode: number; body: { text(): Promise<string> } }): Promise<string> {
    this.engineFailed(res.statusCode >= 500 ? 'http_5xx' : 'http_4xx');
    const t0 = performance.now();
    try {
      return await res.body.text();
    } finally {
      this.engineMs += performance.now() - t0;
    }
  }

  private engineFailed(kind: UpstreamErrorKind): void {
    for (const o of this.hooks.engineFailed) o.engineFailed!(this, kind);
  }

  /** A complete JSON answer about to be relayed: its size, and its usage (read here, once). */
  json(buf: Uint8Array): void {
    this.bytesOut += buf.byteLength;
    this.jsonUsage = usageFromJson(buf);
  }

  /**
   * The client's SSE body over the engine's: one stream carrying everything that follows it
   * (first byte, bytes, the usage chunk, the idle guard, the end that settles every observer).
   */
  stream(source: Readable): ReadableStream<Uint8Array> {
    const usage = (this.streamUsage = new StreamUsage());
    return sseFromUpstream(source, [
      {
        chunk: (bytes) => {
          if (this.firstByteAt === 0) this.firstByteAt = performance.now();
          this.bytesOut += bytes.byteLength;
          usage.push(bytes);
        },
        end: (outcome: StreamOutcome) => {
          this.streamEnded = true;
          // An idle timeout is logged and counted like a cut stream: a failure, not an engine error.
          this.outcome = outcome === 'idle' ? 'aborted' : outcome;
          if (outcome === 'error') this.engineFailed('stream');
          if (this.responded) this.end();
        },
        idleMs: this.idleMs,
        // A client that stopped reading: destroy its connection (node-server's response object).
        stalled: this.idleMs > 0 ? this.stallHandler() : undefined,
      },
    ]);
  }

  private stallHandler(): (() => void) | undefined {
    const outgoing = outgoingOf(this.c);
    return outgoing ? () => void outgoing.destroy() : undefined;
  }

  /** The answer, with every header of the request's life on it (one Response, plain headers). */
  reply(body: Uint8Array | ReadableStream<Uint8Array>, status: number, headers: Readonly<Record<string, string>>): Response {
    const out: Record<string, string> = { ...headers };
    this.head(status, out);
    return new Response(body as ConstructorParameters<typeof Response>[0], { status, headers: out });
  }

  /** The handler returned (the first middleware's finally): head the answer if `reply` did not; end unless a stream runs on. */
  returned(): void {
    if (this.responded) return;
    this.responded = true;
    const res = this.c.res;
    if (!this.headed) {
      const out: Record<string, string> = {};
      this.head(res.status, out);
      setResponseHeaders(this.c, out);
    }
    if (this.streamUsage && !this.streamEnded && this.status === 200) return;
    this.end();
  }

  private head(status: number, out: Record<string, string>): void {
    this.headed = true;
    this.status = status;
    this.overheadMs = performance.now() - this.start - this.engineMs;
    for (const o of this.hooks.head) o.head!(this, status, out);
    out['x-request-id'] = this.id;
    out[OVERHEAD_HEADER] = this.overheadMs.toFixed(3);
  }

  private end(): void {
    if (this.done) return;
    this.done = true;
    this.endedAt = performance.now();
    for (const o of this.hooks.end) {
      try {
        o.end!(this);
      } catch (e) {
        // One observer failing must not keep the others (the admission slot) from settling.
        reportError(toPorticoError(e), this.streamUsage ? 'stream' : 'response');
      }
    }
  }
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** A check before the route (header count, API key): throws its refusal. */
export type Check = (c: Context) => void;

/**
 * The first middleware: one RequestLife per request. An incoming x-request-id is honoured
 * (sanitized), else one is made; every answer echoes it. With `guard`, the request's guard runs
 * here too (one middleware layer fewer per request): use it when nothing must come between the
 * two (CORS must: it answers preflights before the API key is asked for; see guard()).
 */
export function lifecycle(o: LifecycleOptions, guard?: { checks: readonly Check[]; onError: (err: Error, c: Context) => Response }): MiddlewareHandler {
  const hooks = new Hooks(o);
  return async (c, next) => {
    const life = new RequestLife(hooks, c);
    c.set('life', life);
    if (guard) {
      try {
        passGuard(c, life, guard.checks);
      } catch (err) {
        // Refused before the route: answered by the app's error handler, as a thrown error is.
        const e = err instanceof Error ? err : new Error(String(err));
        c.error = e;
        c.res = guard.onError(e, c);
        life.returned();
        return;
      }
    }
    try {
      await next();
    } finally {
      life.returned();
    }
  };
}

/**
 * The request's guard as its own middleware, after the lifecycle (and CORS): the checks in order
 * (header count, API key), then the caller is known and the observers may refuse it (rate limits)
 * before its body is read.
 */
export function guard(checks: readonly Check[]): MiddlewareHandler {
  return (c, next) => {
    passGuard(c, c.get('life'), checks);
    return next();
  };
}

function passGuard(c: Context, life: RequestLife, checks: readonly Check[]): void {
  for (let i = 0; i < checks.length; i++) checks[i]!(c);
  life.admit();
}

/** Classify a failed engine call (errors come through transportError or engineError). */
export function upstreamKind(err: unknown): UpstreamErrorKind {
  if (!(err instanceof PorticoError)) return 'transport';
  switch (err.code) {
    case 'engine_unavailable':
      return 'unavailable';
    case 'engine_timeout':
      return 'timeout';
    case 'engine_error':
      // engineError() (an HTTP 5xx) carries no cause; transportError() keeps the socket error.
      return err.cause === undefined ? 'http_5xx' : 'transport';
    default:
      return err.status >= 500 ? 'http_5xx' : 'http_4xx';
  }
}
