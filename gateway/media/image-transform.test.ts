// prepareImage against real sharp/libvips: images made here by sharp and ffmpeg.
import { imageSize } from 'image-size';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { fitWithin } from './fit.js';
import { LLAMA_CPP_IMAGE_TYPES, PIL_IMAGE_TYPES, prepareImage } from './image-transform.js';
import { inspectImage } from './sniff.js';
import { ffmpegMake, testsrc } from './test-media.js';
import { bmp, pngBomb } from './test-images.js';
import { refusal } from './test-support.js';

const photo = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: '#3080c0', noise: { type: 'gaussian', mean: 128, sigma: 30 } } });


describe('prepareImage', () => {
  it('hands an accepted image that fits on as the very same bytes', async () => {
    const jpeg = await photo(64, 48).jpeg().toBuffer();
    const out = await prepareImage(jpeg, 'image/jpeg', { accept: LLAMA_CPP_IMAGE_TYPES, maxPixels: 64 * 48 });
    expect(out.bytes).toBe(jpeg);
    expect(out).toMatchObject({ mime: 'image/jpeg', width: 64, height: 48, resized: false, converted: false, oriented: false });
  });

  it('converts a WebP to PNG for llama.cpp (stb_image has no WebP) and leaves it alone for vLLM (PIL)', async () => {
    const webp = await photo(30, 20).webp().toBuffer();
    const forLlama = await prepareImage(webp, 'image/webp', { accept: LLAMA_CPP_IMAGE_TYPES });
    expect(forLlama).toMatchObject({ mime: 'image/png', width: 30, height: 20, converted: true, resized: false });
    expect(await inspectImage(forLlama.bytes, 1e6)).toEqual({ mime: 'image/png', width: 30, height: 20 });
    // Lossless: the PNG holds the WebP's decoded pixels exactly.
    const [a, b] = await Promise.all([sharp(webp).raw().toBuffer(), sharp(forLlama.bytes).raw().toBuffer()]);
    expect(b.equals(a)).toBe(true);
    const forVllm = await prepareImage(webp, 'image/webp', { accept: PIL_IMAGE_TYPES });
    expect(forVllm.bytes).toBe(webp);
  });

  it('shrinks a 12 MP photo to at most 1 MP, aspect kept, same type', async () => {
    const jpeg = await photo(4000, 3000).jpeg({ quality: 85 }).toBuffer();
    const out = await prepareImage(jpeg, 'image/jpeg', { accept: LLAMA_CPP_IMAGE_TYPES, maxPixels: 1_000_000 });
    expect(out).toMatchObject({ mime: 'image/jpeg', resized: true, converted: false });
    const size = imageSize(out.bytes);
    expect(size).toMatchObject({ type: 'jpg', width: out.width, height: out.height });
    expect(out.width * out.height).toBeLessThanOrEqual(1_000_000);
    expect(out.width * out.height).toBeGreaterThan(990_000);
    expect(out.width / out.height).toBeCloseTo(4 / 3, 2);
    expect(out.bytes.length).toBeLessThan(jpeg.length / 4);
  });

  it('keeps an odd aspect ratio to the pixel', async () => {
    const strip = await photo(5000, 37).png().toBuffer();
    const out = await prepareImage(strip, 'image/png', { accept: LLAMA_CPP_IMAGE_TYPES, maxPixels: 20_000 });
    expect(out.width * out.height).toBeLessThanOrEqual(20_000);
    expect(Math.abs(out.height - (out.width * 37) / 5000)).toBeLessThanOrEqual(1);
    expect(imageSize(out.bytes)).toMatchObject({ width: out.width, height: out.height });
    expect(fitWithin(1, 100_000, 10)).toEqual({ width: 1, height: 10 });
  });

  it('turns an EXIF-rotated photo upright (stb_image and PIL ignore the tag)', async () => {
    // Stored 40×20, left half red, right half blue, tagged orientation 6 (display turned 90° clockwise).
    const raw = Buffer.alloc(40 * 20 * 3);
    for (let y = 0; y < 20; y++) for (let x = 0; x < 40; x++) raw.set(x < 20 ? [255, 0, 0] : [0, 0, 255], (y * 40 + x) * 3);
    const tagged = await sharp(raw, { raw: { width: 40, height: 20, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    expect((await sharp(tagged).metadata()).orientation).toBe(6);
    const out = await prepareImage(tagged, 'image/jpeg', { accept: LLAMA_CPP_IMAGE_TYPES });
    expect(out).toMatchObject({ mime: 'image/jpeg', width: 20, height: 40, oriented: true, resized: false, converted: false });
    const meta = await sharp(out.bytes).metadata();
    expect(meta).toMatchObject({ width: 20, height: 40 });
    expect(meta.orientation ?? 1).toBe(1);
    // Turned clockwise, the stored left half is now on top.
    const { data } = await sharp(out.bytes).raw().toBuffer({ resolveWithObject: true });
    const colour = (x: number, y: number) => {
      const [r, , b] = data.subarray((y * 20 + x) * 3, (y * 20 + x) * 3 + 3);
      return r! > 200 && b! < 50 ? 'red' : b! > 200 && r! < 50 ? 'blue' : 'mixed';
    };
    expect([colour(0, 0), colour(19, 0), colour(10, 15)]).toEqual(['red', 'red', 'red']);
    expect([colour(0, 39), colour(19, 39), colour(10, 25)]).toEqual(['blue', 'blue', 'blue']);
  });

  it('passes an animated GIF on whole where GIF is accepted, else its first frame as PNG', async () => {
    const gif = ffmpegMake(testsrc(1, 5, 32, 32), 'gif');
    expect((await sharp(gif, { animated: true }).metadata()).pages).toBe(5);
    expect((await prepareImage(gif, 'image/gif', { accept: LLAMA_CPP_IMAGE_TYPES })).bytes).toBe(gif);
    const out = await prepareImage(gif, 'image/gif', { accept: new Set(['image/png', 'image/jpeg']) });
    expect(out).toMatchObject({ mime: 'image/png', width: 32, height: 32, converted: true });
    expect((await sharp(out.bytes).metadata()).pages ?? 1).toBe(1);
    const firstFrame = await sharp(gif).removeAlpha().raw().toBuffer(); // sharp reads page 0 by default
    expect((await sharp(out.bytes).removeAlpha().raw().toBuffer()).equals(firstFrame)).toBe(true);
  });

  it('passes a BMP on as it is (libvips has no BMP loader; every engine decodes BMP), pixel cap checked', async () => {
    const b = bmp(40, 30);
    const out = await prepareImage(b, 'image/bmp', { accept: LLAMA_CPP_IMAGE_TYPES, maxPixels: 300 });
    expect(out).toMatchObject({ mime: 'image/bmp', width: 40, height: 30, resized: false, converted: false });
    expect(out.bytes).toBe(b);
    expect(await refusal(prepareImage(b, 'image/bmp', { accept: LLAMA_CPP_IMAGE_TYPES, maxInputPixels: 1000 }))).toMatchObject({ reason: 'too_many_pixels' });
    expect(await refusal(prepareImage(b, 'image/bmp', { accept: new Set(['image/png']) }))).toMatchObject({ code: 'invalid_image' });
  });

  it('refuses a PNG bomb from its header, decoding nothing', async () => {
    const bomb = pngBomb(60000, 60000);
    const err = await refusal(prepareImage(bomb, 'image/png', { accept: LLAMA_CPP_IMAGE_TYPES, maxPixels: 1_000_000 }));
    expect(err).toMatchObject({ code: 'invalid_image', reason: 'too_many_pixels' });
    const within = await refusal(prepareImage(pngBomb(2000, 2000), 'image/png', { accept: LLAMA_CPP_IMAGE_TYPES, maxInputPixels: 3_999_999 }));
    expect(within.reason).toBe('too_many_pixels');
  });

  it('refuses a truncated photo it has to decode, and garbage', async () => {
    const jpeg = await photo(800, 600).jpeg().toBuffer();
    const cut = await refusal(prepareImage(jpeg.subarray(0, jpeg.length / 2), 'image/jpeg', { accept: LLAMA_CPP_IMAGE_TYPES, maxPixels: 10_000 }));
    expect(cut).toMatchObject({ code: 'invalid_image', reason: 'undecodable' });
    const junk = await refusal(prepareImage(Buffer.alloc(100, 7), 'image/png', { accept: LLAMA_CPP_IMAGE_TYPES }));
    expect(junk.code).toBe('invalid_image');
    expect(junk.toPorticoError('messages[0].content[0].image_url.url').status).toBe(400);
  });

  it('rejects with the abort reason when the request is already gone', async () => {
    const ctl = new AbortController();
    ctl.abort(new Error('client went away'));
    const png = await photo(8, 8).png().toBuffer();
    await expect(prepareImage(png, 'image/png', { accept: LLAMA_CPP_IMAGE_TYPES, signal: ctl.signal })).rejects.toThrow('client went away');
  });
});
