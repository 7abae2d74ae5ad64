import { describe, expect, it } from 'vitest';
import { MediaRefusal } from './refusal.js';
import { inspectBase64, inspectImage, parseDataUri, strictBase64Length } from './sniff.js';
import { bmp, gif, jpeg, png, pngBomb, webp } from './test-images.js';

const refusalOf = async (p: Promise<unknown> | (() => unknown)) => {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    expect(err).toBeInstanceOf(MediaRefusal);
    return err as MediaRefusal;
  }
  throw new Error('expected a refusal');
};

describe('inspectImage', () => {
  it.each([
    ['png', png(5, 3), 'image/png'],
    ['jpeg', jpeg(20, 13), 'image/jpeg'],
    ['gif', gif(5, 3), 'image/gif'],
    ['bmp', bmp(5, 3), 'image/bmp'],
    ['webp', webp(5, 3), 'image/webp'],
  ] as const)('reads a %s from its magic bytes and header', async (_, bytes, mime) => {
    const info = await inspectImage(bytes, 1000);
    expect(info.mime).toBe(mime);
    expect([info.width, info.height]).toEqual(mime === 'image/jpeg' ? [20, 13] : [5, 3]);
  });

  it('refuses bytes that are not an image, naming what they look like when known', async () => {
    expect((await refusalOf(inspectImage(Buffer.from('<html>hello</html>'), 1000))).reason).toBe('not_image');
    const pdf = await refusalOf(inspectImage(Buffer.from('%PDF-1.7\n%âãÏÓ\n1 0 obj\n'), 1000));
    expect(pdf.message).toMatch(/not a JPEG, PNG, WebP, GIF or BMP image \(it looks like application\/pdf\)/);
    expect((await refusalOf(inspectImage(Buffer.alloc(0), 1000))).code).toBe('invalid_image');
  });

  it('refuses a pixel bomb from its header, before decoding', async () => {
    const bomb = pngBomb(60000, 60000);
    expect(bomb.length).toBeLessThan(200);
    const err = await refusalOf(inspectImage(bomb, 40_000_000));
    expect(err.reason).toBe('too_many_pixels');
    expect(err.message).toBe('image is 60000x60000 (3600000000 pixels), over the limit of 40000000 pixels');
  });

  it('applies the pixel cap as width times height', async () => {
    await expect(inspectImage(png(10, 10), 100)).resolves.toMatchObject({ width: 10 });
    expect((await refusalOf(inspectImage(png(10, 11), 100))).reason).toBe('too_many_pixels');
  });

  it('refuses truncated headers and zero dimensions', async () => {
    expect((await refusalOf(inspectImage(png(4, 4).subarray(0, 20), 1000))).reason).toBe('bad_dimensions');
    expect((await refusalOf(inspectImage(Buffer.from('BM'), 1000))).code).toBe('invalid_image');
    expect((await refusalOf(inspectImage(jpeg(8, 8).subarray(0, 30), 1000))).reason).toBe('bad_dimensions');
    expect((await refusalOf(inspectImage(gif(0, 0), 1000))).reason).toBe('bad_dimensions');
  });
});

describe('strictBase64Length', () => {
  it.each([
    ['', 0],
    ['QQ==', 1],
    ['QUI=', 2],
    ['QUJD', 3],
    ['QUJDRA==', 4],
    ['+/+/', 3],
  ])('accepts %j (%i bytes)', (s, n) => {
    expect(strictBase64Length(s)).toBe(n);
  });

  it.each(['QQ', 'QQ=', 'Q===', 'QU JD', 'QUJD\n', 'QUJD====', 'QR==', 'QUJ=', '-_-_', 'QU=D', '====', 'QUJD%3D'])(
    'refuses %j',
    (s) => {
      expect(strictBase64Length(s)).toBe(-1);
    },
  );

  it('agrees with Buffer on every canonical encoding', () => {
    for (let n = 0; n < 40; n++) {
      const bytes = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) & 255));
      expect(strictBase64Length(bytes.toString('base64'))).toBe(n);
    }
  });
});

describe('parseDataUri', () => {
  it('accepts a base64 data URI whatever type it declares', () => {
    const bytes = png();
    for (const header of ['image/png;base64', 'image/jpeg;base64', 'application/octet-stream;base64', ';base64', 'image/png;name=a.png;BASE64']) {
      const d = parseDataUri(`data:${header},${bytes.toString('base64')}`, 1 << 20);
      expect(d).toEqual({ header, base64: bytes.toString('base64'), size: bytes.length });
    }
  });

  it('refuses non-base64 payloads, bad base64 and empty payloads', async () => {
    expect((await refusalOf(() => parseDataUri('data:image/png,%89PNG', 1000))).message).toMatch(/must be base64-encoded/);
    expect((await refusalOf(() => parseDataUri('data:image/png;base64', 1000))).reason).toBe('bad_data_uri');
    expect((await refusalOf(() => parseDataUri('data:image/png;base64,iVBOR w0K', 1000))).message).toBe(
      'data URI payload is not valid base64',
    );
    expect((await refusalOf(() => parseDataUri('data:image/png;base64,', 1000))).message).toBe('data URI payload is empty');
  });

  it('refuses payloads over maxBytes before decoding them', async () => {
    const err = await refusalOf(() => parseDataUri(`data:image/png;base64,${Buffer.alloc(1001).toString('base64')}`, 1000));
    expect(err.code).toBe('image_too_large');
    expect(err.message).toBe('image is 1001 bytes, over the limit of 1000 bytes');
  });
});

describe('inspectBase64', () => {
  it('reads large images from the head of the data', async () => {
    const big = Buffer.concat([png(7, 5), Buffer.alloc(1 << 20)]); // trailing bytes past IEND
    await expect(inspectBase64(big.toString('base64'), 1000)).resolves.toEqual({ mime: 'image/png', width: 7, height: 5 });
  });

  it('decodes in full when a JPEG frame header lies beyond the head', async () => {
    const j = jpeg(24, 16);
    // SOI, then 4 APP1 segments of ~64 KiB (say, XMP), then the rest of the JPEG.
    const app = Buffer.concat([Buffer.from([0xff, 0xe1, 0xff, 0xf0]), Buffer.alloc(0xfff0 - 2, 0x20)]);
    const padded = Buffer.concat([j.subarray(0, 2), app, app, app, app, j.subarray(2)]);
    expect(padded.length).toBeGreaterThan(256 * 1024);
    await expect(inspectImage(padded.subarray(0, 192 * 1024), 1000)).rejects.toThrow(/dimensions/);
    await expect(inspectBase64(padded.toString('base64'), 1000)).resolves.toEqual({ mime: 'image/jpeg', width: 24, height: 16 });
  });

  it('still refuses a pixel bomb or non-image data', async () => {
    const bomb = Buffer.concat([pngBomb(), Buffer.alloc(1 << 20)]);
    expect((await refusalOf(inspectBase64(bomb.toString('base64'), 1000))).reason).toBe('too_many_pixels');
    expect((await refusalOf(inspectBase64(Buffer.alloc(1 << 20, 0x41).toString('base64'), 1000))).reason).toBe('not_image');
  });
});
