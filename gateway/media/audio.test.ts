// Audio probing against real ffprobe, on audio generated here by ffmpeg.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { probeAudio, toWav } from './audio.js';
import { H264, ffmpegMake, sine, testsrc } from './test-media.js';
import { png } from './test-images.js';
import { refusal } from './test-support.js';

const LIMITS = { maxDurationS: 60 };
const wav = ffmpegMake(sine(2), 'wav');
const mp3 = ffmpegMake(sine(2), 'mp3');


describe('probeAudio', () => {
  it.each([
    ['WAV', () => wav, 'wav', 'audio/wav'],
    ['MP3', () => mp3, 'mp3', 'audio/mpeg'],
    ['MP3 without an ID3 tag', () => ffmpegMake([...sine(2), '-id3v2_version', '0', '-write_xing', '0'], 'mp3'), 'mp3', 'audio/mpeg'],
    ['FLAC', () => ffmpegMake(sine(2), 'flac'), 'flac', 'audio/flac'],
    ['Ogg Vorbis', () => ffmpegMake([...sine(2), '-c:a', 'libvorbis'], 'ogg'), 'ogg', 'audio/ogg'],
    ['Ogg Opus', () => ffmpegMake([...sine(2), '-c:a', 'libopus'], 'opus'), 'ogg', 'audio/ogg'],
  ])('reads %s: format from the bytes, duration from the header', async (_, make, format, mime) => {
    const info = await probeAudio(make(), LIMITS);
    expect(info).toMatchObject({ format, mime });
    expect(info.durationS).toBeGreaterThan(1.9);
    expect(info.durationS).toBeLessThan(2.15); // MP3 and Opus pad a few ms
  });

  it('refuses bytes that are not WAV/MP3/FLAC/Ogg, naming what they look like', async () => {
    const asPng = await refusal(probeAudio(png(2, 2), LIMITS));
    expect(asPng).toMatchObject({ code: 'invalid_audio', reason: 'not_audio' });
    expect(asPng.message).toContain('image/png');
    const m4a = ffmpegMake([...sine(1), '-c:a', 'aac'], 'm4a');
    expect(await refusal(probeAudio(m4a, LIMITS))).toMatchObject({ code: 'invalid_audio', reason: 'not_audio' });
    const video = ffmpegMake([...testsrc(1, 5), ...H264], 'mp4');
    expect(await refusal(probeAudio(video, LIMITS))).toMatchObject({ code: 'invalid_audio' });
    expect(await refusal(probeAudio(Buffer.from('hello, this is text and not audio at all'), LIMITS))).toMatchObject({
      code: 'invalid_audio',
      reason: 'not_audio',
    });
  });

  it('refuses a WAV cut inside its header, and a FLAC tag followed by garbage', async () => {
    const cut = await refusal(probeAudio(wav.subarray(0, 20), LIMITS));
    expect(cut.code).toBe('invalid_audio');
    const fake = Buffer.concat([Buffer.from('fLaC'), Buffer.alloc(500, 0x33)]);
    const err = await refusal(probeAudio(fake, LIMITS));
    expect(err).toMatchObject({ code: 'invalid_audio', reason: 'undecodable' });
    expect(err.message).not.toMatch(/portico-media|\/tmp/);
  });

  it('caps size (413) before reading, and duration (400)', async () => {
    const big = await refusal(probeAudio(wav, { ...LIMITS, maxBytes: 1000 }));
    expect(big).toMatchObject({ code: 'audio_too_large', reason: 'too_large' });
    const e = big.toPorticoError('messages[0].content[0].input_audio.data');
    expect(e.toJSON().error).toMatchObject({ code: 'audio_too_large', param: 'messages[0].content[0].input_audio.data' });
    expect(e.status).toBe(413);
    const long = await refusal(probeAudio(mp3, { maxDurationS: 1.5 }));
    expect(long).toMatchObject({ code: 'audio_too_long', reason: 'too_long' });
    expect(long.toPorticoError('p').status).toBe(400);
    expect(await probeAudio(wav, { maxDurationS: 2, maxBytes: wav.length })).toMatchObject({ format: 'wav' });
  });

  it('turns Ogg Vorbis into 16 kHz mono WAV of the same length (for engines without Ogg)', async () => {
    const ogg = ffmpegMake([...sine(2), '-ac', '2', '-ar', '44100', '-c:a', 'libvorbis'], 'ogg');
    const { info, bytes } = await toWav(ogg, { ...LIMITS, sampleRate: 16000, mono: true });
    expect(info.format).toBe('ogg');
    const out = await probeAudio(bytes, LIMITS);
    expect(out.format).toBe('wav');
    expect(out.durationS).toBeCloseTo(info.durationS, 1);
    expect(bytes.readUInt16LE(22)).toBe(1); // channels
    expect(bytes.readUInt32LE(24)).toBe(16000); // sample rate
    expect(bytes.readUInt16LE(34)).toBe(16); // bits per sample
    expect(await refusal(toWav(ogg, { maxDurationS: 1 }))).toMatchObject({ code: 'audio_too_long' });
  });

  describe('abort', () => {
    const scratch = mkdtempSync(join(tmpdir(), 'portico-audio-test-'));
    afterAll(() => rmSync(scratch, { recursive: true, force: true }));

    it('rejects with the abort reason and leaves no temp file', async () => {
      const ctl = new AbortController();
      ctl.abort(new Error('client went away'));
      await expect(probeAudio(wav, { ...LIMITS, signal: ctl.signal, tmpDir: scratch })).rejects.toThrow('client went away');
      expect(readdirSync(scratch)).toEqual([]);
    });
  });
});
