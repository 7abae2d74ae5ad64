// The one way the gateway talks to the engine: an undici Pool (keep-alive, no fetch overhead).
// Maps transport failures to the error table so callers only ever see PorticoErrors.
import { Pool, errors as undiciErrors, type Dispatcher } from 'undici';
import { PorticoError } from '../core/errors.js';

export interface UpstreamRequest {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  signal?: AbortSignal;
}

export type UpstreamResponse = Dispatcher.ResponseData;

/**
 * How long an idle engine connection is kept. The engines close idle keep-alive connections after
 * 5 s without saying so (cpp-httplib in llama-server: CPPHTTPLIB_KEEPALIVE_TIMEOUT_SECOND; uvicorn in
 * vLLM: timeout_keep_alive) and send no Keep-Alive hint, so a socket kept longer is reused just as the
 * engine closes it and the request fails ("connection to the engine failed"). undici's idle timers
 * tick about once a second, hence 2 s, well inside the engines' 5.
 */
export const ENGINE_IDLE_KEEPALIVE_MS = 2_000;

export class Upstream {
  readonly origin: string;
  private readonly pool: Pool;
  /**
   * Health probes and metrics scrapes get their own two connections: inference load holding every
   * pool connection must never starve readiness (a queued probe timing out would turn us 503).
   */
  private readonly control: Pool;

  /**
   * `connections`: the most engine requests open at once. Size it from the admission limit: a
   * smaller pool would queue requests silently inside undici (no 429, no metric). Default: no bound.
   */
  private readonly onRetry: ((err: unknown) => void) | undefined;

  constructor(baseUrl: string, opts: { connections?: number | null; onRetry?: (err: unknown) => void } = {}) {
    const url = new URL(baseUrl);
    this.onRetry = opts.onRetry;
    this.origin = url.origin;
    this.pool = new Pool(url.origin, {
      connections: opts.connections ?? null,
      // Generations can run for minutes between bytes: no body/headers timeout here, the client's
      // disconnect (signal) is what ends an abandoned request.
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: ENGINE_IDLE_KEEPALIVE_MS,
      connectTimeout: 5_000,
    });
    this.control = new Pool(url.origin, { connections: 2, keepAliveTimeout: ENGINE_IDLE_KEEPALIVE_MS, connectTimeout: 5_000 });
  }

  /** Requests sent a second time because the engine dropped the connection before answering. */
  retries = 0;

  request(req: UpstreamRequest): Promise<UpstreamResponse> {
    // The request's own fields are undici's: passed as they are, failures mapped on the way out.
    return this.pool.request(req).catch((err: unknown) => {
      if (!droppedBeforeAnswer(err) || req.signal?.aborted) throw transportError(err);
      // The engine closed the connection without a byte of answer: it did not take the request
      // (a keep-alive socket closed as we wrote, or llama-server dropping connections under
      // abort churn). The body is in hand, so send it once more, like nginx on a cached upstream
      // connection; a second drop is the engine's answer.
      this.retries++;
      this.onRetry?.(err);
      return this.pool.request(req).catch(rethrowTransport);
    });
  }

  /** GET a document on the control connections, bounded in time. Used for health and scrapes. */
  async getText(path: string, timeoutMs: number): Promise<{ status: number; text: string }> {
    try {
      const res = await this.control.request({ method: 'GET', path, signal: AbortSignal.timeout(timeoutMs) });
      return { status: res.statusCode, text: await res.body.text() };
    } catch (err) {
      throw transportError(err);
    }
  }

  /**
   * End every open engine request (and the streams relaying them) with `reason`: the pool is
   * destroyed with it, so each request fails with exactly that error. (Not AbortSignal.any with a
   * long-lived signal per request: on Node 20 that leaks an entry per request, nodejs/node#55351.)
   */
  abortAll(reason: PorticoError): void {
    void this.pool.destroy(reason).catch(() => {});
  }

  async close(): Promise<void> {
    await Promise.all([this.pool.destroy().catch(() => {}), this.control.destroy().catch(() => {})]);
  }
}

/** The connection ended or was reset before any response byte: nothing of the answer was seen. */
function droppedBeforeAnswer(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE';
}

const rethrowTransport = (err: unknown): never => {
  throw transportError(err);
};

/** undici/socket failure → engine_unavailable (cannot connect) or engine_error. */
export function transportError(err: unknown): PorticoError {
  if (err instanceof PorticoError) return err;
  const code = (err as { code?: string }).code ?? '';
  const name = (err as { name?: string }).name ?? '';
  if (name === 'AbortError' || err instanceof undiciErrors.RequestAbortedError) {
    return new PorticoError('engine_timeout', 'request aborted', { cause: err });
  }
  if (name === 'TimeoutError' || err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) {
    return new PorticoError('engine_timeout', 'timed out', { cause: err });
  }
  if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED'].includes(code)) {
    return new PorticoError('engine_unavailable', 'connection to the engine failed', { cause: err });
  }
  return new PorticoError('engine_error', 'upstream request failed', { cause: err });
}
