// Prometheus metrics: one prom-client Registry, exposed at /v1/metrics together with the engine's
// own metrics (scraped on demand, cached briefly) so one scrape shows both.
//
// Three groups of series:
//   - the gateway's own (`portico_*`): requests, latency, overhead, bytes, upstream errors, auth
//     failures and 429s, media fetches, process metrics;
//   - NIM's LLM metric names (`num_requests_running`, `prompt_tokens_total`, `e2e_request_latency_seconds`,
//     ... labelled `model_name`), derived from what the gateway saw and what the engine reports;
//   - GPU gauges (`gpu_utilization`, ...) fed by the launcher's nvidia-smi poller.
//
// Hot path: prom-client's labelled children re-hash and re-validate their labels on every call
// (~0.5–0.8 µs each, measured). Per-request series here are "cells" resolved once per label set and
// updated with a plain `+=`; the families below implement prom-client's metric interface, so the
// registry still formats the whole exposition.
import { Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { CounterFamily, ErrorCounts, HistogramFamily, type Cell, type HistogramCell } from './metrics/families.js';
import { ENGINE_KV_USAGE, ENGINE_RUNNING, ENGINE_WAITING, filterEngineExposition, mergeExpositions, type FilteredExposition } from './metrics/engine-exposition.js';

// The parts, by job: cell families (metrics/families.ts) and the engine's exposition
// (metrics/engine-exposition.ts); this module is the registry and what the gateway records.
export * from './metrics/families.js';
export * from './metrics/engine-exposition.js';

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

// ---------------------------------------------------------------------------------------------
// Buckets

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const OVERHEAD_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
// vLLM's buckets for the NIM-named latency histograms, so dashboards built for NIM line up.
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
const TPOT_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5];
const E2E_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60];
const TOKEN_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];
const MEDIA_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

// ---------------------------------------------------------------------------------------------
// Public types

/** Why a call to the engine failed (label of portico_upstream_errors_total). */
export type UpstreamErrorKind = 'unavailable' | 'timeout' | 'transport' | 'http_4xx' | 'http_5xx' | 'stream';

/** One GPU as the launcher's nvidia-smi poller saw it. Undefined values were `[N/A]`. */
export interface GpuSample {
  index: string;
  uuid: string;
  name: string;
  /** 0..1 */
  utilization?: number | undefined;
  memoryUsedBytes?: number | undefined;
  memoryTotalBytes?: number | undefined;
  powerWatts?: number | undefined;
  powerLimitWatts?: number | undefined;
}

/** The media normalizer's hooks (gateway/media/normalize.ts `MediaMetrics`). */
export interface MediaMetricsHooks {
  /** `kind`: image, video or audio (default image). */
  fetch(outcome: 'ok' | 'error', seconds: number, bytes: number, kind?: string): void;
  cacheHit(): void;
  /** `kind`: the media kind refused, or `part` (a part type or modality refused before any fetch). */
  refusal(reason: string, kind?: string): void;
  framesSampled(n: number): void;
  imageTransformed(what: 'resized' | 'converted'): void;
}

/** What /v1/metrics needs from the engine connection (gateway/upstream.ts `Upstream`). */
export interface EngineScrapeTarget {
  getText(path: string, timeoutMs: number): Promise<{ status: number; text: string }>;
}

export interface MetricsOptions {
  /** portico's version: portico_build_info{version}. */
  release?: string;
  /** Export Node process metrics as portico_process_* / portico_nodejs_* (the server does; tests need not). */
  processMetrics?: boolean;
  /** Engine path scraped on each /v1/metrics ('' disables). Default /metrics. */
  engineMetricsPath?: string;
  /** Bound on one engine scrape. Default 2000 ms. */
  scrapeTimeoutMs?: number;
  /** A scrape is reused for this long (many scrapers, one engine request). Default 1000 ms. */
  scrapeCacheMs?: number;
}

export interface RenderedModel {
  engine?: EngineScrapeTarget | undefined;
  /** The served model: the `model_name` label of the NIM series. */
  model: string;
  /** The model's admission limit (gateway/admission.ts): its queue adds to num_requests_waiting. */
  queue?: { readonly inFlight: number; readonly queued: number } | undefined;
  /** Where this engine serves Prometheus text; default: the registry's engineMetricsPath. */
  metricsPath?: string | undefined;
}

export interface RenderContext extends Partial<RenderedModel> {
  /**
   * Several models, each with its engine: their series carry `model_name`, and the engines'
   * expositions are merged family by family with a `model_name` label added. Absent: the one
   * model of `model` / `engine` / `queue`, its engine's exposition appended unchanged.
   */
  models?: RenderedModel[] | undefined;
  ready: boolean;
  /** Wraps the wait for the engine's scrape (the request observation excludes it from overhead). */
  wait?: <T>(call: () => Promise<T>) => Promise<T>;
}

export interface RequestCells {
  requests: Cell;
  duration: HistogramCell;
  overhead: HistogramCell;
  ttfb: HistogramCell;
  bytesIn: Cell;
  bytesOut: Cell;
}

export interface ModelCells {
  promptTokens: Cell;
  generationTokens: Cell;
  success: Cell;
  failure: Cell;
  ttft: HistogramCell;
  tpot: HistogramCell;
  e2e: HistogramCell;
  requestPromptTokens: HistogramCell;
  requestGenerationTokens: HistogramCell;
}

// ---------------------------------------------------------------------------------------------

export class Metrics {
  readonly registry = new Registry();
  /** Requests inside the gateway right now (streams until their last byte). */
  inflight = 0;
  /** Of those, inference requests (running on the engine, as far as the gateway knows). */
  inflightInference = 0;
  readonly media: MediaMetricsHooks;

  private readonly requests = this.counter('portico_http_requests_total', 'HTTP requests answered by the gateway, by route, method and status.', ['route', 'method', 'status']);
  private readonly duration = this.histogram('portico_http_request_duration_seconds', 'Time from request arrival to the last response byte handed to the socket (streams: to the end of the stream).', ['route', 'method'], LATENCY_BUCKETS);
  private readonly ttfb = this.histogram('portico_http_time_to_first_byte_seconds', 'Streaming responses: time from request arrival to the first event relayed to the client.', ['route'], LATENCY_BUCKETS);
  private readonly overhead = this.histogram('portico_gateway_overhead_seconds', 'Time spent in the gateway itself before the response starts, excluding time waiting on the engine (the x-portico-overhead-ms header).', ['route'], OVERHEAD_BUCKETS);
  private readonly bytesIn = this.counter('portico_http_request_bytes_total', 'Request body bytes received (declared Content-Length).', ['route']);
  private readonly bytesOut = this.counter('portico_http_response_bytes_total', 'Response body bytes relayed from the engine (JSON bodies and SSE streams).', ['route']);
  private readonly upstreamErrors = this.counter('portico_upstream_errors_total', 'Failed calls to the engine, by kind: unavailable, timeout, transport, http_4xx, http_5xx, stream (broke mid-stream).', ['kind']);
  private readonly authFailures = this.counter('portico_auth_failures_total', 'Requests refused for a missing, invalid or insufficient API key (401/403), by error code.', ['code']);
  private readonly rejections = this.counter('portico_rejected_requests_total', 'Requests refused with 429 (admission limit or rate limit), by error code.', ['code']);
  private readonly mediaFetches = this.counter('portico_media_fetches_total', 'Media URL fetches made by the gateway, by outcome and media kind.', ['outcome', 'kind']);
  private readonly mediaFetchSeconds = this.histogram('portico_media_fetch_duration_seconds', 'Duration of image URL fetches (redirects included).', [], MEDIA_BUCKETS);
  private readonly mediaFetchBytes = this.counter('portico_media_fetched_bytes_total', 'Bytes received by media URL fetches, by media kind.', ['kind']);
  private readonly mediaCacheHits = this.counter('portico_media_cache_hits_total', 'Images served from the media cache or a fetch already in flight.', []);
  private readonly mediaRefusals = this.counter('portico_media_refusals_total', 'Media parts refused by the gateway, by reason and media kind (part: a part type or modality).', ['reason', 'kind']);
  private readonly mediaFrames = this.counter('portico_media_frames_sampled_total', 'Frames sampled from videos for models that take images but not video.', []);
  private readonly mediaTransformed = this.counter('portico_media_images_transformed_total', 'Images downscaled (NIM_MEDIA_RESIZE_MAX_PIXELS) or converted to a type the engine decodes.', ['what']);

  // NIM LLM metric names (docs.nvidia.com/nim/large-language-models/latest/observability.html).
  private readonly promptTokens = this.counter('prompt_tokens_total', 'Number of prefill tokens processed (from the usage the engine reported to the gateway).', ['model_name']);
  private readonly generationTokens = this.counter('generation_tokens_total', 'Number of generation tokens processed (from the usage the engine reported to the gateway).', ['model_name']);
  private readonly ttft = this.histogram('time_to_first_token_seconds', 'Histogram of time to first token in seconds (streaming requests, measured at the gateway).', ['model_name'], TTFT_BUCKETS);
  private readonly tpot = this.histogram('time_per_output_token_seconds', 'Histogram of time per output token in seconds (streaming requests with usage, measured at the gateway).', ['model_name'], TPOT_BUCKETS);
  private readonly e2e = this.histogram('e2e_request_latency_seconds', 'Histogram of end to end request latency in seconds (successful inference requests).', ['model_name'], E2E_BUCKETS);
  private readonly requestPromptTokens = this.histogram('request_prompt_tokens', 'Histogram of prefill tokens per request.', ['model_name'], TOKEN_BUCKETS);
  private readonly requestGenerationTokens = this.histogram('request_generation_tokens', 'Histogram of generation tokens per request.', ['model_name'], TOKEN_BUCKETS);
  private readonly success = this.counter('request_success_total', 'Number of inference requests that completed successfully.', ['model_name']);
  private readonly failure = this.counter('request_failure_total', 'Number of inference requests that failed (error status, broken or abandoned stream).', ['model_name']);

  private readonly running: Gauge;
  private readonly waiting: Gauge;
  private readonly kvUsage: Gauge;
  private readonly engineUp: Gauge;
  private readonly scrapeSeconds: Gauge;
  private readonly engineReady: Gauge;
  private readonly queued: Gauge;
  private readonly gpuGauges: Record<'utilization' | 'memUsed' | 'memTotal' | 'power' | 'powerLimit', Gauge>;

  private readonly requestCache = new Map<string, Map<string, Map<number, RequestCells>>>();
  private readonly modelCache = new Map<string, ModelCells>();
  private readonly engineMetricsPath: string;
  private readonly scrapeTimeoutMs: number;
  private readonly scrapeCacheMs: number;
  private readonly scrapes = new Map<EngineScrapeTarget, { at: number; promise: Promise<Scrape> }>();

  constructor(opts: MetricsOptions = {}) {
    const reg = [this.registry];
    new Gauge({ name: 'portico_build_info', help: 'portico build: always 1, labelled with the version.', labelNames: ['version'], registers: reg }).set({ version: opts.release ?? 'unknown' }, 1);
    const self = this;
    new Gauge({
      name: 'portico_http_requests_in_flight',
      help: 'Requests inside the gateway now (a stream counts until its last byte).',
      registers: reg,
      collect() {
        this.set(self.inflight);
      },
    });
    this.queued = new Gauge({ name: 'portico_admission_queued_requests', help: 'Inference requests waiting in the gateway for an admission slot (NIM_MAX_QUEUE).', registers: reg });
    this.registry.registerMetric(new ErrorCounts() as unknown as Metric);
    this.engineReady = new Gauge({ name: 'portico_engine_ready', help: '1 when the engine answers its health check (readiness), else 0.', registers: reg });
    this.engineUp = new Gauge({ name: 'portico_engine_metrics_up', help: "1 if the last scrape of the engine's metrics succeeded, else 0.", registers: reg });
    this.scrapeSeconds = new Gauge({ name: 'portico_engine_metrics_scrape_duration_seconds', help: "Duration of the last scrape of the engine's metrics.", registers: reg });
    this.running = new Gauge({ name: 'num_requests_running', help: 'Number of requests currently running on the engine (the engine’s count, else the gateway’s in-flight inference requests).', labelNames: ['model_name'], registers: reg });
    this.waiting = new Gauge({ name: 'num_requests_waiting', help: 'Number of requests waiting to be processed by the engine.', labelNames: ['model_name'], registers: reg });
    this.kvUsage = new Gauge({ name: 'gpu_cache_usage_perc', help: 'KV-cache usage reported by the engine. 1 means 100 percent usage.', labelNames: ['model_name'], registers: reg });
    const gpuLabels = ['gpu', 'uuid', 'name'];
    this.gpuGauges = {
      utilization: new Gauge({ name: 'gpu_utilization', help: 'GPU utilization rate (0.0-1.0), from nvidia-smi.', labelNames: gpuLabels, registers: reg }),
      memUsed: new Gauge({ name: 'gpu_memory_used_bytes', help: 'Used GPU memory, in bytes, from nvidia-smi.', labelNames: gpuLabels, registers: reg }),
      memTotal: new Gauge({ name: 'gpu_memory_total_bytes', help: 'Total GPU memory, in bytes, from nvidia-smi.', labelNames: gpuLabels, registers: reg }),
      power: new Gauge({ name: 'gpu_power_usage_watts', help: 'GPU instantaneous power, in watts, from nvidia-smi.', labelNames: gpuLabels, registers: reg }),
      powerLimit: new Gauge({ name: 'gpu_power_limit_watts', help: 'GPU power limit, in watts, from nvidia-smi.', labelNames: gpuLabels, registers: reg }),
    };
    if (opts.processMetrics) {
      collectDefaultMetrics({ register: this.registry, prefix: 'portico_' });
      // Gauges named *_total fail promtool's lint; the same counts are in nodejs_active_*{type}.
      for (const n of ['handles', 'requests', 'resources']) this.registry.removeSingleMetric(`portico_nodejs_active_${n}_total`);
    }
    this.engineMetricsPath = opts.engineMetricsPath ?? '/metrics';
    this.scrapeTimeoutMs = opts.scrapeTimeoutMs ?? 2000;
    this.scrapeCacheMs = opts.scrapeCacheMs ?? 1000;

    this.media = {
      fetch: (outcome, seconds, bytes, kind = 'image') => {
        this.mediaFetches.cell(outcome, kind).value++;
        this.mediaFetchSeconds.cell().observe(seconds);
        if (bytes > 0) this.mediaFetchBytes.cell(kind).value += bytes;
      },
      cacheHit: () => void this.mediaCacheHits.cell().value++,
      refusal: (reason, kind = 'image') => void this.mediaRefusals.cell(reason, kind).value++,
      framesSampled: (n) => void (this.mediaFrames.cell().value += n),
      imageTransformed: (what) => void this.mediaTransformed.cell(what).value++,
    };
    // Series that should read 0 rather than be absent before the first event.
    for (const kind of ['image', 'video', 'audio']) this.mediaFetchBytes.cell(kind);
    this.mediaFrames.cell();
    this.mediaCacheHits.cell();
  }

  private counter(name: string, help: string, labelNames: string[]): CounterFamily {
    const f = new CounterFamily(name, help, labelNames);
    this.registry.registerMetric(f as unknown as Metric);
    return f;
  }

  private histogram(name: string, help: string, labelNames: string[], buckets: number[]): HistogramFamily {
    const f = new HistogramFamily(name, help, labelNames, buckets);
    this.registry.registerMetric(f as unknown as Metric);
    return f;
  }

  /** Cells for one (route, method, status): resolved once, then a Map hit per request. */
  requestCells(route: string, method: string, status: number): RequestCells {
    // Nested by label (no key string built per request): route → method → status.
    let byMethod = this.requestCache.get(route);
    if (!byMethod) this.requestCache.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (!byStatus) byMethod.set(method, (byStatus = new Map()));
    let c = byStatus.get(status);
    if (!c) {
      c = {
        requests: this.requests.cell(route, method, String(status)),
        duration: this.duration.cell(route, method),
        overhead: this.overhead.cell(route),
        ttfb: this.ttfb.cell(route),
        bytesIn: this.bytesIn.cell(route),
        bytesOut: this.bytesOut.cell(route),
      };
      byStatus.set(status, c);
    }
    return c;
  }

  /** NIM-named series of one model. */
  modelCells(model: string): ModelCells {
    let c = this.modelCache.get(model);
    if (!c) {
      c = {
        promptTokens: this.promptTokens.cell(model),
        generationTokens: this.generationTokens.cell(model),
        success: this.success.cell(model),
        failure: this.failure.cell(model),
        ttft: this.ttft.cell(model),
        tpot: this.tpot.cell(model),
        e2e: this.e2e.cell(model),
        requestPromptTokens: this.requestPromptTokens.cell(model),
        requestGenerationTokens: this.requestGenerationTokens.cell(model),
      };
      this.modelCache.set(model, c);
    }
    return c;
  }

  upstreamError(kind: UpstreamErrorKind): void {
    this.upstreamErrors.cell(kind).value++;
  }

  authFailure(code: string): void {
    this.authFailures.cell(code).value++;
  }

  rejected(code: string): void {
    this.rejections.cell(code).value++;
  }

  /** Replace the GPU gauges with the latest poll (GPUs that vanished disappear). */
  setGpus(samples: readonly GpuSample[]): void {
    const g = this.gpuGauges;
    for (const gauge of Object.values(g)) gauge.reset();
    for (const s of samples) {
      const labels = { gpu: s.index, uuid: s.uuid, name: s.name };
      if (s.utilization !== undefined) g.utilization.set(labels, s.utilization);
      if (s.memoryUsedBytes !== undefined) g.memUsed.set(labels, s.memoryUsedBytes);
      if (s.memoryTotalBytes !== undefined) g.memTotal.set(labels, s.memoryTotalBytes);
      if (s.powerWatts !== undefined) g.power.set(labels, s.powerWatts);
      if (s.powerLimitWatts !== undefined) g.powerLimit.set(labels, s.powerLimitWatts);
    }
  }

  /**
   * The /v1/metrics body: the gateway registry, then the engine's own exposition unchanged
   * (minus any family whose name the gateway already exports, so no name is declared twice).
   */
  async render(ctx: RenderContext): Promise<string> {
    const several = ctx.models !== undefined;
    const models: RenderedModel[] = ctx.models ?? [{ model: ctx.model ?? '', engine: ctx.engine, queue: ctx.queue }];
    const scrapeAll = () => Promise.all(models.map((m) => (m.engine ? this.scrapeEngine(m.engine, m.metricsPath ?? this.engineMetricsPath) : undefined)));
    const scrapes = await (ctx.wait ? ctx.wait(scrapeAll) : scrapeAll());
    const tried = scrapes.filter((x): x is Scrape => x !== undefined);
    if (tried.length) {
      this.engineUp.set(tried.every((x) => x.text !== undefined) ? 1 : 0);
      this.scrapeSeconds.set(Math.max(...tried.map((x) => x.seconds)));
    }
    const known = new Set(this.registry.getMetricsAsArray().map((m) => m.name));
    const filtered = scrapes.map((x) => (x?.text ? filterEngineExposition(x.text, known) : undefined));
    this.running.reset();
    this.waiting.reset();
    this.kvUsage.reset();
    let queued = 0;
    models.forEach((m, i) => {
      const f: FilteredExposition | undefined = filtered[i];
      const label = { model_name: m.model };
      const pick = (names: string[], combine: (vs: number[]) => number): number | undefined => {
        for (const n of names) {
          const vs = f?.samples.get(n);
          if (vs?.length) return combine(vs);
        }
        return undefined;
      };
      const sum = (vs: number[]) => vs.reduce((a, b) => a + b, 0);
      // Without the engine's count, the gateway's own in-flight inference requests (one model: all of them).
      this.running.set(label, pick(ENGINE_RUNNING, sum) ?? (several ? (m.queue?.inFlight ?? 0) : this.inflightInference));
      this.waiting.set(label, (pick(ENGINE_WAITING, sum) ?? 0) + (m.queue?.queued ?? 0));
      queued += m.queue?.queued ?? 0;
      const kv = pick(ENGINE_KV_USAGE, (vs) => Math.max(...vs));
      if (kv !== undefined) this.kvUsage.set(label, kv);
      this.modelCells(m.model);
    });
    this.queued.set(queued);
    this.engineReady.set(ctx.ready ? 1 : 0);
    const own = await this.registry.metrics();
    const engineText = several ? mergeExpositions(filtered.map((f, i) => ({ text: f?.text ?? '', model: models[i]!.model }))) : (filtered[0]?.text ?? '');
    return engineText ? `${own}\n${engineText}` : own;
  }

  private scrapeEngine(engine: EngineScrapeTarget, path: string): Promise<Scrape> | undefined {
    if (!path) return undefined;
    const now = performance.now();
    const cached = this.scrapes.get(engine);
    if (cached && now - cached.at < this.scrapeCacheMs) return cached.promise;
    const promise = (async (): Promise<Scrape> => {
      const t0 = performance.now();
      const seconds = () => (performance.now() - t0) / 1000;
      try {
        const r = await engine.getText(path, this.scrapeTimeoutMs);
        // Prometheus text only: trtllm-serve answers /metrics with JSON iteration stats.
        const ok = r.status === 200 && !/^\s*[[{]/.test(r.text);
        return { text: ok ? r.text : undefined, seconds: seconds() };
      } catch {
        return { text: undefined, seconds: seconds() };
      }
    })();
    this.scrapes.set(engine, { at: now, promise });
    return promise;
  }
}

/** One engine scrape: its text (undefined: failed or not Prometheus text) and how long it took. */
interface Scrape {
  text: string | undefined;
  seconds: number;
}
