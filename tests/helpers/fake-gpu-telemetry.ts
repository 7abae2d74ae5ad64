// A fake `nvidia-smi` for GPU telemetry tests: answers serve/gpu-metrics.ts's poll query with
// fixed CSV (editable through `setCsv`), fails on anything else. Put `dir` first on PATH.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPU_POLL_QUERY } from '../../serve/gpu-metrics.js';

export const POLL_CSV = `0, GPU-5d5ba0d6-aaaa, NVIDIA H100 80GB HBM3, 37, 40960, 81559, 312.45, 700.00
1, GPU-77777777-bbbb, NVIDIA A100-SXM4-40GB, [N/A], 1024, 40960, [Not Supported], 400.00
`;

export interface FakeGpuTelemetry {
  dir: string;
  /** PATH with the fake first. */
  path: string;
  setCsv(csv: string): void;
  cleanup(): void;
}

export function fakeGpuTelemetry(csv = POLL_CSV): FakeGpuTelemetry {
  const dir = mkdtempSync(join(tmpdir(), 'portico-fake-smi-'));
  const data = join(dir, 'poll.csv');
  writeFileSync(data, csv);
  const exe = join(dir, 'nvidia-smi');
  writeFileSync(exe, `#!/bin/sh\nif [ "$1" = "${GPU_POLL_QUERY[0]}" ]; then cat '${data}'; exit 0; fi\necho "fake nvidia-smi: unexpected $*" >&2\nexit 9\n`);
  chmodSync(exe, 0o755);
  return {
    dir,
    path: `${dir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    setCsv: (c) => writeFileSync(data, c),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
