// Media normalization for chat requests: every `image_url` part leaves the gateway as a validated
// `data:` URI of its sniffed type, so the engine never touches the network (vLLM's own fetch was
// CVE-2025-6242) and never decodes bytes we have not checked.
//
// Per request: walk the parts (no allocation if there are none), fetch/validate them in parallel
// under a per-request and a process-wide bound, and only then mutate the body, so a refused
// request is left as it came. URL fetches go through an LRU cache and are shared between
// concurrent requests for the same URL.
import type { Settings } from '../../launcher/config.js';
import { PorticoError } from '../errors.js';
import { ByteLru, ttlFromCacheControl } from './cache.js';
import { createSafeFetcher, type SafeFetchDeps } from './fetch.js';
import { createLimiter } from './limit.js';
import { MediaRefusal, invalidImage } from './refusal.js';
import { inspectBase64, inspectImage, parseDataUri } from './sniff.js';

type MediaPolicy = Settings['media'];

/** Hooks for gateway metrics (issue D). `reason` is a RefusalReason: a small fixed label set. */
export interface MediaMetrics {
  /** One network fetch (redirects included), its duration, and the bytes received. */
  fetch(outcome: 'ok' | 'error', seconds: number, bytes: number): void;
  /** An image served from the cache, or by joining a fetch already in flight for the same URL. */
  cacheHit(): void;
  refusal(reason: string): void;
}

export interface MediaDeps extends SafeFetchDeps {
  metrics?: MediaMetrics;
  /** Clock for cache expiry (ms). */
  now?: () => number;
  /** Images of one request processed at once (default 4). */
  perRequestConcurrency?: number;
  /** Network fetches in flight across the process (default 16). */
  globalConcurrency?: number;
}

export interface MediaNormalizer {
  /** Mutates the parsed chat request body in place; returns true if anything changed. Throws PorticoError. */
  normalize(body: Record<string, unknown>, signal?: AbortSignal): Promise<boolean>;
  close(): Promise<void>;
}

const NO_METRICS: MediaMetrics = { fetch() {}, cacheHit() {}, refusal() {} };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** True if some message has array content with an `image_url` part. Allocates nothing. */
export function hasMedia(body: Record<string, unknown>): boolean {
  const messages = body.messages;
  if (!Array.isArray(messages)) return false;
  for (let i = 0; i < messages.length; i++) {
    const content: unknown = isObject(messages[i]) ? (messages[i] as Record<string, unknown>).content : undefined;
    if (!Array.isArray(content)) continue;
    for (let j = 0; j < content.length; j++) {
      const part: unknown = content[j];
      if (isObject(part) && part.type === 'image_url') return true;
    }
  }
  return false;
}

interface ImagePart {
  part: Record<string, unknown>;
  raw: string;
  /** Request path named in errors: `messages[0].content[1].image_url.url`. */
  param: string;
  /** `image_url: "https://..."`: rewritten to the `{ url }` object form engines expect. */
  stringForm: boolean;
}

export function createMediaNormalizer(policy: MediaPolicy, deps: MediaDeps = {}): MediaNormalizer {
  const metrics = deps.metrics ?? NO_METRICS;
  const fetcher = createSafeFetcher(policy, deps);
  const cache = new ByteLru<string>(policy.cacheBytes, deps.now ?? Date.now);
  const inflight = new Map<string, SharedFetch>();
  const network = createLimiter(deps.globalConcurrency ?? 16);
  const perRequest = Math.max(1, deps.perRequestConcurrency ?? 4);

  function refuse(err: MediaRefusal, param: string): PorticoError {
    metrics.refusal(err.reason);
    return err.toPorticoError(param);
  }

  function collect(body: Record<string, unknown>): ImagePart[] {
    const parts: ImagePart[] = [];
    (body.messages as unknown[]).forEach((msg, i) => {
      const content = isObject(msg) ? msg.content : undefined;
      if (!Array.isArray(content)) return;
      content.forEach((part: unknown, j) => {
        if (!isObject(part) || part.type !== 'image_url') return;
        const base = `messages[${i}].content[${j}].image_url`;
        const v = part.image_url;
        if (typeof v === 'string') {
          parts.push({ part, raw: v, param: base, stringForm: true });
        } else if (isObject(v) && typeof v.url === 'string') {
          parts.push({ part, raw: v.url, param: `${base}.url`, stringForm: false });
        } else {
          throw refuse(invalidImage('invalid_part', 'image_url must be an object with a string url'), base);
        }
      });
    });
    if (parts.length > policy.maxImages) {
      const err = new MediaRefusal(
        'too_many_images',
        'too_many_images',
        `request has ${parts.length} images, over the limit of ${policy.maxImages}`,
      );
      throw refuse(err, parts[policy.maxImages]!.param);
    }
    return parts;
  }

  /** The data URI to send instead of `raw`, or undefined if `raw` is already one and valid. */
  async function resolvePart(raw: string, signal: AbortSignal): Promise<string | undefined> {
    signal.throwIfAborted();
    if (/^data:/i.test(raw)) {
      const { base64 } = parseDataUri(raw, policy.maxBytes);
      const { mime } = await inspectBase64(base64, policy.maxPixels);
      const prefix = `data:${mime};base64,`;
      // Already canonical and of the right type: leave the (possibly large) string alone.
      return raw.startsWith(prefix) ? undefined : prefix + base64;
    }
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw invalidImage('invalid_part', 'image_url.url is neither an http(s) URL nor a data: URI');
    }
    return loadUrl(url, signal);
  }

  function loadUrl(url: URL, signal: AbortSignal): Promise<string> {
    url.hash = ''; // never sent to the server, so not part of the identity
    const key = url.href;
    const hit = cache.get(key);
    if (hit !== undefined) {
      metrics.cacheHit();
      return Promise.resolve(hit);
    }
    let shared = inflight.get(key);
    if (shared) metrics.cacheHit();
    else {
      shared = new SharedFetch((s) => network.run(() => fetchImage(url, key, s), s));
      inflight.set(key, shared);
      const current = shared;
      current.settled.then(() => {
        if (inflight.get(key) === current) inflight.delete(key);
      });
    }
    return shared.join(signal, () => {
      if (inflight.get(key) === shared) inflight.delete(key);
    });
  }

  async function fetchImage(url: URL, key: string, signal: AbortSignal): Promise<string> {
    const started = performance.now();
    let fetched;
    try {
      fetched = await fetcher.fetch(url, signal);
    } catch (err) {
      // A URL the policy refused was never fetched: that shows in refusals, not in fetch errors.
      const refused = err instanceof MediaRefusal && err.code === 'image_fetch_blocked';
      if (!signal.aborted && !refused) metrics.fetch('error', (performance.now() - started) / 1000, 0);
      throw err;
    }
    metrics.fetch('ok', (performance.now() - started) / 1000, fetched.bytes.length);
    const { mime } = await inspectImage(fetched.bytes, policy.maxPixels);
    const uri = `data:${mime};base64,${fetched.bytes.toString('base64')}`;
    cache.set(key, uri, uri.length, ttlFromCacheControl(fetched.cacheControl));
    return uri;
  }

  async function normalize(body: Record<string, unknown>, signal?: AbortSignal): Promise<boolean> {
    if (!hasMedia(body)) return false;
    const parts = collect(body);
    // One controller per request: the client going away, or the first refusal, stops the rest.
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(signal!.reason);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });

    const results: (string | undefined)[] = [];
    let failed: { err: unknown; index: number } | undefined;
    let next = 0;
    const worker = async () => {
      while (!failed && next < parts.length) {
        const index = next++;
        try {
          results[index] = await resolvePart(parts[index]!.raw, ctl.signal);
        } catch (err) {
          if (!failed) {
            failed = { err, index };
            ctl.abort(err);
          }
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(perRequest, parts.length) }, worker));
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }

    if (failed) {
      if (signal?.aborted) throw signal.reason;
      const { err, index } = failed;
      const param = parts[index]!.param;
      if (err instanceof MediaRefusal) throw refuse(err, param);
      if (err instanceof PorticoError) throw err;
      // A parser choking on hostile bytes is still the client's image, not our 500.
      metrics.refusal('unexpected');
      throw new PorticoError('invalid_image', 'image could not be processed', { param, cause: err });
    }

    let changed = false;
    parts.forEach(({ part, raw, stringForm }, i) => {
      const uri = results[i];
      if (stringForm) part.image_url = { url: uri ?? raw };
      else if (uri !== undefined) (part.image_url as Record<string, unknown>).url = uri;
      else return;
      changed = true;
    });
    return changed;
  }

  return {
    normalize,
    async close() {
      for (const shared of inflight.values()) shared.abort(new Error('media normalizer closed'));
      inflight.clear();
      cache.clear();
      await fetcher.close();
    },
  };
}

/**
 * One fetch shared by every request that wants the same URL while it runs. Each joiner can leave
 * (its client disconnected) without disturbing the others; the fetch itself is aborted only when
 * the last joiner has left.
 */
class SharedFetch {
  readonly #ctl = new AbortController();
  readonly #promise: Promise<string>;
  #waiters = 0;
  /** Resolves (never rejects) when the fetch is over, either way. */
  readonly settled: Promise<void>;

  constructor(run: (signal: AbortSignal) => Promise<string>) {
    this.#promise = run(this.#ctl.signal);
    this.settled = this.#promise.then(
      () => {},
      () => {},
    );
  }

  abort(reason: unknown): void {
    this.#ctl.abort(reason);
  }

  join(signal: AbortSignal, onAbandoned: () => void): Promise<string> {
    this.#waiters++;
    return new Promise<string>((resolve, reject) => {
      let done = false;
      const finish = () => {
        done = true;
        this.#waiters--;
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        if (done) return;
        finish();
        reject(signal.reason);
        if (this.#waiters === 0) {
          onAbandoned();
          this.#ctl.abort(signal.reason);
        }
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#promise.then(
        (v) => {
          if (done) return;
          finish();
          resolve(v);
        },
        (e: unknown) => {
          if (done) return;
          finish();
          reject(e);
        },
      );
    });
  }
}
