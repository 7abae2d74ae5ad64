// Loopback only: positive cases use allowPrivateNetworks; refusals assert the server saw nothing.
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { Settings } from '../../core/config.js';
import { PorticoError } from '../../core/errors.js';
import { createMediaNormalizer, hasMedia, type MediaDeps, type MediaMetrics, type MediaNormalizer } from './normalize.js';
import { bmp, dataUri, gif, jpeg, png, pngBomb } from './test-images.js';
import { startServer, type TestServer } from './test-server.js';
import { testPolicy } from './test-support.js';

// fetchTimeoutMs stays a generous 5 s against a loaded machine; the timeout test sets 200 ms.
const basePolicy = testPolicy({ allowPrivateNetworks: true, maxBytes: 64 * 1024 });

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanup.splice(0).map((f) => f()));
});

function normalizer(policy: Partial<Settings['media']> = {}, deps: MediaDeps = {}): MediaNormalizer {
  const n = createMediaNormalizer({ ...basePolicy, ...policy }, deps);
  cleanup.push(() => n.close());
  return n;
}

async function serve(handler: Parameters<typeof startServer>[0]): Promise<TestServer> {
  const s = await startServer(handler);
  cleanup.push(() => s.close());
  return s;
}

function recordingMetrics() {
  const m = { fetches: [] as { outcome: string; bytes: number }[], hits: 0, refusals: [] as string[] };
  const metrics: MediaMetrics = {
    fetch: (outcome, seconds, bytes) => {
      expect(seconds).toBeGreaterThanOrEqual(0);
      m.fetches.push({ outcome, bytes });
    },
    cacheHit: () => m.hits++,
    refusal: (reason) => m.refusals.push(reason),
  };
  return { metrics, m };
}

const chat = (...content: unknown[]) => ({ model: 'm', messages: [{ role: 'user', content }] });
const imagePart = (url: string) => ({ type: 'image_url', image_url: { url } });
const text = { type: 'text', text: 'What is in this image?' };

async function refusalOf(p: Promise<unknown>): Promise<PorticoError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(PorticoError);
    return err as PorticoError;
  }
  throw new Error('expected a PorticoError');
}

const image = png(4, 4);
const imageServer = (headers: Record<string, string> = {}) =>
  serve((_, res) => res.writeHead(200, { 'content-type': 'image/png', ...headers }).end(image));

describe('hasMedia', () => {
  it.each([
    [{}, false],
    [{ messages: 'x' }, false],
    [{ messages: [{ role: 'user', content: 'hello' }] }, false],
    [chat(text), false],
    [{ messages: [null, 1, { content: [null, 'x', { type: 'text' }] }] }, false],
    [chat(text, imagePart('https://example.com/a.png')), true],
    [{ messages: [{ role: 'user', content: 'hi' }, { role: 'user', content: [{ type: 'image_url', image_url: 'x' }] }] }, true],
  ])('%j → %s', (body, expected) => {
    expect(hasMedia(body as Record<string, unknown>)).toBe(expected);
  });
});

describe('normalize', () => {
  it('leaves a request without images alone', async () => {
    const body = chat(text);
    const before = structuredClone(body);
    expect(await normalizer().normalize(body)).toBe(false);
    expect(body).toEqual(before);
  });

  it('replaces a URL with a data URI of the sniffed type, whatever the server labelled it', async () => {
    const server = await serve((_, res) => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(image));
    const body = chat(text, { type: 'image_url', image_url: { url: `${server.origin}/a.jpg`, detail: 'low' } });
    expect(await normalizer().normalize(body)).toBe(true);
    // Exactly what a client sending the same bytes as a data URI would send: same prompt tokens.
    expect(body.messages[0]!.content[1]).toEqual({ type: 'image_url', image_url: { url: dataUri('image/png', image), detail: 'low' } });
    expect(body.messages[0]!.content[0]).toEqual(text);
  });

  it('accepts the plain-string form and rewrites it to the object form', async () => {
    const server = await imageServer();
    const body = chat({ type: 'image_url', image_url: `${server.origin}/a.png` });
    expect(await normalizer().normalize(body)).toBe(true);
    expect(body.messages[0]!.content[0]).toEqual({ type: 'image_url', image_url: { url: dataUri('image/png', image) } });
  });

  it('validates a correct data URI and leaves the very same string in place', async () => {
    for (const [mime, bytes] of [
      ['image/png', image],
      ['image/jpeg', jpeg(16, 8)],
      ['image/gif', gif(3, 3)],
      ['image/bmp', bmp(3, 3)],
    ] as const) {
      const uri = dataUri(mime, bytes);
      const body = chat(imagePart(uri));
      expect(await normalizer().normalize(body), mime).toBe(false);
      expect((body.messages[0]!.content[0] as { image_url: { url: string } }).image_url.url).toBe(uri);
    }
  });

  it('rewrites a data URI whose declared type is wrong or not canonical', async () => {
    const payload = image.toString('base64');
    for (const uri of [`data:image/jpeg;base64,${payload}`, `DATA:image/png;BASE64,${payload}`, `data:image/png;name=x.png;base64,${payload}`]) {
      const body = chat(imagePart(uri));
      expect(await normalizer().normalize(body), uri).toBe(true);
      expect(body.messages[0]!.content[0]).toEqual(imagePart(`data:image/png;base64,${payload}`));
    }
  });

  it('handles several images across messages, in parallel, keeping each in its place', async () => {
    const images: Record<string, Buffer> = { '/a': png(2, 2), '/b': gif(2, 2), '/c': jpeg(8, 8) };
    const server = await serve((req, res) => res.end(images[req.url ?? '']));
    const body = {
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: [text, imagePart(`${server.origin}/a`), imagePart(`${server.origin}/b`)] },
        { role: 'assistant', content: 'ok' },
        { role: 'user', content: [imagePart(`${server.origin}/c`), imagePart(dataUri('image/png', image))] },
      ],
    };
    expect(await normalizer().normalize(body)).toBe(true);
    const urls = [body.messages[1]!.content[1], body.messages[1]!.content[2], body.messages[3]!.content[0], body.messages[3]!.content[1]].map(
      (p) => (p as { image_url: { url: string } }).image_url.url,
    );
    expect(urls).toEqual([dataUri('image/png', images['/a']!), dataUri('image/gif', images['/b']!), dataUri('image/jpeg', images['/c']!), dataUri('image/png', image)]);
  });
});

describe('refusals: 400/413 envelopes naming the exact part', () => {
  it.each([
    ['non-image bytes as a data URI', dataUri('image/png', Buffer.from('<html>hi</html>')), 'invalid_image', 400, /is not a JPEG, PNG, WebP, GIF or BMP image/],
    ['a pixel bomb', dataUri('image/png', pngBomb(60000, 60000)), 'invalid_image', 400, /60000x60000 \(3600000000 pixels\), over the limit of 1000000 pixels/],
    ['bad base64', 'data:image/png;base64,iVBORw0KGgo!!', 'invalid_image', 400, /not valid base64/],
    ['a percent-encoded data URI', 'data:image/png,%89PNG', 'invalid_image', 400, /must be base64-encoded/],
    ['an oversize data URI', dataUri('image/png', Buffer.alloc(70 * 1024)), 'image_too_large', 413, /over the limit of 65536 bytes/],
    ['not a URL', 'not a url', 'invalid_image', 400, /neither an http\(s\) URL nor a data: URI/],
    ['a file: URL', 'file:///etc/passwd', 'image_fetch_blocked', 400, /^Image URL refused: only http and https URLs are fetched, not file:$/],
  ])('%s', async (_, url, code, status, message) => {
    const body = chat(text, text, imagePart(url));
    const err = await refusalOf(normalizer().normalize(body));
    expect(err.toJSON()).toEqual({
      error: { message: expect.stringMatching(message), type: 'invalid_request_error', param: 'messages[0].content[2].image_url.url', code },
    });
    expect(err.status).toBe(status);
  });

  it('names the string form by its image_url param, and a malformed part likewise', async () => {
    const n = normalizer();
    expect((await refusalOf(n.normalize(chat({ type: 'image_url', image_url: 'gopher://x' })))).param).toBe('messages[0].content[0].image_url');
    const err = await refusalOf(n.normalize(chat(text, { type: 'image_url', image_url: { href: 'x' } })));
    expect([err.code, err.param, err.message]).toEqual(['invalid_image', 'messages[0].content[1].image_url', 'image_url must be an object with a string url']);
  });

  it('caps the number of images, naming the first one over the cap', async () => {
    const { metrics, m } = recordingMetrics();
    const uri = dataUri('image/png', image);
    const body = { messages: [{ role: 'user', content: [imagePart(uri), imagePart(uri)] }, { role: 'user', content: [text, imagePart(uri)] }] };
    const err = await refusalOf(normalizer({ maxImages: 2 }, { metrics }).normalize(body));
    expect([err.code, err.status, err.param, err.message]).toEqual(['too_many_images', 400, 'messages[1].content[1].image_url.url', 'request has 3 images, over the limit of 2']);
    expect(m.refusals).toEqual(['too_many_images']);
    expect((await refusalOf(normalizer({ maxImages: 0 }).normalize(chat(imagePart(uri))))).code).toBe('too_many_images');
  });

  it('refuses a private URL under the default policy without connecting, and counts it', async () => {
    const server = await imageServer();
    const { metrics, m } = recordingMetrics();
    const n = normalizer({ allowPrivateNetworks: false }, { metrics, allowedPorts: 'any' });
    const err = await refusalOf(n.normalize(chat(imagePart(`http://127.1:${server.port}/a.png`))));
    expect(err.toJSON().error).toEqual({
      message: 'Image URL refused: 127.0.0.1 is a loopback address',
      type: 'invalid_request_error',
      param: 'messages[0].content[0].image_url.url',
      code: 'image_fetch_blocked',
    });
    expect(server.connections).toBe(0);
    expect(m.refusals).toEqual(['blocked_address']);
    expect(m.fetches).toEqual([]);
  });

  it('reports fetch failures: timeout, upstream status, not an image, too large, pixel bomb', async () => {
    const routes: Record<string, (res: ServerResponse) => void> = {
      '/slow': () => {},
      '/404': (res) => res.writeHead(404).end(),
      '/html': (res) => res.writeHead(200, { 'content-type': 'image/png' }).end('<!doctype html><p>hi'),
      '/big': (res) => res.writeHead(200, { 'content-length': String(100 * 1024) }).end(Buffer.alloc(100 * 1024)),
      '/bomb': (res) => res.end(pngBomb(60000, 60000)),
    };
    const server = await serve((req, res) => routes[req.url ?? '']!(res));
    const n = normalizer();
    const quick = normalizer({ fetchTimeoutMs: 200 });
    const expected = [
      ['/slow', 'image_fetch_failed', 400, 'Image could not be fetched: timed out after 200 ms'],
      ['/404', 'image_fetch_failed', 400, 'Image could not be fetched: upstream answered 404'],
      ['/html', 'invalid_image', 400, 'image data is not a JPEG, PNG, WebP, GIF or BMP image'],
      ['/big', 'image_too_large', 413, 'image is 102400 bytes, over the limit of 65536 bytes'],
      ['/bomb', 'invalid_image', 400, 'image is 60000x60000 (3600000000 pixels), over the limit of 1000000 pixels'],
    ] as const;
    for (const [path, code, status, message] of expected) {
      const err = await refusalOf((path === '/slow' ? quick : n).normalize(chat(text, imagePart(`${server.origin}${path}`))));
      expect([err.code, err.status, err.message, err.param], path).toEqual([code, status, message, 'messages[0].content[1].image_url.url']);
    }
  });

  it('leaves the body untouched when any image is refused', async () => {
    const server = await imageServer();
    const body = chat(imagePart(`${server.origin}/a.png`), imagePart('data:image/png;base64,AAAA'));
    const before = structuredClone(body);
    await refusalOf(normalizer().normalize(body));
    expect(body).toEqual(before);
  });
});

describe('cache', () => {
  it('serves the second request from the cache', async () => {
    const server = await imageServer({ 'cache-control': 'max-age=60' });
    const { metrics, m } = recordingMetrics();
    const n = normalizer({}, { metrics });
    const first = chat(imagePart(`${server.origin}/a.png`));
    const second = chat(imagePart(`${server.origin}/a.png#fragment-is-not-identity`));
    await n.normalize(first);
    await n.normalize(second);
    expect(second).toEqual(first);
    expect(server.requests).toHaveLength(1);
    expect(m.fetches).toEqual([{ outcome: 'ok', bytes: image.length }]);
    expect(m.hits).toBe(1);
  });

  it('honours no-store, and expires entries after max-age', async () => {
    let now = 1_000_000;
    const noStore = await imageServer({ 'cache-control': 'no-store' });
    const maxAge = await imageServer({ 'cache-control': 'public, max-age=30' });
    const n = normalizer({}, { now: () => now });
    const load = (s: TestServer) => n.normalize(chat(imagePart(`${s.origin}/a.png`)));
    await load(noStore);
    await load(noStore);
    expect(noStore.requests).toHaveLength(2);
    await load(maxAge);
    now += 29_000;
    await load(maxAge);
    expect(maxAge.requests).toHaveLength(1);
    now += 2_000;
    await load(maxAge);
    expect(maxAge.requests).toHaveLength(2);
  });

  it('does not cache when NIM_MEDIA_CACHE_MB is 0', async () => {
    const server = await imageServer();
    const n = normalizer({ cacheBytes: 0 });
    await n.normalize(chat(imagePart(`${server.origin}/a.png`)));
    await n.normalize(chat(imagePart(`${server.origin}/a.png`)));
    expect(server.requests).toHaveLength(2);
  });
});

/**
 * A server whose responses wait for release(). It tracks the requests it holds (one whose client
 * hangs up stops being held) and the most it held at once.
 */
async function gatedServer() {
  const held = new Set<ServerResponse>();
  let peak = 0;
  let dropped = 0;
  const server = await serve((_, res) => {
    held.add(res);
    peak = Math.max(peak, held.size);
    res.once('close', () => {
      if (held.delete(res)) dropped++;
    });
  });
  const wait = async (ok: () => boolean) => {
    while (!ok()) await new Promise((r) => setTimeout(r, 2));
  };
  return {
    server,
    get peak() {
      return peak;
    },
    /** Requests whose client closed the connection before the response. */
    get dropped() {
      return dropped;
    },
    get held() {
      return held.size;
    },
    /** Answer the oldest held request only. */
    releaseOne() {
      const [res] = held;
      if (res) {
        held.delete(res);
        res.end(image);
      }
    },
    release() {
      for (const res of held) {
        held.delete(res);
        res.end(image);
      }
    },
    until: (n: number) => wait(() => held.size >= n),
    untilDropped: (n: number) => wait(() => dropped >= n),
  };
}

describe('concurrency', () => {
  it('shares one fetch between concurrent requests for the same URL', async () => {
    const g = await gatedServer();
    const { metrics, m } = recordingMetrics();
    const n = normalizer({}, { metrics });
    const a = chat(imagePart(`${g.server.origin}/same.png`));
    const b = chat(imagePart(`${g.server.origin}/same.png`));
    const both = Promise.all([n.normalize(a), n.normalize(b)]);
    await g.until(1);
    g.release();
    expect(await both).toEqual([true, true]);
    expect(b).toEqual(a);
    expect(g.server.requests).toHaveLength(1);
    expect(m.hits).toBe(1);
  });

  it('lets one client leave a shared fetch without failing the other', async () => {
    const g = await gatedServer();
    const n = normalizer();
    const ctl = new AbortController();
    const leaving = n.normalize(chat(imagePart(`${g.server.origin}/x.png`)), ctl.signal);
    const staying = n.normalize(chat(imagePart(`${g.server.origin}/x.png`)));
    await g.until(1);
    const reason = new Error('client went away');
    ctl.abort(reason);
    await expect(leaving).rejects.toBe(reason);
    g.release();
    await expect(staying).resolves.toBe(true);
    expect(g.server.requests).toHaveLength(1);
  });

  it('aborts the upstream fetch when its last client disconnects', async () => {
    const g = await gatedServer();
    const { metrics, m } = recordingMetrics();
    const n = normalizer({}, { metrics });
    const ctl = new AbortController();
    const pending = n.normalize(chat(imagePart(`${g.server.origin}/x.png`)), ctl.signal);
    await g.until(1);
    ctl.abort(new Error('gone'));
    await expect(pending).rejects.toThrow('gone');
    await g.untilDropped(1);
    expect(m.refusals).toEqual([]); // a client leaving is not a refusal
    // And a later request starts a fresh fetch rather than joining the aborted one.
    const again = n.normalize(chat(imagePart(`${g.server.origin}/x.png`)));
    await g.until(1);
    g.release();
    await expect(again).resolves.toBe(true);
  });

  it('bounds the fetches of one request and of the whole process', async () => {
    const g = await gatedServer();
    const n = normalizer({ maxImages: 8 }, { perRequestConcurrency: 2, globalConcurrency: 3 });
    const urls = (prefix: string, k: number) => Array.from({ length: k }, (_, i) => imagePart(`${g.server.origin}/${prefix}${i}.png`));
    const one = n.normalize(chat(...urls('a', 5)));
    await g.until(2);
    await new Promise((r) => setTimeout(r, 20));
    expect(g.held).toBe(2); // per-request bound
    const two = n.normalize(chat(...urls('b', 5)));
    await g.until(3);
    await new Promise((r) => setTimeout(r, 20));
    expect(g.held).toBe(3); // process-wide bound
    while (g.server.requests.length < 10 || g.held > 0) {
      g.release();
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(await Promise.all([one, two])).toEqual([true, true]);
    expect(g.peak).toBe(3);
  });

  it("fair slots: another key's one-image request takes the first freed slot ahead of a key's many queued URLs", async () => {
    const g = await gatedServer();
    const fast = await imageServer();
    const n = normalizer({ maxImages: 8 }, { perRequestConcurrency: 4, globalConcurrency: 2 });
    const urls = (prefix: string, k: number) => Array.from({ length: k }, (_, i) => imagePart(`${g.server.origin}/${prefix}${i}.png`));
    // Key A: three requests of two slow URLs each; the first holds both slots, the other two queue
    // (never served yet, like B: a per-request turn alone would pick A's next request first).
    const a = ['a', 'b', 'c'].map((p) => n.normalize(chat(...urls(p, 2)), undefined, { group: 'A' }));
    await g.until(2);
    let bDone = false;
    const b = n.normalize(chat(imagePart(`${fast.origin}/one.png`)), undefined, { group: 'B' }).then((v) => ((bDone = true), v));
    await new Promise((r) => setTimeout(r, 20));
    expect(bDone).toBe(false); // both slots are A's
    // Free exactly one slot: it goes to B, whose fetch completes while A's four URLs still queue.
    g.releaseOne();
    await expect(b).resolves.toBe(true);
    expect(fast.requests).toHaveLength(1);
    expect(g.server.requests).toHaveLength(2);
    while (g.server.requests.length < 6 || g.held > 0) {
      g.release();
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(await Promise.all(a)).toEqual([true, true, true]);
  });

  it('stops the other fetches of a request at its first refusal', async () => {
    const g = await gatedServer();
    // Answers 404, but only once the first image's fetch is being held by the gated server.
    const failing = await serve((_, res) => void g.until(1).then(() => res.writeHead(404).end()));
    const n = normalizer();
    const err = await refusalOf(n.normalize(chat(imagePart(`${g.server.origin}/held.png`), imagePart(`${failing.origin}/x.png`))));
    expect([err.param, err.message]).toEqual(['messages[0].content[1].image_url.url', 'Image could not be fetched: upstream answered 404']);
    // The held fetch had no other client, so it was abandoned and its connection closed.
    await g.untilDropped(1);
    expect(g.held).toBe(0);
  });
});
