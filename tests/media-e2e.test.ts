// Media end to end on the CPU demo: the real launcher, gateway and llama-server (tiny VLM), media
// made by ffmpeg/sharp in the test. A listener on 127.0.0.1 serves the URLs and tells apart who
// connected: the gateway's fetcher (portico-media/…) or the engine (llama-cpp/…). The engine
// must never be the one.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { png, dataUri } from '../gateway/media/test-images.js';
import { ffmpegMake, H264, sine, testsrc } from '../gateway/media/test-media.js';
import { startServer, type TestServer } from '../gateway/media/test-server.js';
import { TINY_IMAGE_PROMPT_TOKEN_DELTA } from '../launcher/prepare/tiny-model.js';
import { DEMO_MODEL_NAME } from '../launcher/plan.js';
import { startStack, type Stack } from './helpers/stack.js';

const MODEL = DEMO_MODEL_NAME;
let stack: Stack;
let files: TestServer;
let mp4: Buffer;
let wav: Buffer;

type Chat = { usage?: { prompt_tokens: number }; error?: { code: string; param: string; message: string } };

beforeAll(async () => {
  mp4 = ffmpegMake([...testsrc(2, 10, 64, 48), ...H264], 'mp4');
  wav = ffmpegMake(sine(1), 'wav');
  const served: Record<string, [string, Buffer]> = { '/a.png': ['image/png', png(32, 32)], '/v.mp4': ['video/mp4', mp4], '/a.wav': ['audio/wav', wav] };
  files = await startServer((req, res) => {
    const f = served[req.url ?? ''];
    if (!f) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': f[0] }).end(f[1]);
  });
  // Private networks allowed so the gateway may fetch from the loopback listener.
  stack = await startStack({ NIM_MEDIA_ALLOW_PRIVATE_NETWORKS: '1', NIM_VIDEO_FRAMES: '4' });
});
afterAll(async () => {
  expect(await stack?.stop()).toBe(0);
  await files?.close();
});

const post = async (base: string, path: string, body: unknown) => {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Chat };
};
const chat = (base: string, ...content: unknown[]) => post(base, '/v1/chat/completions', { model: MODEL, max_tokens: 1, temperature: 0, messages: [{ role: 'user', content }] });
const text = { type: 'text', text: 'Describe' };
const image = { type: 'image_url', image_url: { url: dataUri('image/png', png(32, 32)) } };
const video = () => ({ type: 'video_url', video_url: { url: `data:video/mp4;base64,${mp4.toString('base64')}` } });

describe('CPU demo: media end to end', () => {
  it('llama-server says what the tiny VLM takes (/props): vision and video, no audio', () => {
    expect(stack.output()).toMatch(/model modalities: image, video\b/);
  });

  it('a 2-second ffmpeg video → 200, its prompt larger than one image’s', async () => {
    const [plain, withImage, withVideo] = [await chat(stack.url, text), await chat(stack.url, image, text), await chat(stack.url, video(), text)];
    expect([plain.status, withImage.status, withVideo.status]).toEqual([200, 200, 200]);
    const imageTokens = withImage.body.usage!.prompt_tokens - plain.body.usage!.prompt_tokens;
    expect(imageTokens).toBe(TINY_IMAGE_PROMPT_TOKEN_DELTA);
    expect(withVideo.body.usage!.prompt_tokens - plain.body.usage!.prompt_tokens).toBeGreaterThan(imageTokens);
  });

  it('audio to the tiny VLM → 400 unsupported_modality before the engine', async () => {
    const r = await chat(stack.url, text, { type: 'input_audio', input_audio: { data: wav.toString('base64'), format: 'wav' } });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'unsupported_modality', param: 'messages[0].content[1].type', message: `model ${MODEL} does not accept audio` });
  });

  it('a WebP (which stb_image cannot decode) → 200, converted for the engine', async () => {
    const webp = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#336699' } }).webp().toBuffer();
    const r = await chat(stack.url, { type: 'image_url', image_url: { url: `data:image/webp;base64,${webp.toString('base64')}` } }, text);
    expect(r.status).toBe(200);
    const plain = await chat(stack.url, text);
    expect(r.body.usage!.prompt_tokens - plain.body.usage!.prompt_tokens).toBe(TINY_IMAGE_PROMPT_TOKEN_DELTA);
  });

  it('the engine never opens a connection to a URL from any request, on any route', async () => {
    const urls = { png: `${files.origin}/a.png`, mp4: `${files.origin}/v.mp4` };
    const parts = [
      { type: 'image_url', image_url: { url: urls.png } },
      { type: 'input_image', image_url: urls.png },
      { type: 'video_url', video_url: { url: urls.mp4 } },
      { type: 'input_video', input_video: { url: urls.mp4 } },
    ];
    const bodies = (part: unknown) => ({ model: MODEL, max_tokens: 1, messages: [{ role: 'user', content: [part, text] }] });
    const statuses: number[] = [];
    for (const part of parts) {
      for (const path of ['/v1/chat/completions', '/v1/chat/completions/render', '/tokenize']) statuses.push((await post(stack.url, path, bodies(part))).status);
    }
    expect(statuses.every((s) => s === 200)).toBe(true);
    const agents = files.requests.map((r) => String(r.headers['user-agent']));
    expect(agents.length).toBeGreaterThan(0);
    expect(agents.filter((a) => !a.startsWith('portico-media/'))).toEqual([]);
  });
});

describe('CPU demo: an engine that reports no video modality gets sampled frames', () => {
  let proxy: http.Server;
  let front: Stack;
  beforeAll(async () => {
    // The real llama-server behind a proxy whose /props says video: false (as a build without
    // MTMD_VIDEO or ffmpeg would); everything else passes through untouched.
    const enginePort = stack.enginePort();
    proxy = http.createServer((req, res) => {
      const up = http.request({ host: '127.0.0.1', port: enginePort, method: req.method, path: req.url, headers: req.headers }, (r) => {
        if (req.url !== '/props') {
          res.writeHead(r.statusCode ?? 502, r.headers);
          return void r.pipe(res);
        }
        let s = '';
        r.setEncoding('utf8').on('data', (d: string) => (s += d)).on('end', () => {
          const props = JSON.parse(s) as { modalities: Record<string, boolean> };
          props.modalities.video = false;
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(props));
        });
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    front = await startStack({ NIM_ENGINE_URL: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, NIM_VIDEO_FRAMES: '4', NIM_MEDIA_ALLOW_PRIVATE_NETWORKS: '1' });
  });
  afterAll(async () => {
    expect(await front?.stop()).toBe(0);
    await new Promise((r) => proxy?.close(r));
  });

  it('a video URL → NIM_VIDEO_FRAMES=4 frames: exactly 4 images’ worth of prompt tokens', async () => {
    expect(front.output()).toMatch(/model modalities: image\b(?!, video)/);
    const plain = await chat(front.url, text);
    const r = await chat(front.url, { type: 'video_url', video_url: { url: `${files.origin}/v.mp4` } }, text);
    expect(r.status).toBe(200);
    expect(r.body.usage!.prompt_tokens - plain.body.usage!.prompt_tokens).toBe(4 * TINY_IMAGE_PROMPT_TOKEN_DELTA);
  });
});
