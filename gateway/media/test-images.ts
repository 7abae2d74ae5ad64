// Tiny images built in code for tests (the repository commits no binaries). PNG, GIF, BMP and JPEG
// are complete and decodable (checked against stb_image, which llama.cpp uses); the WebP is only
// a valid header (a VP8L bitstream is not worth hand-writing, and stb_image has no WebP anyway).
// Not used at runtime.
import { crc32, deflateSync } from 'node:zlib';

const u16le = (n: number) => Buffer.from([n & 255, (n >> 8) & 255]);
const u16be = (n: number) => Buffer.from([(n >> 8) & 255, n & 255]);
const u32le = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const u32be = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

function pngChunk(type: string, data: Buffer): Buffer {
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  return Buffer.concat([u32be(data.length), td, u32be(crc32(td))]);
}

/** An RGB PNG of `width`×`height` filled with `rgb`. */
export function png(width = 2, height = 2, rgb: [number, number, number] = [200, 30, 30]): Buffer {
  const row = Buffer.alloc(1 + width * 3); // filter byte 0, then pixels
  for (let x = 0; x < width; x++) row.set(rgb, 1 + x * 3);
  const raw = Buffer.concat(Array.from({ length: height }, () => row));
  return pngWith(width, height, deflateSync(raw));
}

/** A ~100-byte PNG whose header declares `width`×`height`: a decompression bomb for any decoder. */
export function pngBomb(width = 60000, height = 60000): Buffer {
  return pngWith(width, height, deflateSync(Buffer.alloc(16)));
}

function pngWith(width: number, height: number, idat: Buffer): Buffer {
  const ihdr = Buffer.concat([u32be(width), u32be(height), Buffer.from([8, 2, 0, 0, 0])]);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', idat),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A 2-colour GIF89a, every pixel colour 0. LZW: a clear code every two pixels keeps codes 3 bits. */
export function gif(width = 2, height = 2): Buffer {
  const codes: number[] = [];
  for (let i = 0; i < width * height; i += 2) codes.push(4, 0, ...(i + 1 < width * height ? [0] : []));
  codes.push(5); // end of information
  const bytes: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const c of codes) {
    acc |= c << bits;
    bits += 3;
    while (bits >= 8) {
      bytes.push(acc & 255);
      acc >>= 8;
      bits -= 8;
    }
  }
  if (bits > 0) bytes.push(acc & 255);
  const blocks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 255) {
    const part = bytes.slice(i, i + 255);
    blocks.push(Buffer.from([part.length, ...part]));
  }
  return Buffer.concat([
    Buffer.from('GIF89a', 'latin1'),
    u16le(width),
    u16le(height),
    Buffer.from([0x80, 0, 0]), // global colour table of 2 entries
    Buffer.from([0, 0, 0, 255, 255, 255]),
    Buffer.from([0x2c]),
    u16le(0),
    u16le(0),
    u16le(width),
    u16le(height),
    Buffer.from([0, 2]), // no local table; LZW minimum code size 2
    ...blocks,
    Buffer.from([0, 0x3b]),
  ]);
}

/** A 24-bit uncompressed BMP. */
export function bmp(width = 2, height = 2, rgb: [number, number, number] = [30, 200, 30]): Buffer {
  const stride = Math.ceil((width * 3) / 4) * 4;
  const pixels = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) pixels.set([rgb[2], rgb[1], rgb[0]], y * stride + x * 3);
  }
  const header = Buffer.concat([
    Buffer.from('BM', 'latin1'),
    u32le(54 + pixels.length),
    u32le(0),
    u32le(54),
    u32le(40),
    u32le(width),
    u32le(height),
    u16le(1),
    u16le(24),
    u32le(0),
    u32le(pixels.length),
    u32le(2835),
    u32le(2835),
    u32le(0),
    u32le(0),
  ]);
  return Buffer.concat([header, pixels]);
}

/**
 * A baseline greyscale JPEG, mid-grey. Both Huffman tables hold a single 1-bit code (DC "no
 * difference", AC "end of block"), so each 8×8 block is the two bits 00.
 */
export function jpeg(width = 8, height = 8): Buffer {
  const segment = (marker: number, body: Buffer) => Buffer.concat([Buffer.from([0xff, marker]), u16be(body.length + 2), body]);
  const oneCodeTable = (tableClass: number) =>
    segment(0xc4, Buffer.concat([Buffer.from([tableClass << 4]), Buffer.from([1, ...new Array<number>(15).fill(0)]), Buffer.from([0])]));
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  const bits = blocks * 2;
  const scan = Buffer.alloc(Math.ceil(bits / 8));
  if (bits % 8) scan[scan.length - 1] = 0xff >> bits % 8; // pad the last byte with 1 bits
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    segment(0xdb, Buffer.concat([Buffer.from([0]), Buffer.alloc(64, 1)])),
    segment(0xc0, Buffer.concat([Buffer.from([8]), u16be(height), u16be(width), Buffer.from([1, 1, 0x11, 0])])),
    oneCodeTable(0),
    oneCodeTable(1),
    segment(0xda, Buffer.from([1, 1, 0x00, 0, 63, 0])),
    scan,
    Buffer.from([0xff, 0xd9]),
  ]);
}

/** A lossless WebP header (RIFF/WEBP/VP8L) declaring `width`×`height`; the bitstream is empty. */
export function webp(width = 2, height = 2): Buffer {
  const dims = ((width - 1) & 0x3fff) | (((height - 1) & 0x3fff) << 14);
  const vp8l = Buffer.concat([Buffer.from([0x2f]), u32le(dims), Buffer.alloc(3)]);
  const chunk = Buffer.concat([Buffer.from('VP8L', 'latin1'), u32le(vp8l.length), vp8l]);
  return Buffer.concat([Buffer.from('RIFF', 'latin1'), u32le(4 + chunk.length), Buffer.from('WEBP', 'latin1'), chunk]);
}

export const dataUri = (mime: string, bytes: Buffer) => `data:${mime};base64,${bytes.toString('base64')}`;
