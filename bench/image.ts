// Image normalization figure: the gateway's media normalizer turning an image URL into a data: URI
// for a 4 MB image, against the least any gateway must do — download the bytes and base64 them.
//
// Each measurement runs in a fresh child process (`node dist/bench/image.js MODE URL N`), so peak
// memory is that process's own: the peak RSS (VmHWM, reset just before) above the warmed-up
// baseline while 8 operations run at once, divided by 8; then N operations one after another for
// time. URLs differ per operation (?i=) so the normalizer's cache never answers.
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { deflateSync, crc32 as zlibCrc32 } from 'node:zlib';
import { request } from 'undici';
import { loadSettings } from '../core/config.js';
import { createMediaNormalizer } from '../gateway/media/normalize.js';

/** normalize+json: what the request path does with the result (app.ts: JSON.stringify(body)). */
export type ImageMode = 'baseline' | 'normalize' | 'normalize+json';

export interface ImageRun {
  mode: ImageMode;
  bytes: number;
  /** ms per operation (the first, cold one excluded). */
  times: number[];
  /** Peak RSS above the RSS just before, while CONCURRENT operations ran at once, per operation (bytes). */
  peakRssDelta: number;
  /** Heap + external + array buffers still held after them, above before, per operation. */
  retained: number;
}

// ---- the image -------------------------------------------------------------------------------

function crc32(buf: Buffer): number {
  if (typeof zlibCrc32 === 'function') return zlibCrc32(buf);
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

/** A valid RGB PNG of about `bytes` bytes: pseudo-random pixels, stored (deflate level 0). */
export function noisePng(bytes: number): Buffer {
  const side = Math.ceil(Math.sqrt(bytes / 3));
  const row = side * 3 + 1;
  const raw = Buffer.alloc(row * side);
  let x = 0x12345678;
  for (let i = 0; i < raw.length; i++) {
    if (i % row === 0) continue; // filter byte 0
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    raw[i] = x & 0xff;
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(raw, { level: 0 })),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Serves the same image at any path on 127.0.0.1 (keep-alive, Content-Length, image/png). */
export async function imageServer(image: Buffer): Promise<{ url: string; server: Server }> {
  const small = noisePng(3 * 16 * 16);
  const server = createServer((req, res) => {
    // /small.png warms the code paths up without touching the peak the big image will set.
    const img = req.url?.startsWith('/small.png') ? small : image;
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': img.length, 'cache-control': 'no-store' });
    res.end(img);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/image.png`, server };
}

// ---- one measuring process ------------------------------------------------------------------

function readStatusKb(field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Reset the kernel's peak-RSS mark for this process; false where that is not possible. */
function peakReset(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return Number.isFinite(readStatusKb('VmHWM'));
  } catch {
    return false;
  }
}

/** Operations run at once for the peak-memory figure. */
export const CONCURRENT = 8;

async function measure(mode: ImageMode, url: string, iterations: number): Promise<ImageRun> {
  let op: (i: number) => Promise<number>;
  if (mode === 'baseline') {
    op = async (i) => {
      const res = await request(`${url}?i=${i}`);
      const bytes = Buffer.from(await res.body.arrayBuffer());
      const uri = `data:image/png;base64,${bytes.toString('base64')}`;
      return uri.length;
    };
  } else {
    const settings = loadSettings({ NIM_MEDIA_ALLOW_PRIVATE_NETWORKS: '1' });
    const normalizer = createMediaNormalizer(settings.media);
    op = async (i) => {
      const body: Record<string, unknown> = {
        model: 'bench-model',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is in this image?' },
              { type: 'image_url', image_url: { url: `${url}?i=${i}` } },
            ],
          },
        ],
      };
      await normalizer.normalize(body);
      const part = ((body.messages as { content: { image_url?: { url: string } }[] }[])[0]!.content[1]!).image_url!;
      // Checked on the warm-up only: reading the string's characters would flatten it (a copy the
      // normalizer itself never makes, so not to be timed here).
      if (i < 0 && !part.url.startsWith('data:image/png;base64,')) throw new Error('the normalizer did not produce a data: URI');
      return mode === 'normalize+json' ? Buffer.byteLength(JSON.stringify(body)) : part.url.length;
    };
  }
  // Warm up code paths (module loading, undici connection) on a small image, then settle: the
  // process's peak RSS so far is then start-up's, below what the 4 MB image will take.
  const big = url;
  url = url.replace('/image.png', '/small.png');
  await op(-1);
  await op(-2);
  url = big;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  await new Promise((r) => setTimeout(r, 50));
  gc?.();
  const before = process.memoryUsage();
  // Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS, so VmHWM after
  // the operation is that operation's peak. Elsewhere: getrusage's lifetime maximum (less exact).
  const hwm = peakReset();
  const base = before.rss;
  // CONCURRENT operations at once: memory already resident but free (left by start-up) would hide
  // most of one operation's peak; across several it is a small error. Reported per operation.
  await Promise.all(Array.from({ length: CONCURRENT }, (_, k) => op(1000 + k)));
  const peak = hwm ? readStatusKb('VmHWM') * 1024 : process.resourceUsage().maxRSS * 1024;
  const after = process.memoryUsage();
  const held = (m: NodeJS.MemoryUsage) => m.heapUsed + m.external + m.arrayBuffers;
  const peakRssDelta = Math.max(0, peak - base) / CONCURRENT;
  const times: number[] = [];
  for (let i = 1; i <= iterations; i++) {
    const t = performance.now();
    await op(i);
    times.push(performance.now() - t);
  }
  return { mode, bytes: 0, times, peakRssDelta, retained: (held(after) - held(before)) / CONCURRENT };
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [mode, url, n] = process.argv.slice(2);
  measure(mode as ImageMode, url!, Number(n ?? 10)).then(
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
