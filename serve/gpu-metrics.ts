// Background GPU telemetry for /v1/metrics: polls nvidia-smi (found on the PATH of the given env,
// as launcher/gpus.ts does for the inventory) every few seconds and hands the samples to the
// gateway's gauges. No nvidia-smi, or one that lists no GPU on the first poll: no poller at all.
import { execa } from 'execa';
import type { GpuSample } from '../gateway/metrics.js';
import { which } from '../launcher/gpus.js';
import type { Logger } from '../core/logger.js';

export const GPU_POLL_QUERY = [
  '--query-gpu=index,uuid,name,utilization.gpu,memory.used,memory.total,power.draw,power.limit',
  '--format=csv,noheader,nounits',
];

const MIB = 1024 * 1024;

/** A number, or undefined for `[N/A]`, `[Not Supported]` and the like. */
function num(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const t = raw.trim();
  return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : undefined;
}

/**
 * Parse the output of `nvidia-smi` with GPU_POLL_QUERY. The name may contain commas, so the
 * fixed fields are read from both ends. Rows that do not start with an index are skipped.
 */
export function parseGpuPoll(text: string): GpuSample[] {
  const out: GpuSample[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const f = raw.split(',').map((s) => s.trim());
    if (f.length < 8 || !/^\d+(:\d+)?$/.test(f[0]!)) continue;
    const tail = f.slice(-5);
    const util = num(tail[0]);
    const used = num(tail[1]);
    const total = num(tail[2]);
    out.push({
      index: f[0]!,
      uuid: f[1]!,
      name: f.slice(2, f.length - 5).join(', '),
      utilization: util === undefined ? undefined : util / 100,
      memoryUsedBytes: used === undefined ? undefined : used * MIB,
      memoryTotalBytes: total === undefined ? undefined : total * MIB,
      powerWatts: num(tail[3]),
      powerLimitWatts: num(tail[4]),
    });
  }
  return out;
}

export interface GpuPoller {
  /** Poll now (also what the timer does); resolves with what was seen. */
  poll(): Promise<GpuSample[]>;
  stop(): void;
}

export interface GpuPollerOptions {
  env: NodeJS.ProcessEnv;
  onSamples: (samples: GpuSample[]) => void;
  log?: Logger;
  intervalMs?: number;
  timeoutMs?: number;
}

/**
 * Start polling if nvidia-smi exists and reports a GPU. Resolves undefined when there is nothing
 * to poll. Runs never overlap; a failed poll keeps the previous values and is logged at debug.
 */
export async function startGpuPoller(opts: GpuPollerOptions): Promise<GpuPoller | undefined> {
  const smi = which('nvidia-smi', opts.env);
  if (!smi) return undefined;
  const timeout = opts.timeoutMs ?? 10_000;
  let running: Promise<GpuSample[]> | undefined;
  const poll = (): Promise<GpuSample[]> =>
    (running ??= (async () => {
      try {
        const r = await execa(smi, GPU_POLL_QUERY, { env: opts.env, extendEnv: false, timeout, reject: false, stdin: 'ignore' });
        if (r.failed) {
          opts.log?.debug(`nvidia-smi poll failed: ${String(r.stderr || r.shortMessage).split('\n')[0]}`);
          return [];
        }
        const samples = parseGpuPoll(String(r.stdout));
        opts.onSamples(samples);
        return samples;
      } finally {
        running = undefined;
      }
    })());
  const first = await poll();
  if (!first.length) {
    opts.log?.debug('nvidia-smi lists no GPU: no GPU metrics');
    return undefined;
  }
  const timer = setInterval(() => void poll(), opts.intervalMs ?? 5000);
  timer.unref();
  return { poll, stop: () => clearInterval(timer) };
}
