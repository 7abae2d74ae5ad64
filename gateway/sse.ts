// SSE passthrough: the engine's bytes go to the client as they arrive, pulled one chunk at a
// time (highWaterMark 0) so a slow client slows the engine read instead of growing a buffer.
import type { Readable } from 'node:stream';
import { PorticoError, reportError, toPorticoError } from './errors.js';
import { transportError } from './upstream.js';

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  // nginx (issue F) must not buffer the stream.
  'x-accel-buffering': 'no',
};

const enc = new TextEncoder();

/** The final events of a stream that failed after it started (headers already sent). */
export function sseErrorEvent(err: PorticoError): Uint8Array {
  return enc.encode(`data: ${JSON.stringify(err.toJSON())}\n\ndata: [DONE]\n\n`);
}

export interface SseHooks {
  /** Called with each chunk as it passes (metrics taps it for the usage chunk). */
  chunk?: (bytes: Uint8Array) => void;
  /** Called once when the stream ends: ok, client abort, or failure. */
  end?: (outcome: 'ok' | 'aborted' | 'error', err?: PorticoError) => void;
}

export function sseFromUpstream(body: Readable, hooks: SseHooks = {}): ReadableStream<Uint8Array> {
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  let finished = false;
  const finish = (outcome: 'ok' | 'aborted' | 'error', err?: PorticoError) => {
    if (finished) return;
    finished = true;
    hooks.end?.(outcome, err);
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(ctrl) {
        try {
          const r = await it.next();
          if (r.done) {
            finish('ok');
            ctrl.close();
            return;
          }
          hooks.chunk?.(r.value);
          ctrl.enqueue(r.value);
        } catch (err) {
          if (finished) return; // cancelled by the client: nothing left to tell it
          // The engine died or the connection broke mid-stream: end with an error event the
          // client can parse, then [DONE], instead of a silently truncated stream.
          const e = toPorticoError(transportError(err));
          const final = e.code === 'engine_timeout' ? new PorticoError('engine_unavailable', 'the engine stopped mid-stream') : e;
          finish('error', final);
          reportError(final, 'stream');
          ctrl.enqueue(sseErrorEvent(final));
          ctrl.close();
        }
      },
      cancel() {
        // Client went away: drop the engine connection so it stops generating.
        finish('aborted');
        body.destroy();
      },
    },
    { highWaterMark: 0 },
  );
}
