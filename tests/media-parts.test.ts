// Every media kind through the real gateway app and media step (ffprobe/ffmpeg, sharp), against a
// recording fake engine: what the engine receives for each part type, per model modalities and
// engine, and the refusals that happen before the engine is called.
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type AppDeps } from '../gateway/app.js';
import { Upstream } from '../gateway/upstream.js';
import { createMediaNormalizer, type MediaMetrics, type MediaNormalizer } from '../gateway/media/normalize.js';
import { mediaProcessors } from '../gateway/media/processors.js';
import { ffmpegMake, H264, sine, testsrc } from '../gateway/media/test-media.js';
import { startServer, type TestServer } from '../gateway/media/test-server.js';
import { loadSettings, type Settings } from '../core/config.js';
import { completion, fakeEngine, type FakeEngine } from './helpers/fake-engine.js';

type Policy = Settings['media'];
// The defaults of every setting (one parse), with what these tests need on top.
const basePolicy: Policy = {
  ...loadSettings({}).media,
  allowedDomains: [],
  allowPrivateNetworks: true,
  maxBytes: 8 << 20,
  fetchTimeoutMs: 10_000,
  maxPixels: 40_000_000,
  maxImages: 16,
  maxVideos: 1,
  maxAudios: 1,
  maxRedirects: 3,
  cacheBytes: 0,
};

let engine: FakeEngine;
let upstream: Upstream;
let files: TestServer;
const normalizers: MediaNormalizer[] = [];
let mp4: Buffer;
let wav: Buffer;
let webp: Buffer;
let photo: Buffer;

beforeAll(async () => {
  mp4 = ffmpegMake([...testsrc(2, 10, 160, 120), ...H264], 'mp4');
  wav = ffmpegMake(sine(1), 'wav');
  webp = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#c04020' } }).webp().toBuffer();
  photo = await sharp({ create: { width: 4000, height: 3000, channels: 3, background: '#2060a0' } }).jpeg({ quality: 80 }).toBuffer();
  engine = await fakeEngine();
  engine.on('/v1/chat/completions', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion())));
  upstream = new Upstream(engine.url);
  const bodies: Record<string, [string, Buffer]> = { '/v.mp4': ['video/mp4', mp4], '/a.wav': ['audio/wav', wav] };
  files = await startServer((req, res) => {
    const f = bodies[req.url ?? ''];
    if (!f) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': f[0] }).end(f[1]);
  });
});
afterAll(async () => {
  await Promise.all(normalizers.map((n) => n.close()));
  await upstream.close();
  await engine.close();
  await files.close();
});

function recorder() {
  const seen = { frames: 0, resized: 0, converted: 0, refusals: [] as string[], fetches: [] as string[] };
  const metrics: MediaMetrics = {
    fetch: (outcome, _s, _b, kind) => void seen.fetches.push(`${kind}:${outcome}`),
    cacheHit() {},
    refusal: (reason) => void seen.refusals.push(reason),
    framesSampled: (n) => void (seen.frames += n),
    imageTransformed: (what) => void seen[what]++,
  };
  return { metrics, seen };
}

function gateway(opts: { policy?: Partial<Policy>; engine?: AppDeps['engine']; resizeMaxPixels?: number } = {}) {
  const { metrics, seen } = recorder();
  const policy = { ...basePolicy, ...opts.policy };
  const media = createMediaNormalizer(policy, { metrics, processors: mediaProcessors(policy), allowedPorts: 'any' });
  normalizers.push(media);
  const { app } = createApp({
    settings: { maxRequestBytes: 32 << 20 },
    model: { id: 'm', root: '/m', maxModelLen: 4096, ...(opts.resizeMaxPixels ? { resizeMaxPixels: opts.resizeMaxPixels } : {}) },
    upstream,
    engine: opts.engine ?? { dialect: 'openai', kind: 'vllm', modalities: { image: true, video: true, audio: true } },
    readiness: { isReady: () => true, reason: () => '' },
    media,
  });
  const chat = async (...content: unknown[]) => {
    const from = engine.received.length;
    const res = await app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content }] }),
    });
    const sent = engine.received.slice(from).filter((r) => r.url === '/v1/chat/completions');
    const parts = sent.length ? (JSON.parse(sent[0]!.body) as { messages: { content: Record<string, unknown>[] }[] }).messages[0]!.content : undefined;
    return { status: res.status, body: (await res.json()) as { error?: { code: string; param: string; message: string } }, parts, calls: sent.length };
  };
  return { chat, seen };
}

const text = { type: 'text', text: 'describe' };
const b64 = (b: Buffer) => b.toString('base64');
const dataOf = (url: unknown) => Buffer.from(String(url).slice(String(url).indexOf(',') + 1), 'base64');

describe('video', () => {
  it('an engine that takes video gets a data: URI video_url, from a data: URI or a URL the gateway fetched', async () => {
    const g = gateway();
    const fromUrl = await g.chat(text, { type: 'video_url', video_url: { url: `${files.origin}/v.mp4` } });
    expect(fromUrl.status).toBe(200);
    expect(fromUrl.parts![1]).toEqual({ type: 'video_url', video_url: { url: `data:video/mp4;base64,${b64(mp4)}` } });
    // Declared as something else: the type comes from the bytes.
    const fromData = await g.chat({ type: 'video_url', video_url: { url: `data:video/webm;base64,${b64(mp4)}` } });
    expect(fromData.parts![0]).toEqual({ type: 'video_url', video_url: { url: `data:video/mp4;base64,${b64(mp4)}` } });
    expect(g.seen.fetches).toEqual(['video:ok']);
  });

  it('a model that takes images but not video gets NIM_VIDEO_FRAMES frames as image_url parts in its place', async () => {
    const g = gateway({ policy: { videoFrames: 4 }, engine: { dialect: 'llamacpp', kind: 'llamacpp', modalities: { image: true, video: false, audio: false } } });
    const r = await g.chat(text, { type: 'video_url', video_url: { url: `data:video/mp4;base64,${b64(mp4)}` } }, { type: 'text', text: 'after' });
    expect(r.status).toBe(200);
    expect(r.parts!.map((p) => p.type)).toEqual(['text', 'image_url', 'image_url', 'image_url', 'image_url', 'text']);
    for (const p of r.parts!.slice(1, 5)) {
      const url = (p.image_url as { url: string }).url;
      expect(url).toMatch(/^data:image\/png;base64,/);
      expect(await sharp(dataOf(url)).metadata()).toMatchObject({ width: 160, height: 120 });
    }
    expect(g.seen.frames).toBe(4);
  });

  it('refuses what is not a video, and more videos than NIM_MAX_VIDEOS_PER_PROMPT, before the engine', async () => {
    const g = gateway();
    const notVideo = await g.chat({ type: 'video_url', video_url: { url: `data:video/mp4;base64,${b64(wav)}` } });
    expect([notVideo.status, notVideo.body.error?.code, notVideo.body.error?.param]).toEqual([400, 'invalid_video', 'messages[0].content[0].video_url.url']);
    const v = { type: 'video_url', video_url: { url: `data:video/mp4;base64,${b64(mp4)}` } };
    const two = await g.chat(v, v);
    expect([two.status, two.body.error?.code, two.body.error?.param]).toEqual([400, 'too_many_videos', 'messages[0].content[1].video_url.url']);
    expect(notVideo.calls + two.calls).toBe(0);
  });
});

describe('audio', () => {
  it('audio_url and input_audio become input_audio {data, format} with the format read from the bytes', async () => {
    const g = gateway();
    const fromUrl = await g.chat({ type: 'audio_url', audio_url: { url: `${files.origin}/a.wav` } });
    expect(fromUrl.parts![0]).toEqual({ type: 'input_audio', input_audio: { data: b64(wav), format: 'wav' } });
    const mislabelled = await g.chat({ type: 'input_audio', input_audio: { data: b64(wav), format: 'mp3' } });
    expect(mislabelled.parts![0]).toEqual({ type: 'input_audio', input_audio: { data: b64(wav), format: 'wav' } });
  });

  it('llama.cpp (miniaudio: no Ogg) gets Ogg re-encoded as WAV; vLLM gets the Ogg as sent', async () => {
    const ogg = ffmpegMake([...sine(1), '-c:a', 'libvorbis'], 'ogg');
    const llama = gateway({ engine: { dialect: 'llamacpp', kind: 'llamacpp', modalities: { image: true, video: false, audio: true } } });
    const r = await llama.chat({ type: 'input_audio', input_audio: { data: b64(ogg), format: 'ogg' } });
    const sent = r.parts![0]!.input_audio as { data: string; format: string };
    expect(sent.format).toBe('wav');
    expect(Buffer.from(sent.data, 'base64').subarray(0, 4).toString('latin1')).toBe('RIFF');
    const vllm = await gateway().chat({ type: 'input_audio', input_audio: { data: b64(ogg), format: 'ogg' } });
    expect(vllm.parts![0]).toEqual({ type: 'input_audio', input_audio: { data: b64(ogg), format: 'ogg' } });
  });

  it('TensorRT-LLM (no input_audio) gets audio_url with a data: URI', async () => {
    const g = gateway({ engine: { dialect: 'openai', kind: 'tensorrt_llm', modalities: { image: true, video: true, audio: true } } });
    const r = await g.chat({ type: 'input_audio', input_audio: { data: b64(wav), format: 'wav' } });
    expect(r.parts![0]).toEqual({ type: 'audio_url', audio_url: { url: `data:audio/wav;base64,${b64(wav)}` } });
  });

  it('a model without audio: 400 unsupported_modality naming the part, nothing fetched, engine not called', async () => {
    const g = gateway({ engine: { dialect: 'llamacpp', kind: 'llamacpp', modalities: { image: true, video: true, audio: false } } });
    const before = files.connections;
    const r = await g.chat(text, { type: 'audio_url', audio_url: { url: `${files.origin}/a.wav` } });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'unsupported_modality', param: 'messages[0].content[1].type', message: 'model m does not accept audio' });
    expect(r.calls).toBe(0);
    expect(files.connections).toBe(before);
  });
});

describe('images', () => {
  it('WebP is converted to PNG for llama.cpp (stb_image has no WebP) and left alone for vLLM', async () => {
    const llama = gateway({ engine: { dialect: 'llamacpp', kind: 'llamacpp', modalities: { image: true, video: true, audio: false } } });
    const r = await llama.chat({ type: 'image_url', image_url: { url: `data:image/webp;base64,${b64(webp)}` } });
    const url = (r.parts![0]!.image_url as { url: string }).url;
    expect(url).toMatch(/^data:image\/png;base64,/);
    expect(await sharp(dataOf(url)).metadata()).toMatchObject({ format: 'png', width: 64, height: 48 });
    expect(llama.seen.converted).toBe(1);
    const vllm = gateway();
    const kept = await vllm.chat({ type: 'image_url', image_url: { url: `data:image/webp;base64,${b64(webp)}` } });
    expect(kept.parts![0]).toEqual({ type: 'image_url', image_url: { url: `data:image/webp;base64,${b64(webp)}` } });
  });

  it('a 4000×3000 photo with NIM_MEDIA_RESIZE_MAX_PIXELS=1000000 reaches the engine at ≤ 1 MP, aspect kept', async () => {
    const g = gateway({ policy: { resizeMaxPixels: 1_000_000 } });
    const r = await g.chat({ type: 'input_image', image_url: `data:image/jpeg;base64,${b64(photo)}` });
    expect(r.status).toBe(200);
    const url = (r.parts![0]!.image_url as { url: string }).url;
    const meta = await sharp(dataOf(url)).metadata();
    expect(meta.width! * meta.height!).toBeLessThanOrEqual(1_000_000);
    expect(meta.width! * meta.height!).toBeGreaterThan(900_000);
    expect(Math.abs(meta.width! / meta.height! - 4 / 3)).toBeLessThan(0.01);
    expect(g.seen.resized).toBe(1);
  });

  it("a model's own resize threshold (manifest media_resize_max_pixels) applies without the setting", async () => {
    const g = gateway({ resizeMaxPixels: 500_000 });
    const r = await g.chat({ type: 'image_url', image_url: { url: `data:image/jpeg;base64,${b64(photo)}` } });
    expect(r.status).toBe(200);
    const meta = await sharp(dataOf((r.parts![0]!.image_url as { url: string }).url)).metadata();
    expect(meta.width! * meta.height!).toBeLessThanOrEqual(500_000);
    expect(meta.width! * meta.height!).toBeGreaterThan(450_000);
    expect(g.seen.resized).toBe(1);
    // Without either threshold the photo goes as it came.
    const plain = await gateway().chat({ type: 'image_url', image_url: { url: `data:image/jpeg;base64,${b64(photo)}` } });
    expect((plain.parts![0]!.image_url as { url: string }).url).toBe(`data:image/jpeg;base64,${b64(photo)}`);
  });

  it('Responses-style input_text / input_image become text / image_url', async () => {
    const g = gateway();
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } }).png().toBuffer();
    const r = await g.chat({ type: 'input_text', text: 'hi' }, { type: 'input_image', image_url: `data:image/png;base64,${b64(png)}` });
    expect(r.parts).toEqual([
      { type: 'text', text: 'hi' },
      { type: 'image_url', image_url: { url: `data:image/png;base64,${b64(png)}` } },
    ]);
  });
});
