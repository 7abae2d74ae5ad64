// Stream figures. The fake upstream stamps each content chunk with its monotonic clock
// (process.hrtime: CLOCK_MONOTONIC, the same clock in every process on the machine), so the client
// knows for every chunk how long it took from the upstream's write to the client's read:
//   time to first token — request sent → first content chunk read
//   per-chunk transit   — upstream write → client read, for every later chunk
// The same client measures every path; the direct path's numbers are its floor.
import { setMaxListeners } from 'node:events';
import { Pool } from 'undici';
import type { BenchPath } from './paths.js';
import { CHAT_PATH, chatBody } from './paths.js';
import { rssBytes, sleep } from './proc.js';

export interface StreamSample {
  /** µs, one per stream. */
  ttft: number[];
  /** µs, one per content chunk after the first. */
  transit: number[];
  streams: number;
  failed: number;
  firstError?: string;
}

const STAMP = /"content":"@(\d+)"/g;

/** Run paced streams for `seconds`, `concurrency` at a time, and collect TTFT and chunk transit. */
export async function measureStreams(
  p: BenchPath,
  o: { seconds: number; concurrency: number; chunks: number },
): Promise<StreamSample> {
  const pool = new Pool(p.origin, { connections: o.concurrency, keepAliveTimeout: 30_000 });
  const body = chatBody({ stream: true, maxTokens: o.chunks });
  const headers = { ...p.headers, 'content-type': 'application/json' };
  const out: StreamSample = { ttft: [], transit: [], streams: 0, failed: 0 };
  const deadline = performance.now() + o.seconds * 1000;

  const one = async () => {
    const t0 = process.hrtime.bigint();
    const res = await pool.request({ method: 'POST', path: CHAT_PATH, headers, body });
    if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}: ${(await res.body.text()).slice(0, 200)}`);
    let first = true;
    let seen = 0;
    let carry = '';
    let done = false;
    for await (const buf of res.body as AsyncIterable<Buffer>) {
      const now = process.hrtime.bigint();
      carry += buf.toString('utf8');
      const cut = carry.lastIndexOf('\n\n');
      if (cut < 0) continue;
      const events = carry.slice(0, cut);
      carry = carry.slice(cut + 2);
      STAMP.lastIndex = 0;
      for (let m = STAMP.exec(events); m; m = STAMP.exec(events)) {
        seen++;
        if (first) {
          first = false;
          out.ttft.push(Number(now - t0) / 1000);
        } else out.transit.push(Number(now - BigInt(m[1]!)) / 1000);
      }
      if (events.includes('[DONE]')) done = true;
    }
    if (seen !== o.chunks || !done) throw new Error(`stream ended after ${seen} of ${o.chunks} chunks${done ? '' : ' without [DONE]'}`);
  };

  const worker = async () => {
    while (performance.now() < deadline) {
      try {
        await one();
        out.streams++;
      } catch (err) {
        out.failed++;
        out.firstError ??= (err as Error).message;
        if (out.failed > 20) return;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  await pool.close();
  return out;
}

export interface HoldResult {
  /** Streams asked for, and how many had their first chunk before the timeout. */
  wanted: number;
  flowing: number;
  failed: number;
  firstError?: string;
  /** RSS (bytes) of the path's process before and (peak sampled) while all streams are open. */
  idleRss: number;
  loadedRss: number;
  /** ms from the first request to the last stream's first chunk (or the timeout). */
  rampMs: number;
  /** Upstream streams still open 1 s after every client went away (cancellation not propagated). */
  upstreamOpenAfterAbort: number;
  /** ms from the clients leaving until the upstream had no stream open (bounded by `drainTimeoutMs`). */
  upstreamDrainMs: number;
}

/**
 * Open `count` paced streams at once through the path, wait until they all flow, sample the path
 * process's RSS, then drop every client connection mid-stream and see whether the upstream's
 * streams end too.
 */
export async function holdStreams(
  p: BenchPath,
  o: { count: number; chunks: number; rampTimeoutMs: number; drainTimeoutMs: number; upstreamStats: () => Promise<{ streamsOpen: number }> },
): Promise<HoldResult> {
  const idleRss = rssBytes(p.pid);
  const pool = new Pool(p.origin, { connections: o.count, keepAliveTimeout: 30_000, connectTimeout: 20_000 });
  const body = chatBody({ stream: true, maxTokens: o.chunks });
  const headers = { ...p.headers, 'content-type': 'application/json' };
  const ac = new AbortController();
  setMaxListeners(0, ac.signal); // one listener per stream, by design
  let flowing = 0;
  let failed = 0;
  let firstError: string | undefined;
  let lastFirst = 0;
  const t0 = performance.now();
  const all = Array.from({ length: o.count }, async () => {
    try {
      const res = await pool.request({ method: 'POST', path: CHAT_PATH, headers, body, signal: ac.signal });
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
      let first = true;
      for await (const buf of res.body as AsyncIterable<Buffer>) {
        if (first && buf.includes('"content":"@')) {
          first = false;
          flowing++;
          lastFirst = performance.now();
        }
      }
    } catch (err) {
      if (ac.signal.aborted) return;
      failed++;
      firstError ??= (err as Error).message;
    }
  });
  const deadline = t0 + o.rampTimeoutMs;
  while (flowing + failed < o.count && performance.now() < deadline) await sleep(50);
  const rampMs = (flowing + failed >= o.count && lastFirst > 0 ? lastFirst : performance.now()) - t0;
  let loadedRss = 0;
  for (let i = 0; i < 5; i++) {
    loadedRss = Math.max(loadedRss, rssBytes(p.pid));
    await sleep(150);
  }
  const left = performance.now();
  ac.abort();
  await pool.destroy().catch(() => {});
  await Promise.allSettled(all);
  let upstreamOpenAfterAbort = -1;
  let upstreamDrainMs = NaN;
  while (performance.now() - left < o.drainTimeoutMs) {
    const open = (await o.upstreamStats()).streamsOpen;
    const t = performance.now() - left;
    if (t >= 1000 && upstreamOpenAfterAbort < 0) upstreamOpenAfterAbort = open;
    if (open === 0) {
      upstreamDrainMs = t;
      if (upstreamOpenAfterAbort < 0) upstreamOpenAfterAbort = 0;
      break;
    }
    await sleep(50);
  }
  return { wanted: o.count, flowing, failed, firstError, idleRss, loadedRss, rampMs, upstreamOpenAfterAbort, upstreamDrainMs };
}
