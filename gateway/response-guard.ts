// Helpers for middleware that act on a response after the handler: set headers on it, and follow
// a streamed (SSE) body to its end, which comes long after the handler has returned.
import type { Context } from 'hono';
import { PorticoError, reportError } from './errors.js';
import { sseErrorEvent } from './sse.js';

export function isEventStream(res: Response): boolean {
  return (res.headers.get('content-type') ?? '').startsWith('text/event-stream');
}

/** Set headers on c.res, whichever way the response was built (fetch responses are immutable). */
export function setResponseHeaders(c: Context, headers: Record<string, string>): void {
  try {
    for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
  } catch {
    c.res = new Response(c.res.body, c.res);
    for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
  }
}

export type StreamOutcome = 'ok' | 'aborted' | 'error' | 'idle';

export interface GuardOptions {
  /** End the stream when no chunk has been delivered for this long (0 = never). */
  idleMs?: number;
  /** Each chunk as it passes to the client. */
  onChunk?: (bytes: Uint8Array) => void;
  /** Exactly once: the stream ended (done, client gone, failure, or idle timeout). */
  onEnd?: (outcome: StreamOutcome) => void;
  /** Idle because the client stopped reading: tear its connection down (default: fail the body). */
  onStalled?: () => void;
}

/**
 * Wrap a streamed body without buffering (highWaterMark 0: a chunk is pulled from the source only
 * when the client side asks for one). Cancellation passes through to the source, which aborts the
 * engine request. With `idleMs`, a stream that delivers nothing for that long is ended: if the
 * client is waiting on a silent engine, it gets a final `engine_timeout` error event and
 * `data: [DONE]`; if the client has stopped reading, the connection is torn down. Either way the
 * engine request is cancelled.
 */
export function guardStream(src: ReadableStream<Uint8Array>, opts: GuardOptions): ReadableStream<Uint8Array> {
  const reader = src.getReader();
  let ended = false;
  let waiting = false; // a pull is waiting on the source: the client is reading
  let timer: NodeJS.Timeout | undefined;
  let ctrlRef: ReadableStreamDefaultController<Uint8Array> | undefined;

  const end = (outcome: StreamOutcome) => {
    if (ended) return;
    ended = true;
    if (timer) clearTimeout(timer);
    opts.onEnd?.(outcome);
  };
  const onIdle = () => {
    const ctrl = ctrlRef;
    if (ended || !ctrl) return;
    const clientReading = waiting;
    end('idle');
    reader.cancel('idle timeout').catch(() => {});
    if (clientReading) {
      const err = new PorticoError('engine_timeout', `no data for ${opts.idleMs} ms (NIM_STREAM_IDLE_TIMEOUT_MS)`);
      reportError(err, 'stream');
      ctrl.enqueue(sseErrorEvent(err));
      ctrl.close();
    } else if (opts.onStalled) {
      opts.onStalled();
    } else {
      // Nobody is reading: fail the body so the server destroys the connection.
      ctrl.error(new Error('stream idle timeout: the client stopped reading'));
    }
  };
  const arm = () => {
    if (!opts.idleMs) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(onIdle, opts.idleMs);
    timer.unref?.();
  };

  return new ReadableStream<Uint8Array>(
    {
      start(ctrl) {
        ctrlRef = ctrl;
        arm();
      },
      async pull(ctrl) {
        if (ended) return;
        waiting = true;
        let r: Awaited<ReturnType<typeof reader.read>>;
        try {
          r = await reader.read();
        } catch (err) {
          waiting = false;
          if (ended) return;
          end('error');
          ctrl.error(err);
          return;
        }
        waiting = false;
        if (ended) return; // idle timeout fired while waiting
        if (r.done) {
          end('ok');
          ctrl.close();
          return;
        }
        opts.onChunk?.(r.value);
        ctrl.enqueue(r.value);
        arm();
      },
      cancel(reason) {
        end('aborted');
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
