import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { KeyStore } from '../auth.js';
import { Upstream } from '../upstream.js';
import { PLAYGROUND_CSP, playgroundHtml, type PlaygroundConfig } from './page.js';

const MODEL = { id: 'portico/tiny-vlm', root: '/m.gguf', maxModelLen: 2048 };
const app = (settings: Parameters<typeof createApp>[0]['settings'] = {}, keys?: KeyStore) =>
  createApp({
    settings,
    model: MODEL,
    upstream: new Upstream('http://127.0.0.1:9'),
    engine: { dialect: 'llamacpp' },
    readiness: { isReady: () => false, reason: () => 'starting' },
    ...(keys ? { keys } : {}),
  });
const sha = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;
const configOf = (html: string) => JSON.parse(/<script type="application\/json" id="config">([^<]*)<\/script>/.exec(html)![1]!) as PlaygroundConfig;

describe('GET /playground', () => {
  it('one self-contained page: its inline script and style are exactly what the CSP hashes allow, nothing loads from elsewhere', async () => {
    const res = await app().app.request('/playground');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(res.headers.get('content-security-policy')).toBe(PLAYGROUND_CSP);
    const html = await res.text();
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)![1]!;
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    expect(PLAYGROUND_CSP).toContain(`script-src ${sha(script)};`);
    expect(PLAYGROUND_CSP).toContain(`style-src ${sha(style)};`);
    expect(PLAYGROUND_CSP).toMatch(/^default-src 'none'; /);
    expect(PLAYGROUND_CSP).toContain("connect-src 'self'");
    expect(PLAYGROUND_CSP).not.toContain('unsafe');
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//); // no CDN, no other origin
    expect(html).not.toMatch(/\sstyle=|\son\w+=/); // no inline attributes the CSP would refuse
    // The script parses (the browser test runs it).
    expect(() => new Function(script)).not.toThrow();
  });

  it('tells the page the limits it checks attachments against, from the settings', async () => {
    const media = { maxBytes: 1000, maxPixels: 2000, maxImages: 3, maxVideos: 4, maxVideoBytes: 5000 };
    const cfg = configOf(await (await app({ maxRequestBytes: 6000, media }).app.request('/playground')).text());
    expect(cfg).toEqual({ auth: false, limits: { maxRequestBytes: 6000, imageMaxBytes: 1000, imageMaxPixels: 2000, maxImages: 3, maxVideos: 4, videoMaxBytes: 5000 } });
    // The defaults are the settings' defaults.
    const d = configOf(await (await app().app.request('/playground')).text());
    expect(d.limits).toEqual({ maxRequestBytes: 33554432, imageMaxBytes: 20971520, imageMaxPixels: 40000000, maxImages: 16, maxVideos: 1, videoMaxBytes: 67108864 });
  });

  it('with keys: needs one exactly as /docs does (same access in the route table), and tells the page to ask for it', async () => {
    const keys = new KeyStore({ keys: ['sk-page-test-1234'] });
    const { app: a, routes } = app({}, keys);
    const access = (p: string) => routes.find((r) => r.path === p)?.access;
    expect(access('/playground')).toBe(access('/docs'));
    for (const p of ['/docs', '/playground']) {
      const res = await a.request(p);
      expect(res.status, p).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('missing_api_key');
    }
    const res = await a.request('/playground', { headers: { authorization: 'Bearer sk-page-test-1234' } });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(configOf(html).auth).toBe(true);
    expect(html).not.toContain('sk-page-test-1234');
  });

  it('with keys and docsPublic (NIM_DOCS_PUBLIC=1): both pages load without a key, the API still needs one', async () => {
    const keys = new KeyStore({ keys: ['sk-page-test-1234'] });
    const { app: a } = app({ docsPublic: true }, keys);
    for (const p of ['/docs', '/playground']) expect((await a.request(p)).status, p).toBe(200);
    expect(configOf(await (await a.request('/playground')).text()).auth).toBe(true);
    expect((await a.request('/v1/models')).status).toBe(401);
    expect((await a.request('/openapi.json')).status).toBe(401);
  });

  it('embedded config cannot close its script element', () => {
    const html = playgroundHtml({ auth: false, limits: { maxRequestBytes: 1, imageMaxBytes: 1, imageMaxPixels: 1, maxImages: 1, maxVideos: 1, videoMaxBytes: 1 }, x: '</script><script>alert(1)</script>' } as PlaygroundConfig);
    expect(html.match(/<\/script>/g)).toHaveLength(2);
  });

  it('/docs links to it', async () => {
    const html = await (await app().app.request('/docs')).text();
    expect(html).toContain("el('a', { href: 'playground' }");
  });
});
