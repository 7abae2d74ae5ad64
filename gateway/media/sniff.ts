// Image validation: what the bytes really are (magic bytes, via file-type) and how big they
// claim to be (header fields, via image-size), before anything decodes them. The type a client
// declares is never trusted; the pixel cap stops decompression bombs (a 100-byte PNG can declare
// 60000×60000 and cost an engine 14 GB to decode).
import { fileTypeFromBuffer } from 'file-type';
import { imageSize } from 'image-size';
import { MediaRefusal, invalidImage, tooLarge } from './refusal.js';

export const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/bmp'] as const;
export type ImageMime = (typeof IMAGE_TYPES)[number];

/** file-type mime → the type handed on; APNG is a PNG to every decoder that matters here. */
const ACCEPTED: Record<string, ImageMime> = {
  'image/jpeg': 'image/jpeg',
  'image/png': 'image/png',
  'image/apng': 'image/png',
  'image/webp': 'image/webp',
  'image/gif': 'image/gif',
  'image/bmp': 'image/bmp',
};
/** image-size's name for each type, to check both libraries read the same format. */
const SIZE_TYPE: Record<ImageMime, string> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/bmp': 'bmp',
};

export interface ImageInfo {
  mime: ImageMime;
  width: number;
  height: number;
}

/** Sniff and size-check image bytes; throws MediaRefusal (invalid_image) when unacceptable. */
export async function inspectImage(bytes: Uint8Array, maxPixels: number): Promise<ImageInfo> {
  // file-type's parsers can throw on hostile input; that is "not an image", not our error.
  const detected = await fileTypeFromBuffer(bytes).catch(() => undefined);
  const mime = detected && ACCEPTED[detected.mime];
  if (!mime) {
    const seen = detected ? ` (it looks like ${detected.mime})` : '';
    throw invalidImage('not_image', `image data is not a JPEG, PNG, WebP, GIF or BMP image${seen}`);
  }
  let width: number | undefined;
  let height: number | undefined;
  // image-size reads through a DataView on `bytes.buffer`, so on a view into a larger (pooled)
  // buffer a truncated header would be completed with whatever follows in memory. Small Buffers
  // are such views; give it bytes that own their ArrayBuffer so a short read throws instead.
  const exact = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes);
  try {
    const size = imageSize(exact);
    if (size.type === SIZE_TYPE[mime]) ({ width, height } = size);
  } catch {
    // truncated or corrupt header: reported below
  }
  if (!width || !height || !Number.isSafeInteger(width) || !Number.isSafeInteger(height)) {
    throw invalidImage('bad_dimensions', `could not read the dimensions of the ${mime} image (corrupt or truncated)`);
  }
  if (width * height > maxPixels) {
    throw invalidImage(
      'too_many_pixels',
      `image is ${width}x${height} (${width * height} pixels), over the limit of ${maxPixels} pixels`,
    );
  }
  return { mime, width, height };
}

export interface DataUri {
  /** Everything between `data:` and the comma, e.g. `image/png;base64`. */
  header: string;
  /** The base64 payload, checked to be strict base64. */
  base64: string;
  /** Decoded size in bytes. */
  size: number;
}

const BASE64 = /^[A-Za-z0-9+/]*$/;

/** Decoded size of a strict base64 string, or -1 if it is not strict (alphabet, padding, length). */
export function strictBase64Length(s: string): number {
  if (s.length % 4 !== 0) return -1;
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  const body = pad ? s.slice(0, -pad) : s;
  if (!BASE64.test(body)) return -1;
  // Canonical: the bits after the last byte must be zero, so one string means one byte sequence.
  if (pad) {
    const last = body.charCodeAt(body.length - 1);
    const v = last === 43 ? 62 : last === 47 ? 63 : last >= 97 ? last - 71 : last >= 65 ? last - 65 : last + 4;
    if ((v & (pad === 2 ? 0x0f : 0x03)) !== 0) return -1;
  }
  return (s.length / 4) * 3 - pad;
}

/**
 * Split and check a `data:` URI without decoding it. Only base64 payloads are accepted
 * (percent-encoded image bytes are not something any client sends on purpose). The declared
 * type is kept only so the caller can tell whether it must be rewritten.
 */
export function parseDataUri(uri: string, maxBytes: number): DataUri {
  const comma = uri.indexOf(',');
  const header = comma < 0 ? '' : uri.slice(5, comma);
  if (comma < 0 || !/;base64$/i.test(header)) {
    throw invalidImage('bad_data_uri', 'data URI must be base64-encoded: data:image/<type>;base64,<data>');
  }
  const base64 = uri.slice(comma + 1);
  const size = strictBase64Length(base64);
  if (size < 0) throw invalidImage('bad_data_uri', 'data URI payload is not valid base64');
  if (size === 0) throw invalidImage('bad_data_uri', 'data URI payload is empty');
  if (size > maxBytes) throw tooLarge(`image is ${size} bytes, over the limit of ${maxBytes} bytes`);
  return { header, base64, size };
}

/** Base64 characters decoded for sniffing: 192 KiB, past the APP segments of nearly any JPEG. */
const HEAD_CHARS = 256 * 1024;

/**
 * inspectImage() on base64 data, decoding only the head: the engine decodes the image anyway, so
 * the gateway need not hold a second full copy. A JPEG whose frame header lies beyond the head
 * (huge EXIF/XMP) is decoded in full and inspected again.
 */
export async function inspectBase64(base64: string, maxPixels: number): Promise<ImageInfo> {
  if (base64.length <= HEAD_CHARS) return inspectImage(Buffer.from(base64, 'base64'), maxPixels);
  try {
    return await inspectImage(Buffer.from(base64.slice(0, HEAD_CHARS), 'base64'), maxPixels);
  } catch (err) {
    if (!(err instanceof MediaRefusal && err.reason === 'bad_dimensions')) throw err;
    return inspectImage(Buffer.from(base64, 'base64'), maxPixels);
  }
}
