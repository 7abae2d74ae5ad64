// Defence in depth for media URLs: the llama-server portico builds cannot download them, even when a
// request reaches it directly (the gateway never sends URLs; see SOURCE_PATCHES in the engine build).
// The request goes straight to the engine here, bypassing the gateway, and the loopback listener the
// URL names must see no connection.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dataUri, png } from '../gateway/media/test-images.js';
import { startServer, type TestServer } from '../gateway/media/test-server.js';
import { startLlamaServer, type LlamaServer } from './helpers/llama-server.js';

let engine: LlamaServer;
let listener: TestServer;

beforeAll(async () => {
  listener = await startServer((_, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(png(32, 32)));
  engine = await startLlamaServer(['-m', inject('tinyModel'), '--mmproj', inject('tinyMmproj'), '-c', '2048', '-np', '1', '-t', '2', '--no-webui']);
});
afterAll(async () => {
  await engine?.stop();
  await listener?.close();
});

const chatWith = async (url: string) => {
  const res = await fetch(`${engine.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ max_tokens: 1, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: 'x' }] }] }),
  });
  return { status: res.status, text: await res.text() };
};

describe('the built llama-server does not fetch media URLs', () => {
  it('an http:// image URL sent straight to the engine is refused, and nothing connects to it', async () => {
    const r = await chatWith(`${listener.origin}/a.png`);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.text).toContain('remote media URLs are disabled in this build');
    expect(listener.connections).toBe(0);
  });

  it('the same image as a data: URI is accepted (only the download is gone)', async () => {
    const r = await chatWith(dataUri('image/png', png(32, 32)));
    expect(r.status).toBe(200);
  });
});
