// `npm run bench [-- --quick]`: portico against what a user would pick instead, in one run on one
// machine. A fake OpenAI upstream (bench/fake-upstream.ts) answers; each path in turn — direct,
// nginx, portico, Portkey — is measured, interleaved round by round, and every figure is the
// median of the rounds with their min–max. Writes bench/results/latest.{json,md,svg}
// (`--quick`: quick.{json,md,svg}). See bench/README.md for what is measured and how.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { loadSettings } from '../core/config.js';
import { benchConfig } from './config.js';
import { imageServer, noisePng, type ImageMode, type ImageRun } from './image.js';
import { runMediaBench, type MediaResults } from './media.js';
import {
  CHAT_PATH,
  PATH_LABELS,
  ROOT,
  chatBody,
  checkPath,
  direct,
  startNginx,
  startPortico,
  startFloor,
  startPortkey,
  type BenchPath,
  type PathName,
} from './paths.js';
import { cpuSeconds, sleep, startChild, waitUntil, type Child } from './proc.js';
import { cell, fmt, percentile, stat, svgChart, target, type Panel, type Series, type Stat, type Target } from './report.js';
import { holdStreams, measureStreams, type HoldResult } from './streams.js';
import { PORTKEY_NODE_SERVER_PIN, PORTKEY_VERSION, findTools } from './tools.js';
import { runWrk } from './wrk.js';

const execFileP = async (cmd: string, args: string[], opts: { encoding: 'utf8'; timeout: number }) => (await promisify(execFile)(cmd, args, opts)).stdout;

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    paths: { type: 'string' },
    phases: { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});

if (flags.help) {
  process.stdout.write(`usage: npm run bench [-- --quick] [--rounds N] [--paths direct,nginx,portico,portkey[,floor]]
                 [--phases latency,throughput,streams,hold,image,media] [--out DIR]
  --phases media   only the video/resize figures (no gateways started; writes media.{json,md})
  --quick   about a minute and a half: shorter phases, one round of the 2,000-stream figure (writes quick.*)
  BENCH_CANDIDATE_DIST=/other/dist  also measure that build of portico (column portico′), interleaved
  BENCH_CPU_PROF=portico|portkey  run that gateway under --cpu-prof (profiles in $TMPDIR/portico-bench-profiles)
`);
  process.exit(0);
}

const quick = flags.quick === true;
const CFG = {
  rounds: Number(flags.rounds ?? 5),
  warmS: 1,
  latencyS: quick ? 1 : 3,
  rpsS: quick ? 1 : 3,
  rpsConnections: 64,
  streamS: quick ? 0.6 : 3,
  streamConcurrency: 4,
  streamChunks: quick ? 8 : 16,
  streamIntervalMs: 5,
  holdRounds: quick ? 1 : Number(flags.rounds ?? 5),
  holdCount: 2000,
  holdIntervalMs: 200,
  holdChunks: quick ? 50 : 75,
  holdRampMs: quick ? 8_000 : 10_000,
  imageRounds: Number(flags.rounds ?? 5),
  imageIterations: quick ? 4 : 10,
  imageBytes: 4 * 1024 * 1024,
};
const ALL_PHASES = ['latency', 'throughput', 'streams', 'hold', 'image', 'media'] as const;
type Phase = (typeof ALL_PHASES)[number];
const phases = new Set<Phase>((flags.phases?.split(',') as Phase[] | undefined) ?? [...ALL_PHASES]);
const wantedPaths = new Set<PathName>((flags.paths?.split(',') as PathName[] | undefined) ?? ['direct', 'nginx', 'portico', 'portkey']);
const outDir = flags.out ?? join(ROOT, 'bench', 'results');
const outName = quick ? 'quick' : 'latest';

const started = performance.now();
const log = (line: string) => process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}\n`);

/** Same order each round, rotated by one, so no path always runs first (or right after another). */
const rotate = <T>(xs: T[], r: number): T[] => xs.map((_, i) => xs[(i + r) % xs.length]!);

/** Video and resize figures (bench/media.ts): in a full run after the image figure, or alone. */
async function mediaPhase(work: string): Promise<MediaResults> {
  return runMediaBench({ rounds: quick ? 1 : Math.min(CFG.imageRounds, 3), iterations: quick ? 2 : 4, root: ROOT, work, log });
}

function writeMedia(media: MediaResults, name: string): void {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, `${name}.json`), `${JSON.stringify(media.json, null, 2)}\n`);
  writeFileSync(join(outDir, `${name}.md`), media.markdown);
  process.stdout.write(media.markdown);
  log(`wrote ${join(outDir, name)}.{json,md}`);
}

async function main(): Promise<number> {
  if (phases.size === 1 && phases.has('media')) {
    const work = mkdtempSync(join(tmpdir(), 'portico-bench-'));
    try {
      writeMedia(await mediaPhase(work), quick ? 'media-quick' : 'media');
      return 0;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  const { cachePath } = loadSettings({ NIM_CACHE_PATH: process.env.NIM_CACHE_PATH });
  const tools = findTools(cachePath, log, { installPortkey: wantedPaths.has('portkey') });
  for (const n of tools.notes) log(`NOTE ${n}`);
  const work = mkdtempSync(join(tmpdir(), 'portico-bench-'));
  const children: Child[] = [];
  const paths: BenchPath[] = [];
  const loadStart = loadavg();
  if (loadStart[0]! > cpus().length) {
    log(`WARNING the machine is busy (load average ${loadStart[0]!.toFixed(2)} on ${cpus().length} cores): figures will be noisy`);
  }
  try {
    // The fake upstream, in its own process.
    const up = startChild('fake-upstream', process.execPath, [join(ROOT, 'dist/bench/fake-upstream.js'), '0']);
    children.push(up);
    let upPort = 0;
    await waitUntil('the fake upstream to listen', async () => ((upPort = Number(/"port":(\d+)/.exec(up.output())?.[1] ?? 0)), upPort > 0), 10_000, up);
    const upOrigin = `http://127.0.0.1:${upPort}`;
    const upGet = async <T>(path: string): Promise<T> => (await (await request(`${upOrigin}${path}`)).body.json()) as T;
    const upstreamStats = () => upGet<{ streamsOpen: number; streamsCancelled: number }>('/_bench/stats');
    const pace = (ms: number) => upGet(`/_bench/config?intervalMs=${ms}`);
    log(`fake upstream on ${upOrigin}`);

    // The paths.
    const maxFiles = hardNofile();
    const starters: Partial<Record<PathName, () => Promise<BenchPath>>> = {};
    if (wantedPaths.has('direct')) starters.direct = async () => direct(upPort, up.pid);
    if (wantedPaths.has('nginx') && tools.nginx) starters.nginx = () => startNginx(tools.nginx!, work, upPort, maxFiles);
    if (wantedPaths.has('portico')) starters.portico = () => startPortico(upPort);
    if (benchConfig().BENCH_CANDIDATE_DIST) starters.candidate = () => startPortico(upPort, 'candidate');
    if (wantedPaths.has('floor')) starters.floor = () => startFloor(upPort);
    if (wantedPaths.has('portkey') && tools.portkey) starters.portkey = () => startPortkey(tools.portkey!, tools.portkeyDir, upPort);
    for (const start of Object.values(starters)) paths.push(await start());
    /** A fresh process for the path (the memory figure must not carry what earlier phases left). */
    const restart = async (p: BenchPath): Promise<BenchPath> => {
      await p.stop();
      const fresh = await starters[p.name]!();
      paths[paths.indexOf(p)] = fresh;
      return fresh;
    };
    await pace(CFG.streamIntervalMs);
    for (const p of paths) await checkPath(p);
    log(`paths: ${paths.map((p) => `${p.name} ${p.origin}`).join(', ')}`);

    const lat: Partial<Record<PathName, { p50: number; p99: number; p999: number }[]>> = {};
    const rps: Series = {};
    const cpuPerReq: Series = {};
    const ttft: Partial<Record<PathName, { p50: number; p99: number }[]>> = {};
    const transit: Partial<Record<PathName, { p50: number; p99: number }[]>> = {};
    const hold: Partial<Record<PathName, HoldResult[]>> = {};
    const image: Partial<Record<ImageMode, ImageRun[]>> = {};
    const problems: string[] = [];
    const push = <T>(rec: Partial<Record<PathName, T[]>>, p: PathName, v: T) => (rec[p] ??= []).push(v);

    const wrkOk = (name: string, r: { errors: Record<string, number>; requests: number }) => {
      const bad = Object.entries(r.errors).filter(([, n]) => n > 0);
      if (bad.length) problems.push(`${name}: wrk errors ${bad.map(([k, n]) => `${k}=${n}`).join(' ')} of ${r.requests} requests`);
    };

    if (tools.wrk && (phases.has('latency') || phases.has('throughput'))) {
      log('warm-up: every path under load once');
      for (const p of paths) {
        await runWrk({ wrk: tools.wrk, url: p.origin + CHAT_PATH, body: chatBody(), headers: p.headers, connections: CFG.rpsConnections, seconds: CFG.warmS, scriptDir: work, name: `${p.name}-warm` });
      }
    }

    for (let r = 0; r < CFG.rounds; r++) {
      const order = rotate(paths, r);
      log(`round ${r + 1}/${CFG.rounds}: ${order.map((p) => p.name).join(' → ')}`);
      if (tools.wrk && phases.has('latency')) {
        for (const p of order) {
          const w = await runWrk({ wrk: tools.wrk, url: p.origin + CHAT_PATH, body: chatBody(), headers: p.headers, connections: 1, seconds: CFG.latencyS, scriptDir: work, name: `${p.name}-c1` });
          wrkOk(`${p.name} latency`, w);
          push(lat, p.name, { p50: w.p50, p99: w.p99, p999: w.p999 });
        }
      }
      if (tools.wrk && phases.has('throughput')) {
        for (const p of order) {
          const cpu0 = cpuSeconds(p.pid);
          const w = await runWrk({ wrk: tools.wrk, url: p.origin + CHAT_PATH, body: chatBody(), headers: p.headers, connections: CFG.rpsConnections, seconds: CFG.rpsS, scriptDir: work, name: `${p.name}-c64` });
          const cpu = cpuSeconds(p.pid) - cpu0;
          wrkOk(`${p.name} throughput`, w);
          push(rps, p.name, w.rps);
          // CPU time per request is steadier than req/s on a shared machine (10 ms tick resolution).
          push(cpuPerReq, p.name, (cpu * 1e6) / Math.max(1, w.requests));
        }
      }
      if (phases.has('streams')) {
        for (const p of order) {
          const s = await measureStreams(p, { seconds: CFG.streamS, concurrency: CFG.streamConcurrency, chunks: CFG.streamChunks });
          if (s.failed) problems.push(`${p.name} streams: ${s.failed} failed (${s.firstError})`);
          push(ttft, p.name, { p50: percentile(s.ttft, 50), p99: percentile(s.ttft, 99) });
          push(transit, p.name, { p50: percentile(s.transit, 50), p99: percentile(s.transit, 99) });
        }
      }
    }

    if (phases.has('hold')) {
      await pace(CFG.holdIntervalMs);
      const gateways = paths.filter((p) => p.name !== 'direct');
      const count = Math.min(CFG.holdCount, Math.floor((maxFiles - 200) / 2));
      if (count < CFG.holdCount) problems.push(`hold: the open-file limit (${maxFiles}) allows ${count} streams, not ${CFG.holdCount}`);
      for (let r = 0; r < CFG.holdRounds; r++) {
        for (const old of rotate(gateways, r)) {
          const p = await restart(paths.find((x) => x.name === old.name) ?? old);
          await sleep(300); // let start-up settle before the idle reading
          log(`${count} paced streams through ${p.name}, freshly started (round ${r + 1}/${CFG.holdRounds})`);
          const h = await holdStreams(p, { count, chunks: CFG.holdChunks, rampTimeoutMs: CFG.holdRampMs, drainTimeoutMs: CFG.holdChunks * CFG.holdIntervalMs + 5_000, upstreamStats });
          push(hold, p.name, h);
          if (h.flowing < h.wanted) problems.push(`${p.name} hold: only ${h.flowing} of ${h.wanted} streams flowing after ${Math.round(h.rampMs)} ms${h.firstError ? ` (${h.firstError})` : ''}`);
          // holdStreams waited for the upstream to finish what the gateway did not cancel; if it
          // still has streams, the next path's figures would be disturbed.
          const still = (await upstreamStats()).streamsOpen;
          if (still) problems.push(`${p.name} hold: ${still} upstream streams still open ${Math.round((CFG.holdChunks * CFG.holdIntervalMs + 5_000) / 1000)} s after the clients left`);
        }
      }
      await pace(CFG.streamIntervalMs);
    }

    // Gateways are no longer needed: free the cores for the image figure.
    for (const p of paths) await p.stop();

    let imageBytes = 0;
    if (phases.has('image')) {
      const png = noisePng(CFG.imageBytes);
      imageBytes = png.length;
      const srv = await imageServer(png);
      const modes: ImageMode[] = ['baseline', 'normalize', 'normalize+json'];
      try {
        for (let r = 0; r < CFG.imageRounds; r++) {
          log(`image normalization, ${(png.length / 1048576).toFixed(1)} MB PNG (round ${r + 1}/${CFG.imageRounds})`);
          for (const m of rotate(modes, r)) {
            // Async: the image server answering the child lives in this process.
            const out = await execFileP(process.execPath, ['--expose-gc', join(ROOT, 'dist/bench/image.js'), m, srv.url, String(CFG.imageIterations)], { encoding: 'utf8', timeout: 120_000 });
            const run = JSON.parse(out.trim().split('\n').pop()!) as ImageRun;
            (image[m] ??= []).push(run);
          }
        }
      } catch (err) {
        problems.push(`image: ${(err as Error).message.split('\n').slice(0, 3).join(' ')}`);
      } finally {
        srv.server.close();
      }
    }

    if (phases.has('media')) {
      try {
        writeMedia(await mediaPhase(work), `${outName}-media`);
      } catch (err) {
        problems.push(`media: ${(err as Error).message.split('\n').slice(0, 3).join(' ')}`);
      }
    }

    const loadEnd = loadavg();
    const results = summarize({ lat, rps, cpuPerReq, ttft, transit, hold, image, imageBytes, problems, tools, loadStart, loadEnd, paths: paths.map((p) => p.name) });
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, `${outName}.json`), `${JSON.stringify(results.json, null, 2)}\n`);
    writeFileSync(join(outDir, `${outName}.md`), results.markdown);
    writeFileSync(join(outDir, `${outName}.svg`), results.svg);
    process.stdout.write(results.markdown);
    log(`wrote ${join(outDir, outName)}.{json,md,svg} in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    for (const p of problems) log(`PROBLEM ${p}`);
    return 0;
  } catch (err) {
    // A path that died is the likeliest cause: say which, with its last words.
    for (const p of paths) {
      if (p.child?.exited()) log(`${p.name} exited during the run; its last output:\n${p.child.output().slice(-3000)}`);
    }
    throw err;
  } finally {
    for (const p of paths) await p.stop().catch(() => {});
    for (const c of children.reverse()) await c.stop().catch(() => {});
    rmSync(work, { recursive: true, force: true });
  }
}

function hardNofile(): number {
  try {
    const n = Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) ? Math.min(n, 65_536) : 65_536;
  } catch {
    return 4096;
  }
}

// ---- figures, targets, outputs ---------------------------------------------------------------

interface Collected {
  lat: Partial<Record<PathName, { p50: number; p99: number; p999: number }[]>>;
  rps: Series;
  cpuPerReq: Series;
  ttft: Partial<Record<PathName, { p50: number; p99: number }[]>>;
  transit: Partial<Record<PathName, { p50: number; p99: number }[]>>;
  hold: Partial<Record<PathName, HoldResult[]>>;
  image: Partial<Record<ImageMode, ImageRun[]>>;
  imageBytes: number;
  problems: string[];
  tools: ReturnType<typeof findTools>;
  loadStart: number[];
  loadEnd: number[];
  paths: PathName[];
}

type PerPath = Partial<Record<PathName, Stat>>;

function figures(c: Collected) {
  const P = c.paths;
  const pick = <T>(rec: Partial<Record<PathName, T[]>>, f: (v: T) => number): PerPath =>
    Object.fromEntries(P.map((p) => [p, stat((rec[p] ?? []).map(f))])) as PerPath;
  /** Round-paired: path − direct (or ÷) within each round, then the median over rounds. */
  const paired = <T>(rec: Partial<Record<PathName, T[]>>, f: (v: T) => number, base: PathName, op: 'minus' | 'ratio'): PerPath =>
    Object.fromEntries(
      P.filter((p) => p !== base).map((p) => {
        const a = rec[p] ?? [];
        const b = rec[base] ?? [];
        const vals = a.slice(0, b.length).map((v, i) => (op === 'minus' ? f(v) - f(b[i]!) : f(v) / f(b[i]!)));
        return [p, stat(vals)];
      }),
    ) as PerPath;
  const id = (x: number) => x;

  const fig = {
    latency_p50_us: pick(c.lat, (v) => v.p50),
    latency_p99_us: pick(c.lat, (v) => v.p99),
    latency_p999_us: pick(c.lat, (v) => v.p999),
    added_latency_p50_us: paired(c.lat, (v) => v.p50, 'direct', 'minus'),
    added_latency_p99_us: paired(c.lat, (v) => v.p99, 'direct', 'minus'),
    latency_p50_x_direct: paired(c.lat, (v) => v.p50, 'direct', 'ratio'),
    latency_p99_x_direct: paired(c.lat, (v) => v.p99, 'direct', 'ratio'),
    rps_64: pick(c.rps, id),
    rps_64_x_direct: paired(c.rps, id, 'direct', 'ratio'),
    rps_64_x_nginx: paired(c.rps, id, 'nginx', 'ratio'),
    rps_64_x_portkey: paired(c.rps, id, 'portkey', 'ratio'),
    cpu_us_per_request: pick(c.cpuPerReq, id),
    ttft_p50_us: pick(c.ttft, (v) => v.p50),
    ttft_p99_us: pick(c.ttft, (v) => v.p99),
    added_ttft_p50_us: paired(c.ttft, (v) => v.p50, 'direct', 'minus'),
    added_ttft_p99_us: paired(c.ttft, (v) => v.p99, 'direct', 'minus'),
    chunk_transit_p50_us: pick(c.transit, (v) => v.p50),
    chunk_transit_p99_us: pick(c.transit, (v) => v.p99),
    added_chunk_p50_us: paired(c.transit, (v) => v.p50, 'direct', 'minus'),
    added_chunk_p99_us: paired(c.transit, (v) => v.p99, 'direct', 'minus'),
    streams_rss_mb: pick(c.hold, (h) => h.loadedRss / 1048576),
    streams_idle_rss_mb: pick(c.hold, (h) => h.idleRss / 1048576),
    streams_kb_per_stream: pick(c.hold, (h) => (h.flowing ? (h.loadedRss - h.idleRss) / h.flowing / 1024 : NaN)),
    streams_flowing: pick(c.hold, (h) => h.flowing),
    streams_ramp_ms: pick(c.hold, (h) => h.rampMs),
    streams_upstream_open_1s_after_abort: pick(c.hold, (h) => h.upstreamOpenAfterAbort),
    streams_upstream_drain_ms: pick(c.hold, (h) => h.upstreamDrainMs),
    streams_rss_x_nginx: paired(c.hold, (h) => h.loadedRss, 'nginx', 'ratio'),
  };
  const img = (m: ImageMode) => c.image[m] ?? [];
  const perRoundMedian = (runs: ImageRun[]) => runs.map((r) => stat(r.times)?.median ?? NaN);
  const imgRatio = (m: ImageMode, f: (r: ImageRun) => number) =>
    stat(img(m).slice(0, img('baseline').length).map((r, i) => f(r) / f(img('baseline')[i]!)));
  const imageFig = {
    image_bytes: c.imageBytes,
    time_ms: Object.fromEntries((['baseline', 'normalize', 'normalize+json'] as ImageMode[]).map((m) => [m, stat(perRoundMedian(img(m)))])),
    peak_rss_mb: Object.fromEntries((['baseline', 'normalize', 'normalize+json'] as ImageMode[]).map((m) => [m, stat(img(m).map((r) => r.peakRssDelta / 1048576))])),
    time_x_baseline: {
      normalize: stat(img('normalize').slice(0, img('baseline').length).map((r, i) => (stat(r.times)?.median ?? NaN) / (stat(img('baseline')[i]!.times)?.median ?? NaN))),
      'normalize+json': stat(img('normalize+json').slice(0, img('baseline').length).map((r, i) => (stat(r.times)?.median ?? NaN) / (stat(img('baseline')[i]!.times)?.median ?? NaN))),
    },
    peak_x_image: Object.fromEntries((['baseline', 'normalize', 'normalize+json'] as ImageMode[]).map((m) => [m, stat(img(m).map((r) => r.peakRssDelta / c.imageBytes))])),
    peak_x_baseline: { normalize: imgRatio('normalize', (r) => r.peakRssDelta) },
  };
  return { fig, imageFig };
}

function summarize(c: Collected) {
  const { fig, imageFig } = figures(c);

  const m = (s: Stat | undefined) => s?.median;
  const holdPortico = c.hold.portico ?? [];
  const allFlowing = holdPortico.length > 0 && holdPortico.every((h) => h.flowing === h.wanted);
  const targets: Target[] = [
    target('added_p50', 'added latency p50, 1 connection', m(fig.added_latency_p50_us.portico), 'max', 100, 'µs'),
    target('added_p99', 'added latency p99, 1 connection', m(fig.added_latency_p99_us.portico), 'max', 1000, 'µs'),
    target('rps_vs_nginx', 'req/s at 64 connections ÷ nginx', m(fig.rps_64_x_nginx.portico), 'min', 0.3, '×'),
    target('rps_vs_portkey', 'req/s at 64 connections ÷ Portkey', m(fig.rps_64_x_portkey.portico), 'min', 10, '×'),
    target('added_ttft_p99', 'added time to first token p99', m(fig.added_ttft_p99_us.portico), 'max', 1000, 'µs'),
    target('added_chunk', 'added per-chunk transit p50', m(fig.added_chunk_p50_us.portico), 'max', 50, 'µs'),
    target(
      'rss_2000',
      'RSS with 2,000 concurrent paced streams',
      allFlowing ? m(fig.streams_rss_mb.portico) : undefined,
      'max',
      300,
      'MB',
      allFlowing || holdPortico.length === 0 ? undefined : `not all 2,000 streams flowed (${holdPortico.map((h) => h.flowing).join(', ')}); RSS ${fmt(m(fig.streams_rss_mb.portico))} MB`,
    ),
    target('image_time', 'image normalization time ÷ download + base64', m(imageFig.time_x_baseline.normalize), 'max', 1.5, '×'),
    target('image_peak', 'image normalization peak memory ÷ image size', m(imageFig.peak_x_image.normalize), 'max', 3, '×'),
  ];

  const machine = {
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    memGB: +(totalmem() / 2 ** 30).toFixed(1),
    kernel: release(),
    node: process.version,
    loadavgStart: c.loadStart.map((x) => +x.toFixed(2)),
    loadavgEnd: c.loadEnd.map((x) => +x.toFixed(2)),
  };
  const json = {
    schema: 1,
    date: new Date().toISOString(),
    quick,
    machine,
    tools: { wrk: c.tools.wrkVersion, nginx: c.tools.nginxVersion, portkey: PORTKEY_VERSION, portkeyNodeServerPin: PORTKEY_NODE_SERVER_PIN },
    config: {
      ...CFG,
      placement:
        'no CPU pinning: wrk (1 thread), the fake upstream (1 Node process) and the path under test (nginx with 1 worker, portico, Portkey: one process each) share the cores; one path is measured at a time, the order rotating each round',
    },
    paths: c.paths,
    figures: fig,
    image: imageFig,
    targets,
    problems: c.problems,
  };
  return { json, markdown: markdown(c, fig, imageFig, targets, machine), svg: chart(c, fig, imageFig, machine) };
}

type Fig = ReturnType<typeof figures>['fig'];
type ImageFig = ReturnType<typeof figures>['imageFig'];

function markdown(c: Collected, f: Fig, im: ImageFig, targets: Target[], machine: { cpus: number; cpu?: string; loadavgStart: number[]; loadavgEnd: number[]; node: string }): string {
  const P = c.paths;
  const head = `| | ${P.map((p) => PATH_LABELS[p]).join(' | ')} |\n|---|${P.map(() => '---:').join('|')}|\n`;
  const row = (label: string, s: Partial<Record<PathName, Stat>>, digits = 0, sign = false) =>
    P.some((p) => s[p]) ? `| ${label} | ${P.map((p) => cell(s[p], digits, sign)).join(' | ')} |\n` : '';
  const L: string[] = [];
  L.push(`## Gateway overhead: portico vs nginx vs Portkey${quick ? ' (quick run)' : ''}\n`);
  L.push(
    `Measured ${new Date().toISOString().slice(0, 10)} by \`npm run bench${quick ? ' -- --quick' : ''}\` on ${machine.cpus} × ${machine.cpu ?? 'CPU'}, Node ${machine.node}, ` +
      `wrk ${c.tools.wrkVersion ?? '—'}, nginx ${c.tools.nginxVersion ?? '—'}, Portkey ${PORTKEY_VERSION}; load average ${machine.loadavgStart[0]} → ${machine.loadavgEnd[0]}. ` +
      `Every request goes to the same fake OpenAI upstream (it measures the gateway, not a model). ` +
      `Each cell: median of ${CFG.rounds} interleaved rounds (min–max).\n`,
  );
  const section = (title: string, rows: string[]) => {
    if (rows.join('') !== '') L.push(`\n### ${title}\n\n`, head, ...rows);
  };
  section('Non-streaming requests (wrk)', [
    row('latency p50, 1 connection (µs)', f.latency_p50_us),
    row('latency p99, 1 connection (µs)', f.latency_p99_us),
    row('added latency p50 (µs)', f.added_latency_p50_us, 0, true),
    row('added latency p99 (µs)', f.added_latency_p99_us, 0, true),
    row('p50 × direct', f.latency_p50_x_direct, 2),
    row(`req/s, ${CFG.rpsConnections} connections`, f.rps_64),
    row('req/s × direct', f.rps_64_x_direct, 2),
    row('req/s × nginx', f.rps_64_x_nginx, 2),
    row('req/s × Portkey', f.rps_64_x_portkey, 1),
    row('CPU µs per request (path process; direct: the upstream)', f.cpu_us_per_request),
  ]);
  section(`Streams (${CFG.streamConcurrency} at a time, ${CFG.streamChunks} chunks ${CFG.streamIntervalMs} ms apart)`, [
    row('time to first token p50 (µs)', f.ttft_p50_us),
    row('time to first token p99 (µs)', f.ttft_p99_us),
    row('added TTFT p50 (µs)', f.added_ttft_p50_us, 0, true),
    row('added TTFT p99 (µs)', f.added_ttft_p99_us, 0, true),
    row('chunk transit p50 (µs)', f.chunk_transit_p50_us),
    row('added per chunk p50 (µs)', f.added_chunk_p50_us, 0, true),
    row('added per chunk p99 (µs)', f.added_chunk_p99_us, 0, true),
  ]);
  section(`${CFG.holdCount.toLocaleString('en-US')} concurrent paced streams (a chunk every ${CFG.holdIntervalMs} ms), then every client leaves`, [
    row('RSS of the gateway (MB)', f.streams_rss_mb),
    row('RSS idle before (MB)', f.streams_idle_rss_mb),
    row('KB per stream', f.streams_kb_per_stream, 1),
    row('RSS × nginx', f.streams_rss_x_nginx, 1),
    row('streams flowing', f.streams_flowing),
    row('ms until all flowed', f.streams_ramp_ms),
    row('upstream streams still open 1 s after the clients left', f.streams_upstream_open_1s_after_abort),
    row('ms until the upstream had no stream open', f.streams_upstream_drain_ms),
  ]);
  if (im.image_bytes) {
    L.push(`\n### Image normalization, ${(im.image_bytes / 1048576).toFixed(1)} MB PNG from 127.0.0.1\n\n`);
    L.push('| | download + base64 | portico normalizer | normalizer + JSON.stringify |\n|---|---:|---:|---:|\n');
    const t = im.time_ms as Record<ImageMode, Stat | undefined>;
    const pk = im.peak_rss_mb as Record<ImageMode, Stat | undefined>;
    const px = im.peak_x_image as Record<ImageMode, Stat | undefined>;
    L.push(`| time (ms) | ${cell(t.baseline, 1)} | ${cell(t.normalize, 1)} | ${cell(t['normalize+json'], 1)} |\n`);
    L.push(`| time × download + base64 | 1 | ${cell(im.time_x_baseline.normalize, 2)} | ${cell(im.time_x_baseline['normalize+json'], 2)} |\n`);
    L.push(`| peak RSS above idle (MB) | ${cell(pk.baseline, 1)} | ${cell(pk.normalize, 1)} | ${cell(pk['normalize+json'], 1)} |\n`);
    L.push(`| peak × image size | ${cell(px.baseline, 2)} | ${cell(px.normalize, 2)} | ${cell(px['normalize+json'], 2)} |\n`);
  }
  L.push('\n### Targets (portico)\n\n| target | limit | measured | |\n|---|---:|---:|:---:|\n');
  for (const t of targets) {
    const v = t.value === undefined ? '—' : `${fmt(t.value, t.unit === '×' ? 2 : 0)} ${t.unit}`;
    L.push(`| ${t.text} | ${t.kind === 'max' ? '≤' : '≥'} ${t.limit} ${t.unit} | ${v} | ${t.met === undefined ? '—' : t.met ? 'met' : '**missed**'} |\n`);
  }
  const notes = targets.filter((t) => t.note).map((t) => `- ${t.text}: ${t.note}`);
  if (c.problems.length || notes.length) {
    L.push('\nProblems seen during the run:\n\n');
    for (const n of [...notes, ...c.problems.map((p) => `- ${p}`)]) L.push(`${n}\n`);
  }
  return L.join('');
}

function chart(c: Collected, f: Fig, im: ImageFig, machine: { cpus: number; cpu?: string; loadavgStart: number[] }): string {
  const gw = c.paths.filter((p) => p !== 'direct');
  const floor = (v: Stat | undefined) => v && { ...v, median: Math.max(v.median, 0.1), min: Math.max(v.min, 0.1), max: Math.max(v.max, 0.1) };
  const bars = (s: Partial<Record<PathName, Stat>>, ps: PathName[] = gw) => ps.map((p) => ({ label: PATH_LABELS[p], path: p, stat: s[p] }));
  /** Added figures can be ≤ 0 (within noise): drawn at 0.1 on the log scale, written as measured. */
  const added = (s: Partial<Record<PathName, Stat>>) => gw.map((p) => ({ label: PATH_LABELS[p], path: p, stat: floor(s[p]), shown: s[p] }));
  const short = gw.filter((p) => (c.hold[p] ?? []).some((h) => h.flowing < h.wanted));
  const rssNote = short.length
    ? `not all streams flowed: ${short.map((p) => `${PATH_LABELS[p]} ${c.hold[p]!.map((h) => h.flowing).join('/')}`).join('; ')} (of ${CFG.holdCount.toLocaleString('en-US')})`
    : undefined;
  const t = im.time_ms as Record<ImageMode, Stat | undefined>;
  const pk = im.peak_rss_mb as Record<ImageMode, Stat | undefined>;
  const panels: Panel[] = [
    { title: 'Added latency p50, 1 connection', unit: 'µs', bars: added(f.added_latency_p50_us), target: { value: 100, label: 'target 100 µs' } },
    { title: 'Added latency p99, 1 connection', unit: 'µs', bars: added(f.added_latency_p99_us), target: { value: 1000, label: 'target 1 ms' } },
    { title: 'Throughput, 64 connections', unit: 'req/s', bars: bars(f.rps_64, c.paths) },
    { title: 'Added time to first token, p99', unit: 'µs', bars: added(f.added_ttft_p99_us), target: { value: 1000, label: 'target 1 ms' } },
    { title: 'Added transit per stream chunk, p50', unit: 'µs', bars: added(f.added_chunk_p50_us), target: { value: 50, label: 'target 50 µs' } },
    { title: `RSS with ${CFG.holdCount.toLocaleString('en-US')} concurrent streams`, unit: 'MB', bars: bars(f.streams_rss_mb), target: { value: 300, label: 'target 300 MB' }, note: rssNote },
    {
      title: `4 MB image → data: URI, time`,
      unit: 'ms',
      bars: [
        { label: 'dl + b64', path: 'baseline', stat: t.baseline },
        { label: 'portico', path: 'normalize', stat: t.normalize },
      ],
      target: t.baseline ? { value: t.baseline.median * 1.5, label: 'target 1.5×' } : undefined,
    },
    {
      title: `4 MB image → data: URI, peak memory`,
      unit: 'MB',
      bars: [
        { label: 'dl + b64', path: 'baseline', stat: pk.baseline },
        { label: 'portico', path: 'normalize', stat: pk.normalize },
      ],
      target: im.image_bytes ? { value: (3 * im.image_bytes) / 1048576, label: 'target 3× image' } : undefined,
    },
  ];
  return svgChart(
    `portico vs nginx vs Portkey — gateway overhead${quick ? ' (quick run)' : ''}`,
    [
      `${new Date().toISOString().slice(0, 10)}, ${machine.cpus} × ${machine.cpu ?? 'CPU'}, load average ${machine.loadavgStart[0]}; every path in front of the same fake OpenAI upstream (bench/README.md).`,
      `Bars: median of ${CFG.rounds} interleaved rounds, whiskers min–max. Added = path − direct in the same round (values ≤ 0.1 drawn at 0.1).`,
    ],
    panels,
  );
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
