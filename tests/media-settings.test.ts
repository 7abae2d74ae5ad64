// The issue 11 media settings (video, audio, resize): defaults, parsing, one clear line for a bad value.
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../core/config.js';

describe('video / audio / resize settings', () => {
  it('defaults: caps on, resizing off, 8 frames per video', () => {
    expect(loadSettings({}).media).toMatchObject({
      maxVideoBytes: 64 * 1024 * 1024,
      maxVideoSeconds: 300,
      maxVideoFrames: 18_000,
      videoFrames: 8,
      resizeMaxPixels: undefined,
      maxAudioBytes: 25 * 1024 * 1024,
      maxAudioSeconds: 300,
    });
  });

  it('parses values', () => {
    const media = loadSettings({
      NIM_MEDIA_MAX_VIDEO_BYTES: '1000',
      NIM_MEDIA_MAX_VIDEO_SECONDS: '5',
      NIM_MEDIA_MAX_VIDEO_FRAMES: '150',
      NIM_VIDEO_FRAMES: '4',
      NIM_MEDIA_RESIZE_MAX_PIXELS: '1000000',
      NIM_MEDIA_MAX_AUDIO_BYTES: '2000',
      NIM_MEDIA_MAX_AUDIO_SECONDS: '30',
    }).media;
    expect(media).toMatchObject({
      maxVideoBytes: 1000,
      maxVideoSeconds: 5,
      maxVideoFrames: 150,
      videoFrames: 4,
      resizeMaxPixels: 1_000_000,
      maxAudioBytes: 2000,
      maxAudioSeconds: 30,
    });
  });

  it('names the variable of a bad value', () => {
    expect(() => loadSettings({ NIM_VIDEO_FRAMES: '0' })).toThrow(/^NIM_VIDEO_FRAMES="0": /);
    expect(() => loadSettings({ NIM_VIDEO_FRAMES: '257' })).toThrow(/^NIM_VIDEO_FRAMES="257": /);
    expect(() => loadSettings({ NIM_MEDIA_RESIZE_MAX_PIXELS: '1e6' })).toThrow(/^NIM_MEDIA_RESIZE_MAX_PIXELS="1e6": /);
    expect(() => loadSettings({ NIM_MEDIA_MAX_AUDIO_SECONDS: '-1' })).toThrow(/^NIM_MEDIA_MAX_AUDIO_SECONDS="-1": /);
  });
});
