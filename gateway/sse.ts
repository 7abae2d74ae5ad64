// SSE passthrough: the engine's bytes go to the client as they arrive, pulled one chunk at a
// time (highWaterMark 0) so a slow client slows the engine read instead of growing a buffer.
//
// Everything that follows a stream (metrics, the admission slot, the idle guard, the rate limit's
// settle) rides on this ONE ReadableStream, as hooks: the request's life (gateway/lifecycle.ts)
// builds it with its own. Nothing may wrap the body in a new Response after the handler: that turns
// node-server's lightweight Response into a full one, and its slow path delays the first byte by a
// timer turn.
import type { Readable } from 'node:stream';
import { PorticoError, reportError, sseErrorText, toPorticoError } from '../core/errors.js';
import { transportError } from './upstream.js';

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  // nginx (the container's front proxy) must not buffer the stream.
  'x-accel-buffering': 'no',
};

const enc = new TextEncoder();

/** The final events of a stream that failed after it started (headers already sent). */
export function sseErrorEvent(err: PorticoError): Uint8Array {
  return enc.encode(sseErrorText(err));
}

/**
 * How a stream ended: `ok` (the engine finished), `aborted` (the client went away), `error` (the
 * engine failed mid-stream: the client got an error event), `idle` (nothing for idleMs).
 */
export type StreamOutcome = 'ok' | 'aborted' | 'error' | 'idle';

export interface StreamHooks {
  /** Each engine chunk, as it passes to the client (not the error events the gateway adds). */
  chunk?: (bytes: Uint8Array) => void;
  /** Exactly once, when the stream ends, whichever way. `err`: what the client was told, if anything. */
  end?: (outcome: StreamOutcome, err?: PorticoError) => void;
  /** End the stream after this long without a chunk (0 or absent: never; the smallest set wins). */
  idleMs?: number;
  /** Idle because the client stopped reading: tear its connection down (default: fail the body). */
  stalled?: () => void;
}

/**
 * The client's SSE body over the engine's response body, with every hook applied in one place.
 *
 * Chunks are pushed as the engine body emits them ('data' events: no async iterator, no extra
 * promise turn per chunk) straight to the client's pending read; when nobody is waiting for one,
 * it is queued (highWaterMark 0: at most that one) and the engine body is paused until the client
 * asks again, so a slow client slows the engine read instead of growing a buffer.
 *
 * Cancellation (the client went away) destroys the engine body, which aborts the engine request.
 * An engine failure mid-stream ends the stream with an error event and `data: [DONE]` instead of a
 * silent truncation. With an idle timeout (the smallest `idleMs` of the hooks): if the client is
 * waiting on a silent engine, it gets a final `engine_timeout` error event and `data: [DONE]`; if
 * the client has stopped reading, its connection is torn down (`stalled`, else the body fails).
 * Either way the engine request is cancelled.
 */
export function sseFromUpstream(body: Readable, hooks: readonly StreamHooks[] = []): ReadableStream<Uint8Array> {
  const chunkHooks = hooks.filter((h) => h.chunk).map((h) => h.chunk!);
  let idleMs = 0;
  let stalled: (() => void) | undefined;
  for (const h of hooks) {
    if (h.idleMs && h.idleMs > 0 && (idleMs === 0 || h.idleMs < idleMs)) idleMs = h.idleMs;
    stalled ??= h.stalled;
  }

  let ctrl!: ReadableStreamDefaultController<Uint8Array>;
  let finished = false;
  let waiting = false; // the client asked for a chunk and has none yet: it is reading
  // The idle timer is not re-armed per chunk: each chunk stamps the time, and the timer, when it
  // fires, sleeps again for what is left of the window since the last chunk.
  let timer: NodeJS.Timeout | undefined;
  let lastChunkAt = 0;

  const finish = (outcome: StreamOutcome, err?: PorticoError) => {
    if (finished) return;
    finished = true;
    if (timer) clearTimeout(timer);
    for (const h of hooks) {
      if (!h.end) continue;
      try {
        h.end(outcome, err);
      } catch (e) {
        // One hook failing must not keep the others (the admission slot) from settling.
        reportError(toPorticoError(e), 'stream');
      }
    }
  };
  const onData = (bytes: Uint8Array) => {
    if (finished) return;
    waiting = false;
    for (const chunk of chunkHooks) {
      try {
        chunk(bytes);
      } catch (e) {
        reportError(toPorticoError(e), 'stream'); // a metrics bug must not cut the client's stream
      }
    }
    ctrl.enqueue(bytes);
    if (idleMs > 0) lastChunkAt = performance.now();
    // Queued, not handed to a waiting read: stop reading the engine until the client asks.
    if ((ctrl.desiredSize ?? 0) < 0) body.pause();
  };
  const onEnd = () => {
    if (finished) return;
    finish('ok');
    ctrl.close();
  };
  const onError = (err: unknown) => {
    if (finished) return; // cancelled by the client or the idle guard: already told
    // The engine died or the connection broke mid-stream: end with an error event the client can
    // parse, then [DONE], instead of a silently truncated stream.
    const e = toPorticoError(transportError(err));
    const final = e.code === 'engine_timeout' ? new PorticoError('engine_unavailable', 'the engine stopped mid-stream') : e;
    finish('error', final);
    reportError(final, 'stream');
    ctrl.enqueue(sseErrorEvent(final));
    ctrl.close();
  };
  const onIdle = () => {
    timer = undefined;
    if (finished) return;
    const left = lastChunkAt + idleMs - performance.now();
    if (left > 1) {
      arm(left);
      return;
    }
    if (waiting) {
      const err = new PorticoError('engine_timeout', `no data for ${idleMs} ms (NIM_STREAM_IDLE_TIMEOUT_MS)`);
      finish('idle', err);
      body.destroy();
      reportError(err, 'stream');
      ctrl.enqueue(sseErrorEvent(err));
      ctrl.close();
      return;
    }
    finish('idle');
    body.destroy();
    if (stalled) stalled();
    // Nobody is reading: fail the body so the server destroys the connection.
    else ctrl.error(new Error('stream idle timeout: the client stopped reading'));
  };
  const arm = (ms: number) => {
    timer = setTimeout(onIdle, ms);
    timer.unref?.();
  };

  return new ReadableStream<Uint8Array>(
    {
      start(c) {
        ctrl = c;
        body.on('data', onData);
        body.on('end', onEnd);
        // Kept for the body's lifetime: an error after the end (or after our own destroy) is ignored.
        body.on('error', onError);
        if (idleMs > 0) {
          lastChunkAt = performance.now();
          arm(idleMs);
        }
      },
      pull() {
        if (finished) return;
        waiting = true;
        if (body.isPaused()) body.resume();
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
