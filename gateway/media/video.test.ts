// Video probing and frame sampling against real ffmpeg/ffprobe, on media generated here by ffmpeg.
import { execFileSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageSize } from 'image-size';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { H264, countingVideo, ffmpegMake, sine, testsrc } from './test-media.js';
import { png } from './test-images.js';
import { fitWithin } from './fit.js';
import { probeVideo, sampleFrames } from './video.js';
import { refusal } from './test-support.js';

const LIMITS = { maxDurationS: 60, maxFrames: 10_000 };

// Made once: ffmpeg runs are the slow part of this file.
const mp4 = ffmpegMake([...testsrc(2), ...H264], 'mp4'); // moov after the media data (ffmpeg's default)
const mp4Fast = ffmpegMake([...testsrc(2), ...H264, '-movflags', '+faststart'], 'mp4');
const webm = ffmpegMake([...testsrc(2), '-c:v', 'libvpx', '-b:v', '200k'], 'webm');
// Written live, a WebM has no duration in its header: the packets must be counted (no alt-ref
// frames, which are packets of their own, so packets = frames here).
const webmStreamed = ffmpegMake(
  [...testsrc(2), '-c:v', 'libvpx', '-b:v', '200k', '-auto-alt-ref', '0', '-f', 'webm', '-live', '1'],
  'webm',
);
const mov = ffmpegMake([...testsrc(1, 10), ...H264], 'mov');
const mkv = ffmpegMake([...testsrc(1, 10), ...H264], 'mkv');
const counting = ffmpegMake([...countingVideo(20), ...H264, '-g', '5'], 'mp4');


describe('probeVideo', () => {
  it.each([
    ['MP4, index at the end', mp4, 'mp4', 'video/mp4', 2, 50],
    ['MP4, index first', mp4Fast, 'mp4', 'video/mp4', 2, 50],
    ['WebM', webm, 'webm', 'video/webm', 2, 50],
    ['WebM without a duration in its header', webmStreamed, 'webm', 'video/webm', 2, 50],
    ['QuickTime', mov, 'mov', 'video/quicktime', 1, 10],
    ['Matroska', mkv, 'mkv', 'video/x-matroska', 1, 10],
  ])('reads %s: type from the bytes, duration and frames from the container', async (_, bytes, container, mime, seconds, frames) => {
    const info = await probeVideo(bytes, LIMITS);
    expect(info).toMatchObject({ container, mime, width: 320, height: 240 });
    expect(info.durationS).toBeCloseTo(seconds, 1);
    expect(info.frameCount).toBe(frames);
  });

  it('refuses bytes that are not a video, naming what they look like', async () => {
    const asPng = await refusal(probeVideo(png(4, 4), LIMITS));
    expect(asPng).toMatchObject({ code: 'invalid_video', reason: 'not_video' });
    expect(asPng.message).toContain('image/png');
    const mp3 = ffmpegMake(sine(1), 'mp3');
    expect(await refusal(probeVideo(mp3, LIMITS))).toMatchObject({ code: 'invalid_video', reason: 'not_video' });
    const garbage = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251));
    expect(await refusal(probeVideo(garbage, LIMITS))).toMatchObject({ code: 'invalid_video', reason: 'not_video' });
  });

  it('refuses an MP4 container holding only audio', async () => {
    const audioOnly = ffmpegMake([...sine(1), '-c:a', 'aac', '-f', 'mp4'], 'mp4');
    const err = await refusal(probeVideo(audioOnly, LIMITS));
    expect(err.code).toBe('invalid_video');
  });

  it('refuses a truncated MP4 whose index was cut off, without leaking the temp path', async () => {
    const err = await refusal(probeVideo(mp4.subarray(0, Math.floor(mp4.length / 2)), LIMITS));
    expect(err).toMatchObject({ code: 'invalid_video', reason: 'undecodable' });
    expect(err.message).not.toMatch(/portico-media|\/tmp/);
  });

  it('refuses an MP4 header followed by garbage', async () => {
    const fake = Buffer.concat([mp4Fast.subarray(0, 32), Buffer.alloc(2000, 0x5a)]);
    const err = await refusal(probeVideo(fake, LIMITS));
    expect(err.code).toBe('invalid_video');
  });

  it('caps size (413), duration and frames (400) before decoding anything', async () => {
    const big = await refusal(probeVideo(mp4, { ...LIMITS, maxBytes: mp4.length - 1 }));
    expect(big).toMatchObject({ code: 'video_too_large', reason: 'too_large' });
    const e = big.toPorticoError('messages[0].content[1].video_url.url');
    expect(e.status).toBe(413);
    expect(e.toJSON().error).toMatchObject({ code: 'video_too_large', param: 'messages[0].content[1].video_url.url' });

    const long = await refusal(probeVideo(webmStreamed, { ...LIMITS, maxDurationS: 1.5 }));
    expect(long).toMatchObject({ code: 'video_too_long', reason: 'too_long' });
    expect(long.toPorticoError('p').status).toBe(400);
    const many = await refusal(probeVideo(mp4, { ...LIMITS, maxFrames: 49 }));
    expect(many).toMatchObject({ code: 'video_too_long', reason: 'too_many_frames' });
    expect(await probeVideo(mp4, { ...LIMITS, maxFrames: 50, maxDurationS: 2 })).toMatchObject({ frameCount: 50 });
  });

  it('refuses frames over the pixel cap (a decode bomb) from the header', async () => {
    const err = await refusal(probeVideo(mp4, { ...LIMITS, maxPixels: 320 * 240 - 1 }));
    expect(err).toMatchObject({ code: 'invalid_video', reason: 'too_many_pixels' });
  });
});

describe('sampleFrames', () => {
  it('takes n evenly spaced frames in one ffmpeg run (the middles of n equal slices)', async () => {
    // countingVideo: 20 frames; frame k has luminance 8k. Middles of 4 slices of 5 frames: 2, 7, 12, 17.
    const frames = await sampleFrames(counting, 4, LIMITS);
    expect(frames).toHaveLength(4);
    const seen: number[] = [];
    for (const f of frames) {
      expect(f.mime).toBe('image/png');
      expect(imageSize(f.bytes)).toMatchObject({ type: 'png', width: 64, height: 48 });
      const { channels } = await sharp(f.bytes).stats();
      seen.push(Math.round(channels[0]!.mean / 8));
    }
    expect(seen).toEqual([2, 7, 12, 17]);
  });

  it('gives every frame when asked for more than the video has', async () => {
    const three = ffmpegMake([...countingVideo(3), ...H264], 'mp4');
    const frames = await sampleFrames(three, 8, LIMITS);
    expect(frames).toHaveLength(3);
  });

  it('samples a WebM without a duration header, and writes JPEG when asked', async () => {
    const frames = await sampleFrames(webmStreamed, 3, { ...LIMITS, format: 'jpeg' });
    expect(frames).toHaveLength(3);
    for (const f of frames) {
      expect(f.mime).toBe('image/jpeg');
      expect(imageSize(f.bytes)).toMatchObject({ type: 'jpg', width: 320, height: 240 });
    }
    // Different moments of the test pattern are different pictures.
    expect(new Set(frames.map((f) => f.bytes.toString('base64'))).size).toBe(3);
  });

  it('scales frames down to maxFramePixels, keeping an odd aspect ratio', async () => {
    const wide = ffmpegMake([...testsrc(1, 5, 640, 120), ...H264], 'mp4');
    const frames = await sampleFrames(wide, 2, { ...LIMITS, maxFramePixels: 20_000 });
    expect(frames).toHaveLength(2);
    const { width, height } = imageSize(frames[0]!.bytes);
    expect(width * height).toBeLessThanOrEqual(20_000);
    expect(width / height).toBeCloseTo(640 / 120, 1);
    expect(fitWithin(640, 120, 20_000)).toEqual({ width, height });
  });

  it('applies the probe caps before decoding', async () => {
    expect(await refusal(sampleFrames(mp4, 8, { ...LIMITS, maxFrames: 10 }))).toMatchObject({ code: 'video_too_long' });
    expect(await refusal(sampleFrames(png(2, 2), 8, LIMITS))).toMatchObject({ code: 'invalid_video' });
  });
});

describe('no network from inside the bytes', () => {
  it('never lets a playlist in the bytes make ffmpeg connect anywhere (loopback listener: 0 connections)', async () => {
    let connections = 0;
    const listener = createServer((sock) => {
      connections++;
      sock.destroy();
    });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    const { port } = listener.address() as AddressInfo;
    try {
      const playlist = `#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nhttp://127.0.0.1:${port}/seg.ts\n#EXT-X-ENDLIST\n`;
      const concat = `ffconcat version 1.0\nfile 'http://127.0.0.1:${port}/a.mp4'\n`;
      // An MP4 header followed by the playlist: sniffed as MP4, so it reaches ffprobe (forced to mov).
      const disguised = Buffer.concat([mp4Fast.subarray(0, 32), Buffer.from(playlist)]);
      for (const bytes of [Buffer.from(playlist), Buffer.from(concat), disguised]) {
        expect((await refusal(probeVideo(bytes, LIMITS))).code).toBe('invalid_video');
        expect((await refusal(sampleFrames(bytes, 2, LIMITS))).code).toBe('invalid_video');
      }
      expect(connections).toBe(0);
    } finally {
      listener.close();
    }
  });
});

describe('abort and clean-up', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'portico-video-test-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('stops ffprobe/ffmpeg and removes its temp files when the request is aborted', async () => {
    const long = ffmpegMake([...testsrc(20, 25, 640, 480), ...H264, '-g', '500'], 'mp4');
    const ctl = new AbortController();
    const reason = new Error('client went away');
    const pending = sampleFrames(long, 16, { ...LIMITS, signal: ctl.signal, tmpDir: scratch });
    // Abort once ffmpeg is running: its temp dir exists and holds the input.
    const started = Date.now();
    while (readdirSync(scratch).length === 0 && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 5));
    ctl.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(readdirSync(scratch)).toEqual([]);
    const procs = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    expect(procs).not.toContain(scratch);
  });

  it('rejects at once with an already aborted signal', async () => {
    const ctl = new AbortController();
    ctl.abort(new Error('gone'));
    await expect(probeVideo(mp4, { ...LIMITS, signal: ctl.signal, tmpDir: scratch })).rejects.toThrow('gone');
    expect(readdirSync(scratch)).toEqual([]);
  });
});
