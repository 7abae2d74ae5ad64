// GPU gauges and a vLLM-style engine in one scrape: the real launcher fronts a scripted engine
// (NIM_ENGINE_URL) that exposes vLLM's metric names, with a fake nvidia-smi first on PATH.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VLLM_METRICS } from './helpers/engine-metrics.js';
import { fakeEngine, type FakeEngine } from './helpers/fake-engine.js';
import { fakeGpuTelemetry, type FakeGpuTelemetry } from './helpers/fake-gpu-telemetry.js';
import { promtoolCheck } from './helpers/prometheus.js';
import { startStack, type Stack } from './helpers/stack.js';

let engine: FakeEngine;
let gpus: FakeGpuTelemetry;
let stack: Stack;

beforeAll(async () => {
  engine = await fakeEngine();
  engine.on('/v1/models', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [{ id: 'm', max_model_len: 4096 }] })));
  engine.on('/metrics', (_q, res) => void res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(VLLM_METRICS));
  gpus = fakeGpuTelemetry();
  stack = await startStack({ NIM_ENGINE_URL: engine.url, PATH: gpus.path });
});
afterAll(async () => {
  await stack?.stop();
  await engine?.close();
  gpus?.cleanup();
});

describe('GPU and engine series in /v1/metrics', () => {
  it('fake nvidia-smi GPU gauges appear, next to the engine’s vllm:* series and the NIM gauges derived from them', async () => {
    const text = await (await fetch(`${stack.url}/v1/metrics`)).text();
    expect(text).toContain('gpu_utilization{gpu="0",uuid="GPU-5d5ba0d6-aaaa",name="NVIDIA H100 80GB HBM3"} 0.37');
    expect(text).toContain(`gpu_memory_used_bytes{gpu="0",uuid="GPU-5d5ba0d6-aaaa",name="NVIDIA H100 80GB HBM3"} ${40960 * 2 ** 20}`);
    expect(text).toContain(`gpu_memory_total_bytes{gpu="1",uuid="GPU-77777777-bbbb",name="NVIDIA A100-SXM4-40GB"} ${40960 * 2 ** 20}`);
    expect(text).toContain('gpu_power_usage_watts{gpu="0",uuid="GPU-5d5ba0d6-aaaa",name="NVIDIA H100 80GB HBM3"} 312.45');
    expect(text).toContain('vllm:num_requests_running{engine="0",model_name="m"} 3.0');
    expect(text).toContain('num_requests_running{model_name="m"} 3');
    expect(text).toContain('gpu_cache_usage_perc{model_name="m"} 0.25');
    // The engine's Python process metrics pass through; the gateway's own are portico_*.
    expect(text).toContain('process_cpu_seconds_total 27.2');
    expect(text).toMatch(/^portico_process_cpu_seconds_total \d/m);
    const r = await promtoolCheck(text);
    expect(r.errors).toEqual([]);
    for (const p of r.problems) expect(p).toMatch(/^vllm:\S+ metric names should not contain ':'$/);
  });
});
