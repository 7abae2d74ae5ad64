// Audio parts (`audio_url`, `input_audio`): the real format from magic bytes (file-type), the
// duration from the container header by ffprobe (nothing decoded), with size and duration caps.
// The result names the format the OpenAI `input_audio {data, format}` part carries.
//
// Refusals are MediaRefusal; the caller adds the part's path (`err.toPorticoError(param)`).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileTypeFromBuffer } from 'file-type';
import { inputArgs, rational, runTool, withTempFile } from './ffmpeg.js';
import { MediaRefusal } from './refusal.js';

export type AudioFormat = 'wav' | 'mp3' | 'flac' | 'ogg';

export interface AudioInfo {
  format: AudioFormat;
  mime: string;
  durationS: number;
}

export interface AudioLimits {
  maxDurationS: number;
  /** Size cap (NIM_MEDIA_MAX_AUDIO_BYTES); checked before anything else. */
  maxBytes?: number;
  signal?: AbortSignal;
  /** Deadline of the ffprobe run (default 10 s). */
  timeoutMs?: number;
  /** Where the private temp copy goes (default: the OS temp dir). */
  tmpDir?: string;
}

/** file-type mime → format, the demuxer forced on the bytes, and the mime handed on. */
const FORMATS: Record<string, { format: AudioFormat; demuxer: string; mime: string }> = {
  'audio/wav': { format: 'wav', demuxer: 'wav', mime: 'audio/wav' },
  'audio/mpeg': { format: 'mp3', demuxer: 'mp3', mime: 'audio/mpeg' },
  'audio/flac': { format: 'flac', demuxer: 'flac', mime: 'audio/flac' },
  'audio/ogg': { format: 'ogg', demuxer: 'ogg', mime: 'audio/ogg' },
  'audio/ogg; codecs=opus': { format: 'ogg', demuxer: 'ogg', mime: 'audio/ogg' },
};

const invalid = (reason: 'not_audio' | 'undecodable', detail: string) => new MediaRefusal('invalid_audio', reason, detail);
const undecodable = (detail: string) => invalid('undecodable', `audio ${detail}`);

async function sniffAudio(bytes: Uint8Array, maxBytes: number | undefined) {
  if (maxBytes !== undefined && bytes.length > maxBytes) {
    throw new MediaRefusal('audio_too_large', 'too_large', `audio is ${bytes.length} bytes, over the limit of ${maxBytes} bytes`);
  }
  const detected = await fileTypeFromBuffer(bytes).catch(() => undefined);
  // file-type reports MPEG layer I/II as audio/mpeg too; only layer III is MP3.
  const entry = detected && (detected.mime !== 'audio/mpeg' || detected.ext === 'mp3') ? FORMATS[detected.mime] : undefined;
  if (!entry) {
    const seen = detected ? ` (it looks like ${detected.mime})` : '';
    throw invalid('not_audio', `audio data is not a WAV, MP3, FLAC or Ogg file${seen}`);
  }
  return entry;
}

type Entry = (typeof FORMATS)[string];

/** Format and duration of audio bytes, with the caps applied. */
export async function probeAudio(bytes: Uint8Array, lim: AudioLimits): Promise<AudioInfo> {
  const entry = await sniffAudio(bytes, lim.maxBytes);
  return withTempFile(bytes, (input) => probeFile(input, entry, lim), lim.tmpDir);
}

async function probeFile(input: string, entry: Entry, lim: AudioLimits): Promise<AudioInfo> {
  const out = await runTool(
    'ffprobe',
    ['-v', 'error', ...inputArgs(entry.demuxer), '-show_entries', 'format=duration:stream=codec_type,duration', '-of', 'json', input],
    { signal: lim.signal, timeoutMs: lim.timeoutMs ?? 10_000, refuse: undecodable },
  );
  let json: { format?: { duration?: string }; streams?: { codec_type?: string; duration?: string }[] };
  try {
    json = JSON.parse(out.toString('utf8')) as typeof json;
  } catch {
    throw invalid('undecodable', 'audio could not be read (unparsable probe output)');
  }
  const stream = json.streams?.find((s) => s.codec_type === 'audio');
  if (!stream) throw invalid('not_audio', 'audio file has no audio stream');
  const durationS = rational(json.format?.duration) ?? rational(stream.duration);
  if (durationS === undefined) throw invalid('undecodable', 'audio duration could not be read from the file');
  if (durationS > lim.maxDurationS) {
    throw new MediaRefusal('audio_too_long', 'too_long', `audio plays ${durationS.toFixed(1)} s, over the limit of ${lim.maxDurationS} s`);
  }
  return { format: entry.format, mime: entry.mime, durationS };
}

/**
 * The audio as 16-bit PCM WAV, for an engine that cannot decode the original format (llama.cpp's
 * miniaudio reads WAV, MP3 and FLAC, not Ogg; OpenAI's `input_audio.format` is wav or mp3). Probed
 * and capped first, in the same temp file. `sampleRate`/`mono` resample and downmix (most audio
 * encoders want 16 kHz mono).
 */
export async function toWav(
  bytes: Uint8Array,
  opts: AudioLimits & { sampleRate?: number; mono?: boolean },
): Promise<{ info: AudioInfo; bytes: Buffer }> {
  const entry = await sniffAudio(bytes, opts.maxBytes);
  return withTempFile(
    bytes,
    async (input, dir) => {
      const info = await probeFile(input, entry, opts);
      const out = join(dir, 'out.wav');
      const args = ['-nostdin', '-v', 'error', ...inputArgs(entry.demuxer), '-i', input, '-vn', '-c:a', 'pcm_s16le'];
      if (opts.sampleRate) args.push('-ar', String(opts.sampleRate));
      if (opts.mono) args.push('-ac', '1');
      args.push('-f', 'wav', out);
      await runTool('ffmpeg', args, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? 30_000, refuse: undecodable });
      return { info, bytes: await readFile(out) };
    },
    opts.tmpDir,
  );
}
