// Per-request observation: timing, the x-portico-overhead-ms header, metrics and the access log.
//
// The `observe` middleware runs first (after the request id) and creates one RequestObservation
// per request (`c.get('obs')`). Handlers report engine time through it (`obs.engine(...)`), hand
// it the engine's JSON body (usage) or take its SSE hooks (first byte, usage chunk, stream end).
// Everything is settled once: when the response is returned, or, for a stream, at its last byte.
//
// Overhead = time in the gateway before the response starts, minus time waiting on the engine.
// For a stream that is the time to its headers (relaying chunks afterwards is not included).
import type { Context, MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import { PorticoError, toPorticoError } from '../core/errors.js';
import type { Metrics, UpstreamErrorKind } from './metrics.js';
import type { StreamHooks } from './sse.js';
import { StreamUsage, usageFromJson, type Usage } from './usage.js';

export const OVERHEAD_HEADER = 'x-portico-overhead-ms';

export interface ObservedRoute {
  method: string;
  path: string;
  /** Runs inference on the engine: counted in the NIM request/token series. */
  inference: boolean;
}

export interface ObserveOptions {
  metrics: Metrics;
  /** Access log and error log destination; none: no logging. */
  log?: Logger | undefined;
  /** The served model; read per request (an external engine's model id is learnt after start). */
  model: { readonly id: string };
  routes: readonly ObservedRoute[];
}

const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']);

class Observer {
  readonly metrics: Metrics;
  readonly log: Logger | undefined;
  readonly model: { readonly id: string };
  private readonly paths: Set<string>;
  private readonly inference: Set<string>;

  constructor(o: ObserveOptions) {
    this.metrics = o.metrics;
    this.log = o.log?.child({ component: 'gateway' });
    this.model = o.model;
    this.paths = new Set(o.routes.map((r) => r.path));
    this.inference = new Set(o.routes.filter((r) => r.inference).map((r) => `${r.method} ${r.path}`));
  }

  /** Route label: a declared path, else `unmatched` (bounded label values). */
  route(path: string): string {
    return this.paths.has(path) ? path : 'unmatched';
  }
  method(m: string): string {
    return METHODS.has(m) ? m : 'other';
  }
  isInference(method: string, path: string): boolean {
    return this.inference.has(`${method} ${path}`);
  }
}

export function observe(opts: ObserveOptions): MiddlewareHandler {
  const o = new Observer(opts);
  return async (c, next) => {
    const obs = new RequestObservation(o, c);
    c.set('obs', obs);
    try {
      await next();
    } finally {
      obs.respond();
    }
  };
}

type Outcome = 'ok' | 'aborted' | 'error';

export class RequestObservation {
  readonly start = performance.now();
  /** Time spent waiting on the engine (or for its capacity) so far (ms): not gateway overhead. */
  engineMs = 0;
  /** Gateway time before the response started (ms); set when the handler returns. */
  overheadMs = 0;
  /** The model the request named (set by the handler): the `model_name` of its NIM series. */
  model: string | undefined;
  private readonly inference: boolean;
  private usage: Usage | undefined;
  private streamUsage: StreamUsage | undefined;
  private firstByteAt = 0;
  private bytesOut = 0;
  private responded = false;
  private streamEnded = false;
  private outcome: Outcome = 'ok';
  private done = false;

  constructor(
    private readonly o: Observer,
    private readonly c: Context,
  ) {
    o.metrics.inflight++;
    this.inference = o.isInference(c.req.method, c.req.path);
    if (this.inference) o.metrics.inflightInference++;
  }

  /** Run an engine call: its duration is excluded from overhead; failures are counted by kind. */
  async engine<T>(call: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await call();
    } catch (err) {
      // A client that went away aborts the engine call: that is not the engine failing.
      if (!this.c.req.raw.signal.aborted) this.o.metrics.upstreamError(upstreamKind(err));
      throw err;
    } finally {
      this.engineMs += performance.now() - t0;
    }
  }

  /**
   * Wait for engine capacity (the admission queue): excluded from overhead like engine time, but
   * a refusal is not an engine failure.
   */
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
    this.o.metrics.upstreamError(res.statusCode >= 500 ? 'http_5xx' : 'http_4xx');
    const t0 = performance.now();
    try {
      return await res.body.text();
    } finally {
      this.engineMs += performance.now() - t0;
    }
  }

  /** A complete JSON body from the engine, about to be relayed: note its size and usage. */
  body(buf: ArrayBuffer | Uint8Array): void {
    this.bytesOut += buf.byteLength;
    this.usage = usageFromJson(buf);
  }

  /** Hooks for sseFromUpstream: first byte, bytes, the usage chunk, and the end of the stream. */
  stream(): StreamHooks {
    const su = (this.streamUsage = new StreamUsage());
    return {
      chunk: (bytes) => {
        if (this.firstByteAt === 0) this.firstByteAt = performance.now();
        this.bytesOut += bytes.byteLength;
        su.push(bytes);
      },
      end: (outcome) => {
        this.streamEnded = true;
        // An idle timeout is logged and counted like a cut stream: a failure, not an engine error.
        this.outcome = outcome === 'idle' ? 'aborted' : outcome;
        if (outcome === 'error') this.o.metrics.upstreamError('stream');
        if (this.responded) this.finish(200);
      },
    };
  }

  /** The handler returned: stamp the overhead header; settle now unless a stream is still running. */
  respond(): void {
    if (this.responded) return;
    this.responded = true;
    const res = this.c.res;
    this.overheadMs = performance.now() - this.start - this.engineMs;
    try {
      // Set on the Response's own headers: c.header() after the handler would copy the Response.
      res.headers.set(OVERHEAD_HEADER, this.overheadMs.toFixed(3));
    } catch {
      /* immutable headers (a fetched Response): no header, still measured */
    }
    if (this.streamUsage && !this.streamEnded && res.status === 200) return;
    this.finish(res.status);
  }

  private finish(status: number): void {
    if (this.done) return;
    this.done = true;
    const now = performance.now();
    const { o, c } = this;
    const m = o.metrics;
    m.inflight--;
    const method = c.req.method;
    const path = c.req.path;
    const route = o.route(path);
    const cells = m.requestCells(route, o.method(method), status);
    const seconds = (now - this.start) / 1000;
    cells.requests.value++;
    cells.duration.observe(seconds);
    cells.overhead.observe(this.overheadMs / 1000);
    const bytesIn = Number(c.req.header('content-length'));
    if (bytesIn > 0) cells.bytesIn.value += bytesIn;
    if (this.bytesOut) cells.bytesOut.value += this.bytesOut;
    if (this.firstByteAt) cells.ttfb.observe((this.firstByteAt - this.start) / 1000);
    // What the error handler answered with (anything not a PorticoError became internal_error).
    const err = c.error === undefined ? undefined : toPorticoError(c.error);
    if (status === 401 || status === 403) m.authFailure(err?.code ?? String(status));
    else if (status === 429) m.rejected(err?.code ?? String(status));

    const usage = this.usage ?? this.streamUsage?.result();
    if (this.inference) {
      m.inflightInference--;
      const mc = m.modelCells(this.model ?? o.model.id);
      if (status < 400 && this.outcome === 'ok') {
        mc.success.value++;
        mc.e2e.observe(seconds);
      } else mc.failure.value++;
      if (this.firstByteAt) mc.ttft.observe((this.firstByteAt - this.start) / 1000);
      if (usage) {
        mc.promptTokens.value += usage.prompt;
        mc.generationTokens.value += usage.completion;
        mc.requestPromptTokens.observe(usage.prompt);
        mc.requestGenerationTokens.observe(usage.completion);
        if (this.firstByteAt && usage.completion > 1) mc.tpot.observe((now - this.firstByteAt) / 1000 / (usage.completion - 1));
      }
    }
    this.accessLog(status, seconds, usage, err);
  }

  private accessLog(status: number, seconds: number, usage: Usage | undefined, err: PorticoError | undefined): void {
    const log = this.o.log;
    if (!log) return;
    const c = this.c;
    // Unexpected failures: the cause (stack) once, tagged with the request id, for whoever debugs it.
    if (err?.code === 'internal_error' && err.cause !== undefined) {
      log.error({ request_id: c.get('requestId') as string | undefined, err: err.cause }, `unexpected failure on ${c.req.method} ${c.req.path}`);
    }
    // 503 is "not ready yet" (probes during a model load): expected, not a failure to warn about.
    const level = status >= 500 && status !== 503 ? 'warn' : 'info';
    if (!log.isLevelEnabled(level)) return;
    const entry: Record<string, unknown> = {
      request_id: c.get('requestId') as string | undefined,
      method: c.req.method,
      path: c.req.path,
      status,
      duration_ms: round(seconds * 1000),
      overhead_ms: round(this.overheadMs),
    };
    if (usage) {
      entry.prompt_tokens = usage.prompt;
      entry.completion_tokens = usage.completion;
    }
    if (this.streamUsage) entry.stream = this.outcome;
    if (err) {
      entry.error = err.code;
      if (status >= 500) entry.error_message = err.message;
      // A transport failure says which one (ECONNRESET, other side closed…): the first thing to know.
      const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
      if (status >= 500 && typeof cause?.code === 'string') entry.error_cause = `${cause.code}: ${String(cause.message ?? '')}`;
    }
    log[level](entry, `${c.req.method} ${c.req.path} ${status}`);
  }
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

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
