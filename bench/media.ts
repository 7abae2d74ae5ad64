// Video and resize figures: portico's media modules against the tool alone doing the
// same job, in the same run.
//   frames   a 10 MB MP4 at a 127.0.0.1 URL → 8 evenly spaced frames as PNG data: URIs.
//            portico: safe fetch → probeVideo caps → sampleFrames (one ffmpeg, seeking).
//            ffmpeg alone: `ffmpeg -i URL -vf fps=8/duration` (it fetches and decodes the whole video).
//   datauri  the same MP4 URL → a checked video data: URI.
//            portico: safe fetch → probeVideo (magic bytes, ffprobe caps on a temp file) → base64.
//            ffmpeg alone: `ffprobe URL` for the duration, download, base64.
//   resize   a 12 MP JPEG in memory → at most 1 MP.
//            portico: inspectImage (sniff.ts) → prepareImage. sharp alone: resize + JPEG encode.
//
// Each measurement is a fresh child process (`node dist/bench/media.js CASE MODE INPUT N`): peak
// memory is the process tree's (node + ffmpeg/ffprobe; resident sets sampled every 5 ms, and node's
// own exact peak from VmHWM) above the idle baseline, during one operation; then N operations one
// after another for time.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { request } from 'undici';
import { loadSettings } from '../core/config.js';
import { createSafeFetcher } from '../gateway/media/fetch.js';
import { fitWithin } from '../gateway/media/fit.js';
import { LLAMA_CPP_IMAGE_TYPES, prepareImage } from '../gateway/media/image-transform.js';
import { inspectImage } from '../gateway/media/sniff.js';
import { probeVideo, sampleFrames } from '../gateway/media/video.js';
import { rssBytes } from './proc.js';
import { fmt, stat, target, type Stat, type Target } from './report.js';

export type MediaCase = 'frames' | 'datauri' | 'resize';
export type MediaMode = 'portico' | 'tool';
export const CASES: MediaCase[] = ['frames', 'datauri', 'resize'];
const FRAMES = 8;
const RESIZE_MAX = 1_000_000;

export interface MediaRun {
  case: MediaCase;
  mode: MediaMode;
  /** ms per operation (the first, cold one excluded). */
  times: number[];
  /** Peak resident memory of the process tree above the idle baseline, during one operation (bytes). */
  peak: number;
}

// ---- inputs ------------------------------------------------------------------------------------

/** A ~10 MB H.264 MP4 (720p test pattern, index first), and its duration; cached in `dir`. */
export async function makeVideo(dir: string): Promise<{ path: string; durationS: number }> {
  const durationS = 20;
  const path = join(dir, 'bench-video.mp4');
  try {
    if (statSync(path).size > 9_000_000) return { path, durationS };
  } catch {
    /* not made yet */
  }
  await promisify(execFile)(
    'ffmpeg',
    [
      '-v', 'error', '-nostdin', '-y',
      '-f', 'lavfi', '-i', `testsrc2=size=1280x720:rate=30:duration=${durationS}`,
      '-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', '4M', '-maxrate', '4M', '-bufsize', '8M', '-g', '60',
      '-pix_fmt', 'yuv420p', '-movflags', '+faststart', path,
    ],
    { timeout: 600_000 },
  );
  return { path, durationS };
}

/** A 4000×3000 (12 MP) JPEG of noisy colour, quality 90. */
export async function makePhoto(dir: string): Promise<string> {
  const path = join(dir, 'bench-photo.jpg');
  const bytes = await sharp({ create: { width: 4000, height: 3000, channels: 3, background: '#4070a0', noise: { type: 'gaussian', mean: 120, sigma: 40 } } })
    .blur(1.5) // photo-like: noise alone would be a worst case for JPEG, not a photo
    .jpeg({ quality: 90 })
    .toBuffer();
  writeFileSync(path, bytes);
  return path;
}

/** Serves one file at any path on 127.0.0.1 (keep-alive, Content-Length). */
export async function fileServer(path: string, type: string): Promise<{ url: string; server: Server }> {
  const bytes = readFileSync(path);
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': type, 'content-length': bytes.length, 'cache-control': 'no-store' });
    res.end(bytes);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/video.mp4`, server };
}

// ---- one measuring process ----------------------------------------------------------------------

const run = promisify(execFile);

function readStatusKb(field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function operation(kase: MediaCase, mode: MediaMode, input: string, durationS: number): Promise<() => Promise<number>> {
  const settings = loadSettings({ NIM_MEDIA_ALLOW_PRIVATE_NETWORKS: '1' });
  const limits = { maxDurationS: settings.media.maxVideoSeconds, maxFrames: settings.media.maxVideoFrames, maxBytes: settings.media.maxVideoBytes };
  if (kase === 'resize') {
    const bytes = readFileSync(input);
    if (mode === 'portico') {
      return async () => {
        const { mime } = await inspectImage(bytes, settings.media.maxPixels);
        const out = await prepareImage(bytes, mime, { accept: LLAMA_CPP_IMAGE_TYPES, maxPixels: RESIZE_MAX });
        if (!out.resized) throw new Error('prepareImage did not resize');
        return out.bytes.length;
      };
    }
    const meta = await sharp(bytes).metadata();
    const { width, height } = fitWithin(meta.width!, meta.height!, RESIZE_MAX);
    return async () => (await sharp(bytes).resize(width, height, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer()).length;
  }
  // Distinct URLs per operation, as for images: nothing may be served from a cache.
  let n = 0;
  const url = () => `${input}?i=${n++}`;
  if (mode === 'portico') {
    const policy = { ...settings.media, maxBytes: settings.media.maxVideoBytes };
    const fetcher = createSafeFetcher(policy);
    const fetchBytes = async () => (await fetcher.fetch(new URL(url()), new AbortController().signal)).bytes;
    if (kase === 'datauri') {
      return async () => {
        const bytes = await fetchBytes();
        const info = await probeVideo(bytes, limits);
        return `data:${info.mime};base64,${bytes.toString('base64')}`.length;
      };
    }
    return async () => {
      const bytes = await fetchBytes();
      const frames = await sampleFrames(bytes, FRAMES, limits);
      if (frames.length !== FRAMES) throw new Error(`sampleFrames gave ${frames.length} frames`);
      return frames.reduce((s, f) => s + `data:${f.mime};base64,${f.bytes.toString('base64')}`.length, 0);
    };
  }
  if (kase === 'datauri') {
    return async () => {
      const u = url();
      const probe = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', u], { timeout: 60_000 });
      if (!(Number(probe.stdout) > 0)) throw new Error('ffprobe gave no duration');
      const bytes = Buffer.from(await (await request(u)).body.arrayBuffer());
      return `data:video/mp4;base64,${bytes.toString('base64')}`.length;
    };
  }
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-bench-frames-'));
    try {
      await run('ffmpeg', ['-v', 'error', '-nostdin', '-i', url(), '-vf', `fps=${FRAMES}/${durationS}`, '-frames:v', String(FRAMES), '-c:v', 'png', join(dir, '%03d.png')], { timeout: 120_000 });
      const names = readdirSync(dir);
      if (names.length !== FRAMES) throw new Error(`ffmpeg gave ${names.length} frames`);
      return names.reduce((s, f) => s + `data:image/png;base64,${readFileSync(join(dir, f)).toString('base64')}`.length, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

async function measure(kase: MediaCase, mode: MediaMode, input: string, iterations: number, durationS: number): Promise<MediaRun> {
  const op = await operation(kase, mode, input, durationS);
  await op(); // cold: module loading, connections, the first ffmpeg spawn
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  await new Promise((r) => setTimeout(r, 50));
  gc?.();
  const base = rssBytes(process.pid);
  // Linux: writing 5 to clear_refs resets VmHWM to the current RSS, so VmHWM after is the op's peak.
  writeFileSync('/proc/self/clear_refs', '5');
  let treePeak = base;
  const sampler = setInterval(() => (treePeak = Math.max(treePeak, rssBytes(process.pid))), 5);
  await op();
  clearInterval(sampler);
  const peak = Math.max(treePeak, readStatusKb('VmHWM')) - base;
  const times: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t = performance.now();
    await op();
    times.push(performance.now() - t);
  }
  return { case: kase, mode, times, peak: Math.max(0, peak) };
}

// ---- the figure (run by bench/run.ts) --------------------------------------------------------------

export interface MediaResults {
  json: Record<string, unknown>;
  markdown: string;
  targets: Target[];
}

/** Runs every case × mode `rounds` times (modes alternating first), each in a fresh process. */
export async function runMediaBench(opts: { rounds: number; iterations: number; root: string; work: string; log: (s: string) => void }): Promise<MediaResults> {
  const { log } = opts;
  log('media: making the 10 MB MP4 and the 12 MP JPEG');
  const video = await makeVideo(opts.work);
  const photo = await makePhoto(opts.work);
  const sizes: Record<MediaCase, number> = { frames: statSync(video.path).size, datauri: statSync(video.path).size, resize: statSync(photo).size };
  const srv = await fileServer(video.path, 'video/mp4');
  const runs: Record<string, MediaRun[]> = {};
  const execFileP = promisify(execFile);
  try {
    for (let r = 0; r < opts.rounds; r++) {
      for (const kase of CASES) {
        const modes: MediaMode[] = r % 2 ? ['tool', 'portico'] : ['portico', 'tool'];
        for (const mode of modes) {
          log(`media ${kase} ${mode} (round ${r + 1}/${opts.rounds})`);
          const input = kase === 'resize' ? photo : srv.url;
          const args = ['--expose-gc', join(opts.root, 'dist/bench/media.js'), kase, mode, input, String(opts.iterations), String(video.durationS)];
          // Async: the video server answering the child lives in this process.
          const { stdout: out } = await execFileP(process.execPath, args, { encoding: 'utf8', timeout: 600_000 });
          (runs[`${kase}/${mode}`] ??= []).push(JSON.parse(out.trim().split('\n').pop()!) as MediaRun);
        }
      }
    }
  } finally {
    srv.server.close();
  }

  const ms = (k: MediaCase, m: MediaMode): Stat | undefined => stat((runs[`${k}/${m}`] ?? []).map((x) => stat(x.times)!.median));
  const peak = (k: MediaCase, m: MediaMode): Stat | undefined => stat((runs[`${k}/${m}`] ?? []).map((x) => x.peak));
  const ratio = (k: MediaCase) => stat((runs[`${k}/portico`] ?? []).map((x, i) => stat(x.times)!.median / stat(runs[`${k}/tool`]![i]!.times)!.median));
  const peakX = (k: MediaCase) => stat((runs[`${k}/portico`] ?? []).map((x) => x.peak / sizes[k]));
  const peakVsTool = (k: MediaCase) => stat((runs[`${k}/portico`] ?? []).map((x, i) => x.peak / runs[`${k}/tool`]![i]!.peak));
  const TOOL: Record<MediaCase, string> = { frames: 'ffmpeg alone', datauri: 'ffprobe + download alone', resize: 'sharp alone' };
  const TITLE: Record<MediaCase, string> = {
    frames: `${(sizes.frames / 1e6).toFixed(1)} MB MP4 URL → ${FRAMES} frames`,
    datauri: `${(sizes.datauri / 1e6).toFixed(1)} MB MP4 URL → data: URI`,
    resize: `12 MP JPEG (${(sizes.resize / 1e6).toFixed(1)} MB) → ≤ 1 MP`,
  };
  const targets = CASES.flatMap((k) => [
    target(`media_${k}_time`, `${TITLE[k]}: time ÷ ${TOOL[k]}`, ratio(k)?.median, 'max', 1.3, '×'),
    target(`media_${k}_peak`, `${TITLE[k]}: peak memory ÷ input size`, peakX(k)?.median, 'max', 3, '×'),
  ]);
  const L: string[] = ['\n### Media: video and resize (median of rounds, min–max)\n\n'];
  L.push('| case | portico ms | tool alone ms | time × tool | portico peak MB | tool peak MB | peak × tool | peak × input |\n|---|---|---|---|---|---|---|---|\n');
  const c = (s: Stat | undefined, d: number, scale = 1) => (s ? `${fmt(s.median / scale, d)} (${fmt(s.min / scale, d)}–${fmt(s.max / scale, d)})` : '—');
  for (const k of CASES) {
    L.push(`| ${TITLE[k]} (vs ${TOOL[k]}) | ${c(ms(k, 'portico'), 0)} | ${c(ms(k, 'tool'), 0)} | ${c(ratio(k), 2)} | ${c(peak(k, 'portico'), 1, 1048576)} | ${c(peak(k, 'tool'), 1, 1048576)} | ${c(peakVsTool(k), 2)} | ${c(peakX(k), 2)} |\n`);
  }
  L.push(
    '\nPeak × input: decoding 720p H.264 takes ffmpeg alone ~80 MB whatever the file size, and libvips' +
      ' a working set of its own, so the tools alone exceed 3× too; peak × tool is the overhead portico adds.\n',
  );
  L.push('\n| target | value | limit | met |\n|---|---|---|---|\n');
  for (const t of targets) L.push(`| ${t.text} | ${fmt(t.value, 2)}${t.unit} | ≤ ${t.limit}${t.unit} | ${t.met === undefined ? '—' : t.met ? 'yes' : '**no**'} |\n`);
  return { json: { sizes, runs, targets }, markdown: L.join(''), targets };
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [kase, mode, input, n, durationS] = process.argv.slice(2);
  measure(kase as MediaCase, mode as MediaMode, input!, Number(n ?? 5), Number(durationS ?? 20)).then(
    (r) => {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
