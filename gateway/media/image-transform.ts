// Image preparation with sharp (libvips): convert what the engine cannot decode, shrink what is
// larger than it needs, and otherwise hand the client's bytes on untouched (no re-encode, so no
// quality loss and no CPU spent when nothing changes).
//
// Decoders: llama.cpp reads images with stb_image (JPEG, PNG, BMP, GIF first frame, TGA, PSD, HDR,
// PNM; WebP only through ffmpeg, and only in builds with MTMD_VIDEO); vLLM uses PIL (all of the
// sniffed types). The caller says what its engine accepts. A 12 MP photo costs a dynamic-resolution
// VLM many times the prefill tokens it needs: `maxPixels` shrinks it, aspect ratio kept.
//
// EXIF orientation: stb_image and PIL ignore it, so a phone photo would reach the model sideways.
// An image with a non-default orientation is turned upright (and so re-encoded).
import sharp, { type Metadata, type Sharp } from 'sharp';
import { fitWithin } from './fit.js';
import { MediaRefusal, invalidImage } from './refusal.js';
import { inspectImage } from './sniff.js';

// libvips' operation cache keeps decoded inputs for reuse: a gateway sees each image once.
sharp.cache(false);

export interface PrepareOptions {
  /** Types the engine decodes (e.g. LLAMA_CPP_IMAGE_TYPES); anything else becomes PNG. */
  accept: ReadonlySet<string>;
  /** Shrink larger images to at most this many pixels (NIM_MEDIA_RESIZE_MAX_PIXELS); undefined: never. */
  maxPixels?: number | undefined;
  /** Refuse anything declaring more (a decode bomb); default 40 MP, as NIM_MEDIA_MAX_PIXELS. */
  maxInputPixels?: number;
  signal?: AbortSignal;
}

export interface PreparedImage {
  bytes: Uint8Array;
  mime: string;
  width: number;
  height: number;
  /** Scaled down to fit maxPixels. */
  resized: boolean;
  /** Re-encoded into another type (the engine could not decode the original). */
  converted: boolean;
  /** Turned upright from its EXIF orientation. */
  oriented: boolean;
}

/** What llama.cpp's stb_image decodes (of the types the gateway sniffs). */
export const LLAMA_CPP_IMAGE_TYPES: ReadonlySet<string> = new Set(['image/jpeg', 'image/png', 'image/bmp', 'image/gif']);
/** What vLLM's PIL decodes (of the types the gateway sniffs). */
export const PIL_IMAGE_TYPES: ReadonlySet<string> = new Set(['image/jpeg', 'image/png', 'image/bmp', 'image/gif', 'image/webp']);

/** Output encoders for a type kept as is; anything else is written as PNG. */
const ENCODE: Record<string, (s: Sharp) => Sharp> = {
  'image/jpeg': (s) => s.jpeg({ quality: 90 }),
  'image/png': (s) => s.png(),
  'image/webp': (s) => s.webp({ quality: 90 }),
};

/**
 * `mime` is the sniffed type (sniff.ts), not the client's claim. Throws MediaRefusal (invalid_image)
 * for bytes sharp cannot read when it has to decode them.
 */
export async function prepareImage(bytes: Uint8Array, mime: string, opts: PrepareOptions): Promise<PreparedImage> {
  opts.signal?.throwIfAborted();
  const limit = opts.maxInputPixels ?? 40_000_000;
  if (mime === 'image/bmp') return passBmp(bytes, opts, limit);
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata(); // header only: nothing decoded
  } catch (err) {
    throw refusal(err);
  }
  const { width: w0, height: h0 } = meta;
  if (!w0 || !h0) throw invalidImage('bad_dimensions', `could not read the dimensions of the ${mime} image`);
  if (w0 * h0 > limit) {
    throw invalidImage('too_many_pixels', `image is ${w0}x${h0} (${w0 * h0} pixels), over the limit of ${limit} pixels`);
  }
  const oriented = (meta.orientation ?? 1) !== 1;
  // Orientations 5–8 are quarter turns: the upright image has width and height swapped.
  const [width, height] = oriented && meta.orientation! >= 5 ? [h0, w0] : [w0, h0];
  const target = fitWithin(width, height, opts.maxPixels);
  const resized = target.width !== width || target.height !== height;
  const accepted = opts.accept.has(mime);
  if (accepted && !resized && !oriented) return { bytes, mime, width, height, resized, converted: false, oriented };

  const outMime = accepted && ENCODE[mime] ? mime : 'image/png';
  // animated: false reads the first frame only (what stb_image does with a GIF). failOn stays at
  // its default, 'warning' (the strictest: a truncated file is refused); 'error' measured 2× slower.
  let pipeline = sharp(bytes, { limitInputPixels: limit, animated: false }).rotate();
  if (resized) pipeline = pipeline.resize(target.width, target.height, { fit: 'fill' });
  pipeline = (ENCODE[outMime] ?? ENCODE['image/png']!)(pipeline);
  let out: Buffer;
  try {
    out = await pipeline.toBuffer();
  } catch (err) {
    throw refusal(err);
  }
  opts.signal?.throwIfAborted();
  return { bytes: out, mime: outMime, width: target.width, height: target.height, resized, converted: outMime !== mime, oriented };
}

/**
 * libvips (sharp's prebuilt build) has no BMP loader. Every engine decodes BMP (stb_image, PIL), so
 * a BMP goes on as it is: the header is checked, but it is neither shrunk nor converted.
 */
async function passBmp(bytes: Uint8Array, opts: PrepareOptions, limit: number): Promise<PreparedImage> {
  if (!opts.accept.has('image/bmp')) throw invalidImage('undecodable', 'BMP images cannot be converted for this engine; send PNG or JPEG');
  const { width, height } = await inspectImage(bytes, limit);
  return { bytes, mime: 'image/bmp', width, height, resized: false, converted: false, oriented: false };
}

function refusal(err: unknown): MediaRefusal {
  const detail = err instanceof Error ? err.message.split('\n')[0]!.slice(0, 200) : 'unknown error';
  return new MediaRefusal('invalid_image', 'undecodable', `image could not be decoded (${detail})`, { cause: err });
}
