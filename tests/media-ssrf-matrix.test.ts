// The SSRF matrix (issue 11): every content-part type of the part table × every route the route
// table marks as carrying messages, through the real gateway app and media step, against a
// recording fake engine. Private networks off: 0 URLs reach the engine as URLs, the loopback
// listener the URLs point at counts 0 connections, the injected resolver and connector are never
// asked to reach a private address, and every refusal is a 400 whose `param` names the field.
// Private networks on: images arrive at the engine as data: URIs, never as URLs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type RouteSpec } from '../gateway/app.js';
import { Upstream } from '../gateway/upstream.js';
import { createMediaNormalizer, type MediaNormalizer } from '../gateway/media/normalize.js';
import { mediaProcessors } from '../gateway/media/processors.js';
import { PARTS, type PartRow } from '../gateway/media/parts.js';
import { png } from '../gateway/media/test-images.js';
import { loopbackOnlyConnector, startServer, type TestServer } from '../gateway/media/test-server.js';
import { loadSettings, type Settings } from '../core/config.js';
import { completion, fakeEngine, type FakeEngine } from './helpers/fake-engine.js';

const MODEL = { id: 'test-model', root: '/m', maxModelLen: 4096 };
const policy = (allowPrivateNetworks: boolean): Settings['media'] => ({
  ...loadSettings({}).media,
  allowedDomains: [],
  allowPrivateNetworks,
  maxBytes: 1 << 20,
  fetchTimeoutMs: 5000,
  maxPixels: 1_000_000,
  maxImages: 16,
  maxVideos: 4,
  maxAudios: 4,
  maxRedirects: 3,
  cacheBytes: 0,
});

let engine: FakeEngine;
let listener: TestServer;
let upstream: Upstream;
const resolved: string[] = [];
const conn = loopbackOnlyConnector();
const normalizers: MediaNormalizer[] = [];

beforeAll(async () => {
  engine = await fakeEngine();
  const ok = (_: unknown, res: import('node:http').ServerResponse) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion()));
  for (const p of ['/v1/chat/completions', '/v1/embeddings', '/tokenize', '/detokenize', '/v1/chat/completions/render', '/v1/completions/render']) engine.on(p, ok);
  listener = await startServer((_, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(png(4, 4)));
  upstream = new Upstream(engine.url);
});
afterAll(async () => {
  await Promise.all(normalizers.map((n) => n.close()));
  await upstream.close();
  await engine.close();
  await listener.close();
});

function gateway(allowPrivate: boolean) {
  // The resolver answers every name with loopback (a rebinding attacker's answer) and records the
  // question; the connector dials loopback only and records every address it was asked for.
  const media = createMediaNormalizer(policy(allowPrivate), {
    resolve: async (host) => {
      resolved.push(host);
      return [{ address: '127.0.0.1', family: 4 }];
    },
    connect: conn.connect,
    allowedPorts: 'any',
    processors: mediaProcessors(),
  });
  normalizers.push(media);
  return createApp({
    settings: { maxRequestBytes: 1 << 22 },
    model: MODEL,
    upstream,
    engine: { dialect: 'openai' },
    readiness: { isReady: () => true, reason: () => '' },
    media,
  });
}

/** A body for `route` whose message list carries `part` (tokenize/render/embeddings shapes included). */
function bodyFor(route: RouteSpec, part: unknown): Record<string, unknown> {
  const messages = [{ role: 'user', content: [part] }];
  if (route.path === '/detokenize') return { model: MODEL.id, tokens: [1], messages };
  return { model: MODEL.id, messages };
}

/** A part of `type` with `url` where the table says its URL or data lives. */
function partWith(type: string, row: PartRow, url: string): Record<string, unknown> {
  const keys = row.sources[0] ?? [type];
  const part: Record<string, unknown> = { type };
  let at = part;
  keys.slice(0, -1).forEach((k) => (at = at[k] = {} as Record<string, unknown>));
  at[keys.at(-1)!] = url;
  if (type === 'input_audio') (part.input_audio as Record<string, unknown>).format = 'wav';
  return part;
}

const URLS = (port: number) => [
  `http://127.0.0.1:${port}/a.png`,
  `http://localhost:${port}/a.png`,
  `http://rebind.example.com:${port}/a.png`,
  'http://169.254.169.254/latest/meta-data/',
  `http://[::1]:${port}/a.png`,
  'file:///etc/passwd',
  'gopher://127.0.0.1:70/x',
];

const mediaRows = Object.entries(PARTS as Record<string, PartRow>).filter(([, r]) => r.kind !== 'text');

describe('the route table', () => {
  it('declares the media fields of every POST route; the message-carrying ones name messages', () => {
    const { routes } = gateway(false);
    const posts = routes.filter((r) => r.method === 'POST');
    expect(posts.length).toBeGreaterThanOrEqual(7);
    for (const r of posts) expect(r.media, `${r.path} must declare media`).toBeDefined();
    const carrying = posts.filter((r) => r.media!.length > 0).map((r) => r.path);
    expect(carrying).toEqual(
      expect.arrayContaining(['/v1/chat/completions', '/v1/chat/completions/render', '/tokenize', '/detokenize', '/v1/embeddings']),
    );
  });
});

describe('SSRF matrix: private networks off', () => {
  it('every part type × every message-carrying route × every hostile URL: 400 naming the field, nothing reaches anyone', async () => {
    const { app, routes } = gateway(false);
    const carrying = routes.filter((r) => r.method === 'POST' && r.media!.length > 0);
    const before = { engine: engine.received.length, dialled: conn.dialled.length };
    let cases = 0;
    const failures: string[] = [];
    for (const route of carrying) {
      for (const [type, row] of mediaRows) {
        for (const url of URLS(listener.port)) {
          const res = await app.request(route.path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(bodyFor(route, partWith(type, row, url))) });
          const body = (await res.json()) as { error?: { param?: string; code?: string } };
          cases++;
          const param = body.error?.param ?? '';
          if (res.status !== 400 || !param.startsWith('messages[0].content[0]')) failures.push(`${route.path} ${type} ${url}: ${res.status} ${JSON.stringify(body.error)}`);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(cases).toBe(carrying.length * mediaRows.length * URLS(0).length);
    expect(engine.received.length - before.engine).toBe(0);
    expect(listener.connections).toBe(0);
    // The connector was never asked to dial anything: the address check refused first.
    expect(conn.dialled.length - before.dialled).toBe(0);
  });

  it('refuses unknown and untyped parts with param naming the type', async () => {
    const { app } = gateway(false);
    for (const [part, param, code] of [
      [{ type: 'image', image: `http://127.0.0.1:${listener.port}/` }, 'messages[0].content[0].type', 'unsupported_content_part'],
      [{ type: 'image_pil', image_pil: 'x' }, 'messages[0].content[0].type', 'unsupported_content_part'],
      [{ image_url: { url: `http://127.0.0.1:${listener.port}/` } }, 'messages[0].content[0].type', 'invalid_parameter'],
      [{ type: 'image_embeds', image_embeds: 'AAAA' }, 'messages[0].content[0].type', 'unsupported_content_part'],
      [{ type: 'file', file: { file_data: 'data:application/pdf;base64,AAAA' } }, 'messages[0].content[0].type', 'unsupported_content_part'],
    ] as const) {
      for (const path of ['/v1/chat/completions', '/tokenize', '/v1/chat/completions/render', '/v1/embeddings']) {
        const res = await app.request(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL.id, messages: [{ role: 'user', content: [part] }] }) });
        expect(res.status, `${path} ${JSON.stringify(part)}`).toBe(400);
        expect(((await res.json()) as { error: unknown }).error).toMatchObject({ param, code });
      }
    }
    expect(listener.connections).toBe(0);
  });
});

describe('smuggled keys: only what the table checked reaches the engine', () => {
  it('a text part with uuid + image_url (vLLM reads it as an image), extra keys beside a data: URI: all dropped', async () => {
    const { app } = gateway(false);
    const hostile = `http://127.0.0.1:${listener.port}/x`;
    const uri = `data:image/png;base64,${png(4, 4).toString('base64')}`;
    const content = [
      { type: 'text', text: 'hi', uuid: 'u1', image_url: { url: hostile } },
      { type: 'image_url', image_url: { url: uri, detail: 'low', data: hostile }, uuid: 'u2', video_url: { url: hostile } },
    ];
    for (const path of ['/v1/chat/completions', '/tokenize', '/v1/chat/completions/render']) {
      const from = engine.received.length;
      const res = await app.request(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL.id, messages: [{ role: 'user', content }] }) });
      expect(res.status, path).toBe(200);
      const sent = JSON.parse(engine.received[from]!.body) as { messages: { content: unknown[] }[] };
      expect(sent.messages[0]!.content).toEqual([
        { type: 'text', text: 'hi' },
        { type: 'image_url', image_url: { url: uri, detail: 'low' } },
      ]);
    }
    expect(listener.connections).toBe(0);
  });
});

describe('SSRF matrix: private networks on (images fetched by the gateway)', () => {
  it('image parts on every message-carrying route reach the engine as data: URIs, never as URLs', async () => {
    const { app, routes } = gateway(true);
    const carrying = routes.filter((r) => r.method === 'POST' && r.media!.length > 0);
    const url = `http://127.0.0.1:${listener.port}/a.png`;
    for (const route of carrying) {
      for (const [type, row] of mediaRows.filter(([, r]) => r.kind === 'image')) {
        const from = engine.received.length;
        const res = await app.request(route.path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(bodyFor(route, partWith(type, row, url))) });
        expect(res.status, `${route.path} ${type}`).toBe(200);
        const sent = engine.received.slice(from);
        expect(sent.length, `${route.path} ${type}`).toBeGreaterThan(0);
        for (const r of sent) {
          expect(r.body).not.toContain('http://');
          // Engine calls to /detokenize carry token ids only (the route itself, and the second half of
          // render on an engine without render routes: /tokenize with the messages, then /detokenize).
          if (!r.url.startsWith('/detokenize')) expect(r.body).toContain('"image_url":{"url":"data:image/png;base64,');
        }
      }
    }
    expect(listener.connections).toBeGreaterThan(0);
  });
});
