// The media step's processing modules (video.ts, audio.ts, image-transform.ts: ffprobe/ffmpeg and
// sharp), bound to the media settings. normalize.ts takes them as an injected dependency so its
// walk over the part table can be tested alone; serve.ts passes these.
import { probeAudio, toWav } from './audio.js';
import { prepareImage } from './image-transform.js';
import type { MediaProcessors } from './normalize.js';
import type { MediaPolicy } from './policy.js';
import { probeVideo, sampleFrames } from './video.js';

const buf = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

export function mediaProcessors(policy: Partial<MediaPolicy> = {}): MediaProcessors {
  const video = (signal: AbortSignal) => ({
    maxDurationS: policy.maxVideoSeconds ?? 300,
    maxFrames: policy.maxVideoFrames ?? 18_000,
    ...(policy.maxVideoBytes !== undefined ? { maxBytes: policy.maxVideoBytes } : {}),
    ...(policy.maxPixels !== undefined ? { maxPixels: policy.maxPixels } : {}),
    signal,
  });
  const audio = (signal: AbortSignal) => ({
    maxDurationS: policy.maxAudioSeconds ?? 300,
    ...(policy.maxAudioBytes !== undefined ? { maxBytes: policy.maxAudioBytes } : {}),
    signal,
  });
  return {
    probeVideo: (bytes, signal) => probeVideo(bytes, video(signal)),
    sampleFrames: (bytes, n, signal) =>
      sampleFrames(bytes, n, { ...video(signal), ...(policy.resizeMaxPixels ? { maxFramePixels: policy.resizeMaxPixels } : {}) }),
    probeAudio: (bytes, signal) => probeAudio(bytes, audio(signal)),
    toWav: async (bytes, signal) => (await toWav(bytes, audio(signal))).bytes,
    async prepareImage(bytes, mime, opts) {
      const r = await prepareImage(bytes, mime, {
        accept: new Set(opts.accept),
        maxPixels: opts.maxPixels > 0 ? opts.maxPixels : undefined,
        ...(policy.maxPixels !== undefined ? { maxInputPixels: policy.maxPixels } : {}),
      });
      return { bytes: buf(r.bytes), mime: r.mime, resized: r.resized, converted: r.converted };
    },
  };
}
