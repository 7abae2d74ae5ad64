import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LLAMA_METRICS, VLLM_METRICS } from '../tests/helpers/engine-metrics.js';
import { promtoolCheck } from '../tests/helpers/prometheus.js';
import { filterEngineExposition, HistogramFamily, Metrics, type EngineScrapeTarget } from './metrics.js';

const engineAnswering = (text: string, calls = { n: 0 }): EngineScrapeTarget => ({
  getText: async () => {
    calls.n++;
    return { status: 200, text };
  },
});

/** Every series of the gateway populated, as after some traffic. */
function busyMetrics(): Metrics {
  const m = new Metrics({ release: '1.2.3', processMetrics: true });
  const cells = m.requestCells('/v1/chat/completions', 'POST', 200);
  cells.requests.value += 3;
  cells.duration.observe(0.2);
  cells.overhead.observe(0.00004);
  cells.ttfb.observe(0.01);
  cells.bytesIn.value += 100;
  cells.bytesOut.value += 300;
  const mc = m.modelCells('portico/tiny-vlm');
  mc.promptTokens.value += 20;
  mc.generationTokens.value += 5;
  mc.success.value++;
  mc.ttft.observe(0.02);
  mc.tpot.observe(0.005);
  mc.e2e.observe(0.4);
  mc.requestPromptTokens.observe(20);
  mc.requestGenerationTokens.observe(5);
  m.upstreamError('http_5xx');
  m.authFailure('invalid_api_key');
  m.rejected('too_many_requests');
  m.media.fetch('ok', 0.05, 1234);
  m.media.cacheHit();
  m.media.refusal('blocked_address');
  m.media.fetch('ok', 0.5, 5_000_000, 'video');
  m.media.refusal('modality', 'part');
  m.media.refusal('too_long', 'video');
  m.media.framesSampled(8);
  m.media.imageTransformed('resized');
  m.media.imageTransformed('converted');
  m.setGpus([{ index: '0', uuid: 'GPU-1', name: 'NVIDIA H100 80GB HBM3', utilization: 0.5, memoryUsedBytes: 1e9, memoryTotalBytes: 8e10, powerWatts: 300, powerLimitWatts: 700 }]);
  return m;
}

describe('exposition', () => {
  it("passes promtool check metrics with no problem at all (the gateway's own series)", async () => {
    const text = await busyMetrics().render({ model: 'portico/tiny-vlm', ready: true, queue: { inFlight: 1, queued: 2 } });
    const r = await promtoolCheck(text);
    expect(r.errors).toEqual([]);
    expect(r.problems).toEqual([]);
    expect(r.exitCode).toBe(0);
    for (const name of [
      'portico_http_requests_total{route="/v1/chat/completions",method="POST",status="200"} 3',
      'prompt_tokens_total{model_name="portico/tiny-vlm"} 20',
      'generation_tokens_total{model_name="portico/tiny-vlm"} 5',
      'num_requests_running{model_name="portico/tiny-vlm"} 0',
      'num_requests_waiting{model_name="portico/tiny-vlm"} 2',
      'gpu_utilization{gpu="0",uuid="GPU-1",name="NVIDIA H100 80GB HBM3"} 0.5',
      'gpu_memory_total_bytes{gpu="0",uuid="GPU-1",name="NVIDIA H100 80GB HBM3"} 80000000000',
      'portico_build_info{version="1.2.3"} 1',
      'portico_engine_ready 1',
      'portico_media_refusals_total{reason="blocked_address",kind="image"} 1',
      // By media kind (issue 11): fetched, refused by reason, bytes, frames sampled, images resized.
      'portico_media_fetches_total{outcome="ok",kind="image"} 1',
      'portico_media_fetches_total{outcome="ok",kind="video"} 1',
      'portico_media_fetched_bytes_total{kind="video"} 5000000',
      'portico_media_fetched_bytes_total{kind="audio"} 0',
      'portico_media_refusals_total{reason="modality",kind="part"} 1',
      'portico_media_refusals_total{reason="too_long",kind="video"} 1',
      'portico_media_frames_sampled_total 8',
      'portico_media_images_transformed_total{what="resized"} 1',
      'portico_media_images_transformed_total{what="converted"} 1',
    ]) {
      expect(text).toContain(name);
    }
    expect(text).toMatch(/^portico_process_cpu_seconds_total \d/m);
  });

  it('appends the engine exposition unchanged; promtool finds nothing but the engine’s own naming', async () => {
    for (const engineText of [LLAMA_METRICS, VLLM_METRICS]) {
      const text = await busyMetrics().render({ model: 'm', ready: true, engine: engineAnswering(engineText) });
      const r = await promtoolCheck(text);
      expect(r.errors).toEqual([]);
      // Engines use `engine:` prefixes (reserved for recording rules by convention) and
      // llama.cpp declares one counter without _total; nothing else may be reported.
      for (const p of r.problems) expect(p).toMatch(/^(vllm|llamacpp):\S+ (metric names should not contain ':'|counter metrics should have "_total" suffix)$/);
      for (const line of engineText.split('\n').filter((l) => l && !l.includes('prompt_tokens_total{') && !l.includes(' prompt_tokens_total '))) {
        expect(text.split('\n')).toContain(line);
      }
    }
  });

  it('derives the NIM gauges from the engine, else from the gateway', async () => {
    const llama = await busyMetrics().render({ model: 'm', ready: true, engine: engineAnswering(LLAMA_METRICS), queue: { inFlight: 0, queued: 1 } });
    expect(llama).toContain('num_requests_running{model_name="m"} 1');
    expect(llama).toContain('num_requests_waiting{model_name="m"} 3');
    expect(llama).not.toMatch(/^gpu_cache_usage_perc\{/m);
    const vllm = await busyMetrics().render({ model: 'm', ready: true, engine: engineAnswering(VLLM_METRICS) });
    expect(vllm).toContain('num_requests_running{model_name="m"} 3');
    expect(vllm).toContain('num_requests_waiting{model_name="m"} 4');
    expect(vllm).toContain('gpu_cache_usage_perc{model_name="m"} 0.25');
    // The engine's own prompt_tokens_total collides with the gateway's: only the gateway's is kept.
    expect(vllm.match(/^# TYPE prompt_tokens_total /gm)).toHaveLength(1);
    expect(vllm).not.toContain('prompt_tokens_total{model_name="m"} 5.0');
    const m = new Metrics();
    m.inflightInference = 2;
    expect(await m.render({ model: 'x', ready: false })).toContain('num_requests_running{model_name="x"} 2');
  });

  it('scrapes the engine once per cache window and reports a failed scrape', async () => {
    const calls = { n: 0 };
    const m = new Metrics({ scrapeCacheMs: 60_000 });
    const engine = engineAnswering(LLAMA_METRICS, calls);
    await m.render({ model: 'm', ready: true, engine });
    const [a, b] = await Promise.all([m.render({ model: 'm', ready: true, engine }), m.render({ model: 'm', ready: true, engine })]);
    expect(calls.n).toBe(1);
    expect(a).toContain('llamacpp:requests_processing 1');
    expect(b).toContain('portico_engine_metrics_up 1');

    const down = new Metrics();
    const text = await down.render({ model: 'm', ready: false, engine: { getText: () => Promise.reject(new Error('ECONNREFUSED')) } });
    expect(text).toContain('portico_engine_metrics_up 0');
    expect(text).not.toContain('llamacpp:');
    const json = await new Metrics().render({ model: 'm', ready: true, engine: engineAnswering('[{"iter": 1}]') });
    expect(json).toContain('portico_engine_metrics_up 0');
    expect(json).not.toContain('iter');
  });

  it('formats histograms exactly as prom-client does', async () => {
    const buckets = [0.1, 0.5, 1];
    const ours = new Registry();
    const fam = new HistogramFamily('h_seconds', 'help', ['route'], buckets);
    ours.registerMetric(fam as never);
    const theirs = new Registry();
    const h = new Histogram({ name: 'h_seconds', help: 'help', labelNames: ['route'], buckets, registers: [theirs] });
    for (const v of [0.05, 0.1, 0.3, 0.7, 2, 5]) {
      fam.cell('/a').observe(v);
      h.labels('/a').observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });
});

describe('filterEngineExposition', () => {
  it('drops taken families, repeated metadata and # EOF; keeps the rest byte for byte', () => {
    const text = `# HELP a_total x\r\n# TYPE a_total counter\na_total{x="1 2"} 3 1700000000\n# HELP taken y\n# TYPE taken histogram\ntaken_bucket{le="1"} 1\ntaken_sum 1\ntaken_count 1\nuntyped_thing 4\n# HELP a_total x\n# EOF\n`;
    const r = filterEngineExposition(text, new Set(['taken']));
    expect(r.text).toBe('# HELP a_total x\n# TYPE a_total counter\na_total{x="1 2"} 3 1700000000\nuntyped_thing 4\n');
    expect(filterEngineExposition('', new Set()).text).toBe('');
  });

  it('reads the values the NIM gauges need, labels with spaces included', () => {
    const r = filterEngineExposition('vllm:num_requests_running{model_name="a b}"} 2\nvllm:num_requests_running{model_name="c"} 1.5\n', new Set());
    expect(r.samples.get('vllm:num_requests_running')).toEqual([2, 1.5]);
  });
});
