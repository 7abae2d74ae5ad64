// What the media unit tests share: a small media policy (caps a test can reach) and the refusal a
// promise must reject with.
import { expect } from 'vitest';
import type { Settings } from '../../core/config.js';
import { MediaRefusal } from './refusal.js';

/** A small policy for unit tests: caps low enough to reach, private networks refused unless asked. */
export function testPolicy(over: Partial<Settings['media']> = {}): Settings['media'] {
  return {
    allowedDomains: [],
    allowPrivateNetworks: false,
    maxBytes: 1 << 20,
    fetchTimeoutMs: 5000,
    maxPixels: 1_000_000,
    maxImages: 4,
    maxVideos: 1,
    maxAudios: 1,
    maxRedirects: 3,
    cacheBytes: 1 << 20,
    maxVideoBytes: 1 << 20,
    maxVideoSeconds: 60,
    maxVideoFrames: 1000,
    videoFrames: 8,
    resizeMaxPixels: undefined,
    maxAudioBytes: 1 << 20,
    maxAudioSeconds: 60,
    ...over,
  };
}

/** The MediaRefusal `p` rejects with (fails the test if it resolves or rejects with anything else). */
export async function refusal(p: Promise<unknown>): Promise<MediaRefusal> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MediaRefusal);
  return err as MediaRefusal;
}
