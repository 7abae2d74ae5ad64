// Video and audio made by ffmpeg for tests (the repository commits no binaries). Not used at runtime.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Runs `ffmpeg -v error -y <args> <out.ext>` in a temp dir and returns the file's bytes. */
export function ffmpegMake(args: string[], ext: string): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'portico-test-media-'));
  try {
    const out = join(dir, `out.${ext}`);
    execFileSync('ffmpeg', ['-v', 'error', '-nostdin', '-y', ...args, out], { timeout: 60_000, stdio: ['ignore', 'ignore', 'pipe'] });
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** ffmpeg's test pattern: `seconds` long at `fps`, `w`×`h`. */
export const testsrc = (seconds: number, fps = 25, w = 320, h = 240) => [
  '-f', 'lavfi', '-i', `testsrc=size=${w}x${h}:rate=${fps}:duration=${seconds}`,
];

/** A video whose frame N has luminance 8·N (grey), so a decoded frame tells which one it was. */
export const countingVideo = (frames: number, fps = 10) => [
  '-f', 'lavfi', '-i', `nullsrc=size=64x48:rate=${fps}:duration=${frames / fps},format=gray,geq=lum='8*N'`,
];

/** A sine tone, `seconds` long. */
export const sine = (seconds: number) => ['-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=16000:duration=${seconds}`];

export const H264 = ['-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-preset', 'ultrafast'];
