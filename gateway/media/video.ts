// Video parts: what the bytes really are (magic bytes, file-type), how long they play and how many
// frames they hold (read from the container index by ffprobe, nothing decoded), and, for engines
// that take images but not video, N evenly spaced frames (one ffmpeg process).
//
// Refusals are MediaRefusal (code + metric reason); the caller turns them into a PorticoError with
// the part's path as `param` (`err.toPorticoError(param)`), as for images.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileTypeFromBuffer } from 'file-type';
import { inputArgs, rational, runTool, withTempFile } from './ffmpeg.js';
import { fitWithin } from './fit.js';
import { MediaRefusal, type RefusalReason } from './refusal.js';

export type VideoContainer = 'mp4' | 'mov' | 'webm' | 'mkv' | 'avi';

export interface VideoInfo {
  container: VideoContainer;
  /** The type to declare in a data: URI (from the bytes, never from the client). */
  mime: string;
  durationS: number;
  /** From the container index (MP4 `stsz`), else counted from packets, never by decoding. */
  frameCount: number;
  width: number;
  height: number;
}

export interface VideoLimits {
  maxDurationS: number;
  maxFrames: number;
  /** Size cap (NIM_MEDIA_MAX_VIDEO_BYTES); checked before anything else. */
  maxBytes?: number;
  /** Width × height of one frame; stops a decode bomb (a tiny file declaring 60000×60000). */
  maxPixels?: number;
  signal?: AbortSignal;
  /** Deadline of each ffprobe/ffmpeg run (default 10 s probe, 30 s sampling). */
  timeoutMs?: number;
  /** Where the private temp copy goes (default: the OS temp dir). */
  tmpDir?: string;
}

export interface Frame {
  mime: 'image/png' | 'image/jpeg';
  bytes: Buffer;
}

export interface SampleOptions extends VideoLimits {
  /** Frames larger than this many pixels are scaled down, aspect kept (default: as decoded). */
  maxFramePixels?: number;
  format?: 'png' | 'jpeg';
}

/** file-type mime → container, the ffmpeg demuxer forced on the bytes, and the mime handed on. */
const CONTAINERS: Record<string, { container: VideoContainer; demuxer: string; mime: string }> = {
  'video/mp4': { container: 'mp4', demuxer: 'mov', mime: 'video/mp4' },
  'video/x-m4v': { container: 'mp4', demuxer: 'mov', mime: 'video/mp4' },
  'video/quicktime': { container: 'mov', demuxer: 'mov', mime: 'video/quicktime' },
  'video/webm': { container: 'webm', demuxer: 'matroska', mime: 'video/webm' },
  'video/matroska': { container: 'mkv', demuxer: 'matroska', mime: 'video/x-matroska' },
  'video/vnd.avi': { container: 'avi', demuxer: 'avi', mime: 'video/x-msvideo' },
};

const refusal = (code: 'invalid_video' | 'video_too_large' | 'video_too_long', reason: RefusalReason, detail: string) =>
  new MediaRefusal(code, reason, detail);
const undecodable = (detail: string) => refusal('invalid_video', 'undecodable', `video ${detail}`);

/** Checks size and magic bytes; returns the container entry. */
async function sniffVideo(bytes: Uint8Array, maxBytes: number | undefined) {
  if (maxBytes !== undefined && bytes.length > maxBytes) {
    throw refusal('video_too_large', 'too_large', `video is ${bytes.length} bytes, over the limit of ${maxBytes} bytes`);
  }
  const detected = await fileTypeFromBuffer(bytes).catch(() => undefined);
  const entry = detected && CONTAINERS[detected.mime];
  if (!entry) {
    const seen = detected ? ` (it looks like ${detected.mime})` : '';
    throw refusal('invalid_video', 'not_video', `video data is not an MP4, QuickTime, WebM, Matroska or AVI file${seen}`);
  }
  return entry;
}

interface ProbeJson {
  format?: { duration?: string };
  streams?: {
    index?: number;
    codec_type?: string;
    width?: number;
    height?: number;
    nb_frames?: string;
    avg_frame_rate?: string;
    duration?: string;
    disposition?: { attached_pic?: number };
  }[];
}

async function probeFile(input: string, entry: (typeof CONTAINERS)[string], lim: VideoLimits): Promise<VideoInfo> {
  const run = { signal: lim.signal, timeoutMs: lim.timeoutMs ?? 10_000, refuse: undecodable };
  const out = await runTool(
    'ffprobe',
    [
      '-v', 'error',
      ...inputArgs(entry.demuxer),
      '-show_entries', 'format=duration:stream=index,codec_type,width,height,nb_frames,avg_frame_rate,duration:stream_disposition=attached_pic',
      '-of', 'json',
      input,
    ],
    run,
  );
  let json: ProbeJson;
  try {
    json = JSON.parse(out.toString('utf8')) as ProbeJson;
  } catch {
    throw undecodable('could not be read (unparsable probe output)');
  }
  // Cover art in an MP4 is a one-frame "video" stream: skip it.
  const stream = json.streams?.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
  if (!stream || !stream.width || !stream.height) throw refusal('invalid_video', 'not_video', 'video file has no video stream');
  const { width, height } = stream;
  if (lim.maxPixels !== undefined && width * height > lim.maxPixels) {
    throw refusal('invalid_video', 'too_many_pixels', `video frames are ${width}x${height}, over the limit of ${lim.maxPixels} pixels`);
  }

  let durationS = rational(json.format?.duration) ?? rational(stream.duration);
  let frameCount = rational(stream.nb_frames);
  if (frameCount === undefined && durationS !== undefined) {
    const fps = rational(stream.avg_frame_rate);
    if (fps !== undefined) frameCount = Math.round(durationS * fps);
  }
  if (durationS === undefined || frameCount === undefined) {
    // A stream-written WebM/MKV has no duration in its header: demux (not decode) its packets.
    ({ durationS, frameCount } = await countPackets(input, entry.demuxer, stream.index ?? 0, run));
  }
  if (durationS > lim.maxDurationS) {
    throw refusal('video_too_long', 'too_long', `video plays ${durationS.toFixed(1)} s, over the limit of ${lim.maxDurationS} s`);
  }
  if (frameCount > lim.maxFrames) {
    throw refusal('video_too_long', 'too_many_frames', `video has ${frameCount} frames, over the limit of ${lim.maxFrames}`);
  }
  return { container: entry.container, mime: entry.mime, durationS, frameCount, width, height };
}

async function countPackets(input: string, demuxer: string, index: number, run: Parameters<typeof runTool>[2]) {
  const out = await runTool(
    'ffprobe',
    ['-v', 'error', ...inputArgs(demuxer), '-select_streams', String(index), '-show_entries', 'packet=pts_time,duration_time', '-of', 'csv=p=0', input],
    { ...run, maxOutputBytes: 64 * 1024 * 1024 },
  );
  let frames = 0;
  let first = Infinity;
  let end = 0;
  for (const line of out.toString('latin1').split('\n')) {
    const [ptsText, durText] = line.split(',');
    if (!ptsText || ptsText === 'N/A') continue; // Number('') would be 0
    const pts = Number(ptsText);
    const dur = Number(durText);
    if (!Number.isFinite(pts)) continue;
    frames++;
    first = Math.min(first, pts);
    end = Math.max(end, pts + (Number.isFinite(dur) ? dur : 0));
  }
  if (frames === 0) throw undecodable('has no frames');
  return { durationS: end - first, frameCount: frames };
}

/** Type, duration, frame count and size of a video, with the caps applied. Decodes nothing. */
export async function probeVideo(bytes: Uint8Array, lim: VideoLimits): Promise<VideoInfo> {
  const entry = await sniffVideo(bytes, lim.maxBytes);
  return withTempFile(bytes, (input) => probeFile(input, entry, lim), lim.tmpDir);
}

/**
 * `n` frames, one from the middle of each of n equal slices of the video (frame index
 * ⌊(i + ½)·frames/n⌋), probed and capped first. One ffmpeg process with one decoder: a `select`
 * filter keeps those n frames and only they are scaled and encoded; decoding stops at the last.
 * (n inputs each seeking to its frame decode less, but hold n decoders: measured 2.2× the peak
 * memory for a 720p MP4, and no faster on 2 cores.)
 */
export async function sampleFrames(bytes: Uint8Array, n: number, opts: SampleOptions): Promise<Frame[]> {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`frame count must be a positive integer, got ${n}`);
  const entry = await sniffVideo(bytes, opts.maxBytes);
  return withTempFile(
    bytes,
    async (input, dir) => {
      const info = await probeFile(input, entry, opts);
      const count = Math.min(n, info.frameCount);
      const picks = Array.from({ length: count }, (_, i) => Math.floor(((i + 0.5) * info.frameCount) / count));
      const { width, height } = fitWithin(info.width, info.height, opts.maxFramePixels);
      const scale = width !== info.width || height !== info.height ? `,scale=${width}:${height}` : '';
      const format = opts.format ?? 'png';
      const args = [
        '-nostdin', '-v', 'error',
        ...inputArgs(entry.demuxer), '-i', input,
        '-vf', `select='${picks.map((k) => `eq(n,${k})`).join('+')}'${scale}`,
        '-fps_mode', 'passthrough',
        '-frames:v', String(count),
        ...(format === 'png' ? ['-c:v', 'png'] : ['-c:v', 'mjpeg', '-q:v', '3', '-pix_fmt', 'yuvj420p']),
        '-f', 'image2',
        join(dir, `frame-%03d.${format === 'png' ? 'png' : 'jpg'}`),
      ];
      await runTool('ffmpeg', args, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? 30_000, refuse: undecodable });
      const names = (await readdir(dir)).filter((f) => f.startsWith('frame-')).sort();
      if (names.length === 0) throw undecodable('has no decodable frame');
      const mime = format === 'png' ? 'image/png' : 'image/jpeg';
      return Promise.all(names.map(async (f) => ({ mime, bytes: await readFile(join(dir, f)) }) as Frame));
    },
    opts.tmpDir,
  );
}
