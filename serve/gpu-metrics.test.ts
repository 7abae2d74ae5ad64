import { afterAll, describe, expect, it } from 'vitest';
import { Metrics } from '../gateway/metrics.js';
import { fakeGpuTelemetry, POLL_CSV } from '../tests/helpers/fake-gpu-telemetry.js';
import { parseGpuPoll, startGpuPoller } from './gpu-metrics.js';

describe('parseGpuPoll', () => {
  it('reads every field, [N/A] as missing, MiB as bytes, percent as a ratio', () => {
    expect(parseGpuPoll(POLL_CSV)).toEqual([
      { index: '0', uuid: 'GPU-5d5ba0d6-aaaa', name: 'NVIDIA H100 80GB HBM3', utilization: 0.37, memoryUsedBytes: 40960 * 2 ** 20, memoryTotalBytes: 81559 * 2 ** 20, powerWatts: 312.45, powerLimitWatts: 700 },
      { index: '1', uuid: 'GPU-77777777-bbbb', name: 'NVIDIA A100-SXM4-40GB', utilization: undefined, memoryUsedBytes: 1024 * 2 ** 20, memoryTotalBytes: 40960 * 2 ** 20, powerWatts: undefined, powerLimitWatts: 400 },
    ]);
  });

  it('keeps commas in names and skips headers and noise', () => {
    const r = parseGpuPoll('index, uuid, name, utilization.gpu [%], ...\n2, GPU-x, Weird, Name, 5, 1, 2, 3, 4\nNo devices were found\n');
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({ index: '2', name: 'Weird, Name', utilization: 0.05 });
  });
});

describe('startGpuPoller', () => {
  const fake = fakeGpuTelemetry();
  const env = { PATH: fake.path };
  afterAll(() => fake.cleanup());

  it('polls the fake nvidia-smi and feeds the gateway gauges', async () => {
    const metrics = new Metrics();
    const poller = await startGpuPoller({ env, intervalMs: 60_000, onSamples: (s) => metrics.setGpus(s) });
    expect(poller).toBeDefined();
    const text = await metrics.render({ model: 'm', ready: true });
    expect(text).toContain('gpu_utilization{gpu="0",uuid="GPU-5d5ba0d6-aaaa",name="NVIDIA H100 80GB HBM3"} 0.37');
    expect(text).toContain(`gpu_memory_used_bytes{gpu="0",uuid="GPU-5d5ba0d6-aaaa",name="NVIDIA H100 80GB HBM3"} ${40960 * 2 ** 20}`);
    expect(text).toContain(`gpu_memory_total_bytes{gpu="1",uuid="GPU-77777777-bbbb",name="NVIDIA A100-SXM4-40GB"} ${40960 * 2 ** 20}`);
    expect(text).toContain('gpu_power_usage_watts{gpu="0",uuid="GPU-5d5ba0d6-aaaa",name="NVIDIA H100 80GB HBM3"} 312.45');
    expect(text).not.toContain('gpu_utilization{gpu="1"');
    // A GPU that disappears from a later poll disappears from the gauges.
    fake.setCsv(POLL_CSV.split('\n')[1]!);
    await poller!.poll();
    const after = await metrics.render({ model: 'm', ready: true });
    expect(after).not.toContain('gpu="0"');
    expect(after).toContain('gpu_memory_used_bytes{gpu="1"');
    poller!.stop();
  });

  it('does nothing without nvidia-smi, or when it lists no GPU', async () => {
    expect(await startGpuPoller({ env: { PATH: '/nonexistent' }, onSamples: () => {} })).toBeUndefined();
    const empty = fakeGpuTelemetry('No devices were found\n');
    try {
      expect(await startGpuPoller({ env: { PATH: empty.path }, onSamples: () => {} })).toBeUndefined();
    } finally {
      empty.cleanup();
    }
  });
});
