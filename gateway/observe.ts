// Metrics and the access log: two observers of every request's life (gateway/lifecycle.ts).
// They read what the life recorded (status, timing, usage read once from the answer, how a
// stream ended) when it ends, and write nothing back.
//
// Overhead = time in the gateway before the response starts, minus time waiting on the engine.
// For a stream that is the time to its headers (relaying chunks afterwards is not included).
import type { Logger } from 'pino';
import type { LifeObserver } from './lifecycle.js';
import type { Metrics } from './metrics.js';
import { requestHeader } from './node-request.js';

export { OVERHEAD_HEADER, upstreamKind } from './lifecycle.js';

const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']);

/** The request series and the NIM per-model series; model cells by the life's model name. */
export function metricsObserver(metrics: Metrics, routes: readonly { path: string }[]): LifeObserver {
  const paths = new Set(routes.map((r) => r.path));
  return {
    open(life) {
      metrics.inflight++;
      if (life.inference) metrics.inflightInference++;
    },
    engineFailed(_life, kind) {
      metrics.upstreamError(kind);
    },
    end(life) {
      const m = metrics;
      const { c, status } = life;
      m.inflight--;
      const method = c.req.method;
      // Route label: a declared path, else `unmatched` (bounded label values).
      const path = c.req.path;
      const cells = m.requestCells(paths.has(path) ? path : 'unmatched', METHODS.has(method) ? method : 'other', status);
      const seconds = (life.endedAt - life.start) / 1000;
      cells.requests.value++;
      cells.duration.observe(seconds);
      cells.overhead.observe(life.overheadMs / 1000);
      const bytesIn = Number(requestHeader(c, 'content-length'));
      if (bytesIn > 0) cells.bytesIn.value += bytesIn;
      if (life.bytesOut) cells.bytesOut.value += life.bytesOut;
      if (life.firstByteAt) cells.ttfb.observe((life.firstByteAt - life.start) / 1000);
      if (status === 401 || status === 403) m.authFailure(life.error?.code ?? String(status));
      else if (status === 429) m.rejected(life.error?.code ?? String(status));
      if (!life.inference) return;
      m.inflightInference--;
      const mc = m.modelCells(life.model);
      if (status < 400 && life.outcome === 'ok') {
        mc.success.value++;
        mc.e2e.observe(seconds);
      } else mc.failure.value++;
      if (life.firstByteAt) mc.ttft.observe((life.firstByteAt - life.start) / 1000);
      const usage = life.usage;
      if (usage) {
        mc.promptTokens.value += usage.prompt;
        mc.generationTokens.value += usage.completion;
        mc.requestPromptTokens.observe(usage.prompt);
        mc.requestGenerationTokens.observe(usage.completion);
        if (life.firstByteAt && usage.completion > 1) mc.tpot.observe((life.endedAt - life.firstByteAt) / 1000 / (usage.completion - 1));
      }
    },
  };
}

/** One access-log line per request (warn for 5xx but 503), and the cause of an unexpected failure once. */
export function accessLogObserver(logger: Logger): LifeObserver {
  const log = logger.child({ component: 'gateway' });
  return {
    end(life) {
      const { c, status } = life;
      const err = life.error;
      // Unexpected failures: the cause (stack) once, tagged with the request id, for whoever debugs it.
      if (err?.code === 'internal_error' && err.cause !== undefined) {
        log.error({ request_id: life.id, err: err.cause }, `unexpected failure on ${c.req.method} ${c.req.path}`);
      }
      // 503 is "not ready yet" (probes during a model load): expected, not a failure to warn about.
      const level = status >= 500 && status !== 503 ? 'warn' : 'info';
      if (!log.isLevelEnabled(level)) return;
      const usage = life.usage;
      const entry: Record<string, unknown> = {
        request_id: life.id,
        method: c.req.method,
        path: c.req.path,
        status,
        duration_ms: round(life.endedAt - life.start),
        overhead_ms: round(life.overheadMs),
      };
      if (usage) {
        entry.prompt_tokens = usage.prompt;
        entry.completion_tokens = usage.completion;
      }
      if (life.streamUsage) entry.stream = life.outcome;
      if (err) {
        entry.error = err.code;
        if (status >= 500) entry.error_message = err.message;
        // A transport failure says which one (ECONNRESET, other side closed…): the first thing to know.
        const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
        if (status >= 500 && typeof cause?.code === 'string') entry.error_cause = `${cause.code}: ${String(cause.message ?? '')}`;
      }
      log[level](entry, `${c.req.method} ${c.req.path} ${status}`);
    },
  };
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;
