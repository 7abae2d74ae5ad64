// The media step of every route that carries messages: each content part is looked up in the
// part table (parts.ts) and leaves the gateway as data the engine can use without the network
// (vLLM's own fetch was CVE-2025-6242; llama-server fetches http:// URLs itself), or the request is
// refused. Images become validated `data:` URIs of their sniffed type (converted or downscaled
// when asked); video becomes a `data:` URI video_url, or sampled frames for a model that takes
// images but not video; audio becomes `input_audio {data, format}`.
//
// Per request: walk the parts (no allocation if there is nothing but text), check part types,
// modalities and counts before any fetch, fetch/validate in parallel under a per-request and a
// process-wide bound, and only then mutate the body, so a refused request is left as it came.
// Image URL fetches go through an LRU cache and are shared between concurrent requests.
import type { MediaPolicy } from './policy.js';
import { PorticoError, type ErrorCode } from '../../core/errors.js';
import { ByteLru, ttlFromCacheControl } from './cache.js';
import { createSafeFetcher, type SafeFetchDeps, type SafeFetcher } from './fetch.js';
import { createLimiter } from './limit.js';
import { locate, partRow, type MediaKind, type PartRow } from './parts.js';
import { MediaRefusal, invalidImage } from './refusal.js';
import { inspectBase64, inspectImage, parseDataUri, strictBase64Length, type ImageMime } from './sniff.js';


/** Hooks for gateway metrics. `reason` is a RefusalReason: a small fixed label set. */
export interface MediaMetrics {
  /** One network fetch (redirects included), its duration, and the bytes received. */
  fetch(outcome: 'ok' | 'error', seconds: number, bytes: number, kind?: MediaKind): void;
  /** An image served from the cache, or by joining a fetch already in flight for the same URL. */
  cacheHit(): void;
  refusal(reason: string, kind?: MediaKind | 'part'): void;
  /** Frames sampled from videos for a model that takes images only. */
  framesSampled?(n: number): void;
  /** Images downscaled (NIM_MEDIA_RESIZE_MAX_PIXELS) or converted to a type the engine decodes. */
  imageTransformed?(what: 'resized' | 'converted'): void;
}

/** The video/audio/image modules (gateway/media/video.ts, audio.ts, image-transform.ts). */
export interface MediaProcessors {
  probeVideo(bytes: Buffer, signal: AbortSignal): Promise<{ mime: string }>;
  sampleFrames(bytes: Buffer, n: number, signal: AbortSignal): Promise<{ mime: string; bytes: Buffer }[]>;
  probeAudio(bytes: Buffer, signal: AbortSignal): Promise<{ format: string }>;
  /** Re-encode audio as 16-bit PCM WAV (for llama.cpp, whose miniaudio has no Ogg). */
  toWav(bytes: Buffer, signal: AbortSignal): Promise<Buffer>;
  /** Convert to a type in `accept` and/or shrink to at most `maxPixels` (0 = no resize). */
  prepareImage(bytes: Buffer, mime: string, opts: { maxPixels: number; accept: readonly string[] }): Promise<{ bytes: Buffer; mime: string; resized: boolean; converted: boolean }>;
}

export interface MediaDeps extends SafeFetchDeps {
  metrics?: MediaMetrics;
  processors?: Partial<MediaProcessors>;
  /** Clock for cache expiry (ms). */
  now?: () => number;
  /** Media items of one request processed at once (default 4). */
  perRequestConcurrency?: number;
  /** Network fetches in flight across the process (default 16). */
  globalConcurrency?: number;
}

/** What the model accepts; undefined: unknown (an external engine that does not say). */
export interface Modalities {
  image: boolean;
  video: boolean;
  audio: boolean;
}

/** The engine the body goes to, as far as the media step cares. */
export interface MediaTarget {
  /** Model id, for messages. */
  model?: string | undefined;
  modalities?: Modalities | undefined;
  /** llama-server cannot decode WebP (stb_image); TensorRT-LLM takes audio only as audio_url. */
  engine?: 'vllm' | 'tensorrt_llm' | 'llamacpp' | 'openai' | undefined;
  /** This model's downscale threshold (its manifest's); absent: the policy's NIM_MEDIA_RESIZE_MAX_PIXELS. */
  resizeMaxPixels?: number | undefined;
}

export interface NormalizeOptions extends MediaTarget {
  /** Body fields holding message lists: the route table's `media` (default ['messages']). */
  sites?: readonly string[] | undefined;
  /** Whose fetches these are: fetch slots are shared fairly between owners. Default: this request. */
  owner?: unknown;
  /** The owner's group (the API key): slots go to groups in turn, then to owners in turn within one. */
  group?: unknown;
}

export interface MediaNormalizer {
  /** Mutates the parsed request body in place; returns true if anything changed. Throws PorticoError. */
  normalize(body: Record<string, unknown>, signal?: AbortSignal, opts?: NormalizeOptions): Promise<boolean>;
  close(): Promise<void>;
}

const UNCHANGED = Promise.resolve(false);
const NO_METRICS: MediaMetrics = { fetch() {}, cacheHit() {}, refusal() {} };
const ALL_IMAGES: readonly ImageMime[] = ['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/bmp'];
/** stb_image (llama.cpp's decoder) reads these; WebP is converted to PNG. */
const STB_IMAGES: readonly ImageMime[] = ['image/jpeg', 'image/png', 'image/gif', 'image/bmp'];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * True if some message has a content part other than plain `{type: "text", text}`. A text part with
 * any other key counts: vLLM reads a part carrying `uuid` by its media keys, whatever its type
 * (`{type: "text", uuid, image_url: {url: "http://…"}}` is an image URL to it). Allocates nothing.
 */
export function hasMedia(body: Record<string, unknown>, sites: readonly string[] = ['messages']): boolean {
  for (let s = 0; s < sites.length; s++) {
    const messages = body[sites[s]!];
    if (!Array.isArray(messages)) continue;
    for (let i = 0; i < messages.length; i++) {
      const content: unknown = isObject(messages[i]) ? (messages[i] as Record<string, unknown>).content : undefined;
      if (!Array.isArray(content)) continue;
      for (let j = 0; j < content.length; j++) {
        const part: unknown = content[j];
        if (!isObject(part)) continue;
        if (part.type !== 'text') return true;
        for (const k in part) if (k !== 'type' && k !== 'text') return true;
      }
    }
  }
  return false;
}

interface Job {
  kind: MediaKind;
  type: string;
  content: unknown[];
  index: number;
  part: Record<string, unknown>;
  raw: string;
  /** Request path of the URL/data field, named in errors: `messages[0].content[1].image_url.url`. */
  param: string;
  /** `messages[0].content[1]`. */
  base: string;
  /** Video only: the model takes images but not video, so frames go in its place. */
  asFrames?: boolean;
}

type Resolved =
  | { kind: 'image'; uri: string | undefined }
  | { kind: 'video'; uri: string | undefined }
  | { kind: 'frames'; uris: string[] }
  | { kind: 'audio'; base64: string; format: string };

const KIND_CODES: Record<MediaKind, Partial<Record<string, ErrorCode>>> = {
  image: {},
  video: { image_fetch_blocked: 'media_fetch_blocked', image_fetch_failed: 'media_fetch_failed', image_too_large: 'video_too_large', invalid_image: 'invalid_video' },
  audio: { image_fetch_blocked: 'media_fetch_blocked', image_fetch_failed: 'media_fetch_failed', image_too_large: 'audio_too_large', invalid_image: 'invalid_audio' },
};

export function createMediaNormalizer(policy: MediaPolicy, deps: MediaDeps = {}): MediaNormalizer {
  const metrics = deps.metrics ?? NO_METRICS;
  const proc = deps.processors ?? {};
  const fetcher = createSafeFetcher(policy, deps);
  // Video and audio have their own size caps: the same rules, another byte limit.
  const fetchers = new Map<MediaKind, SafeFetcher>([['image', fetcher]]);
  const fetcherFor = (kind: MediaKind): SafeFetcher => {
    let f = fetchers.get(kind);
    if (!f) fetchers.set(kind, (f = createSafeFetcher({ ...policy, maxBytes: maxBytesOf(kind) }, deps)));
    return f;
  };
  const maxBytesOf = (kind: MediaKind): number =>
    kind === 'video' ? (policy.maxVideoBytes ?? policy.maxBytes) : kind === 'audio' ? (policy.maxAudioBytes ?? policy.maxBytes) : policy.maxBytes;
  const cache = new ByteLru<string>(policy.cacheBytes, deps.now ?? Date.now);
  const inflight = new Map<string, SharedFetch>();
  const network = createLimiter(deps.globalConcurrency ?? 16);
  const perRequest = Math.max(1, deps.perRequestConcurrency ?? 4);

  const slotOptions = (opts: NormalizeOptions) => ({
    owner: opts.owner,
    group: opts.group,
    maxWaitMs: policy.fetchTimeoutMs,
    waitError: () => new MediaRefusal('image_fetch_failed', 'timeout', `no fetch slot free within ${policy.fetchTimeoutMs} ms (the fetch deadline)`),
  });

  function refuse(err: MediaRefusal, param: string, kind: MediaKind): PorticoError {
    metrics.refusal(err.reason, kind);
    const code = KIND_CODES[kind][err.code] ?? err.code;
    const message = kind === 'image' ? undefined : PorticoErrorMessage(code, err.message.replace(/^image\b/, kind));
    return new PorticoError(code, err.message, { param, cause: err, ...(message ? { message } : {}) });
  }
  function refusePart(code: ErrorCode, detail: string, param: string, reason: string): PorticoError {
    metrics.refusal(reason, 'part');
    return new PorticoError(code, detail, { param });
  }

  function collect(body: Record<string, unknown>, opts: NormalizeOptions): { jobs: Job[]; texts: [Record<string, unknown>, string][] } {
    const jobs: Job[] = [];
    const texts: [Record<string, unknown>, string][] = [];
    for (const site of opts.sites ?? ['messages']) {
      const messages = body[site];
      if (!Array.isArray(messages)) continue;
      messages.forEach((msg, i) => {
        const content = isObject(msg) ? msg.content : undefined;
        if (!Array.isArray(content)) return;
        content.forEach((part: unknown, j) => {
          const base = `${site}[${i}].content[${j}]`;
          if (!isObject(part)) throw refusePart('invalid_parameter', `${base}: a content part must be an object with a type`, base, 'invalid_part');
          const row = partRow(part.type);
          if (!row) {
            const t = typeof part.type === 'string' ? `"${part.type.slice(0, 64)}"` : 'a part without a string type';
            throw refusePart('unsupported_content_part', `${t} is not a content part type portico knows`, `${base}.type`, 'unsupported_part');
          }
          if (row.kind === 'refused') throw refusePart('unsupported_content_part', `"${String(part.type)}": ${row.why}`, `${base}.type`, 'unsupported_part');
          if (row.kind === 'text') {
            const t = locate(row, part);
            if (t === undefined) throw refusePart('invalid_parameter', `${base}.${row.sources[0]!.join('.')}: is required and must be a string`, `${base}.${row.sources[0]!.join('.')}`, 'invalid_part');
            // Rewritten to exactly {type, text}: stray keys (uuid, image_url, ...) never reach the engine.
            if (row.asText || Object.keys(part).some((k) => k !== 'type' && k !== 'text')) texts.push([part, t.value]);
            return;
          }
          const found = locate(row, part);
          if (!found) {
            const field = row.sources[0]![0]!;
            const msg = row.sources[0]!.length > 1 ? `${field} must be an object with a string ${row.sources[0]![1]}` : `${field} must be a URL or data: URI string`;
            if (row.kind === 'image') throw refuse(invalidImage('invalid_part', msg), `${base}.${field}`, 'image');
            throw refusePart('invalid_parameter', msg, `${base}.${field}`, 'invalid_part');
          }
          jobs.push({ kind: row.kind, type: String(part.type), content, index: j, part, raw: found.value, param: `${base}.${found.path}`, base });
        });
      });
    }
    return { jobs, texts };
  }

  /** Model modalities and per-prompt counts, before anything is fetched. */
  function admit(jobs: Job[], opts: NormalizeOptions): void {
    const m = opts.modalities;
    const model = opts.model ?? 'this model';
    for (const job of jobs) {
      if (!m) continue; // unknown: normalize and forward
      if (job.kind === 'video' && !m.video && m.image) {
        if (!proc.sampleFrames) throw refusePart('unsupported_modality', `model ${model} does not accept video (and frame sampling is not available)`, `${job.base}.type`, 'modality');
        job.asFrames = true;
        continue;
      }
      const ok = job.kind === 'image' ? m.image : job.kind === 'video' ? m.video : m.audio;
      if (!ok) throw refusePart('unsupported_modality', `model ${model} does not accept ${job.kind}`, `${job.base}.type`, 'modality');
    }
    const caps: [MediaKind, number, ErrorCode, string][] = [
      ['image', policy.maxImages, 'too_many_images', 'images'],
      ['video', policy.maxVideos, 'too_many_videos', 'videos'],
      ['audio', policy.maxAudios, 'too_many_audios', 'audio clips'],
    ];
    for (const [kind, max, code, noun] of caps) {
      const of = jobs.filter((j) => j.kind === kind);
      if (of.length > max) {
        if (kind === 'image') throw refuse(new MediaRefusal('too_many_images', 'too_many_images', `request has ${of.length} images, over the limit of ${max}`), of[max]!.param, 'image');
        throw refusePart(code, `request has ${of.length} ${noun}, over the limit of ${max}`, of[max]!.param, `too_many_${kind === 'video' ? 'videos' : 'audios'}`);
      }
    }
    if (!proc.probeVideo && jobs.some((j) => j.kind === 'video')) {
      throw refusePart('unsupported_content_part', 'video is not available in this gateway (ffprobe missing)', `${jobs.find((j) => j.kind === 'video')!.base}.type`, 'unsupported_part');
    }
    if (!proc.probeAudio && jobs.some((j) => j.kind === 'audio')) {
      throw refusePart('unsupported_content_part', 'audio is not available in this gateway', `${jobs.find((j) => j.kind === 'audio')!.base}.type`, 'unsupported_part');
    }
  }

  /** Bytes of a data: URI or an http(s) URL (fetched safely), or for audio plain base64. */
  async function load(job: Job, signal: AbortSignal, opts: NormalizeOptions): Promise<{ bytes: Buffer; base64?: string; declared?: string }> {
    const raw = job.raw;
    if (/^data:/i.test(raw)) {
      const { base64, header } = parseDataUri(raw, maxBytesOf(job.kind));
      return { bytes: Buffer.from(base64, 'base64'), base64, declared: header };
    }
    if (job.type === 'input_audio' || (job.type === 'input_video' && job.param.endsWith('.data'))) {
      const size = strictBase64Length(raw);
      if (size <= 0) throw invalidImage('bad_data_uri', `${job.type}.data is not valid base64`);
      if (size > maxBytesOf(job.kind)) throw new MediaRefusal('image_too_large', 'too_large', `${job.kind} is ${size} bytes, over the limit of ${maxBytesOf(job.kind)} bytes`);
      return { bytes: Buffer.from(raw, 'base64'), base64: raw };
    }
    const url = parseUrl(raw, job.type);
    const started = performance.now();
    try {
      const fetched = await network.run(() => fetcherFor(job.kind).fetch(url, signal), signal, slotOptions(opts));
      metrics.fetch('ok', (performance.now() - started) / 1000, fetched.bytes.length, job.kind);
      return { bytes: fetched.bytes };
    } catch (err) {
      const refused = err instanceof MediaRefusal && err.code === 'image_fetch_blocked';
      if (!signal.aborted && !refused) metrics.fetch('error', (performance.now() - started) / 1000, 0, job.kind);
      throw err;
    }
  }

  async function resolveJob(job: Job, signal: AbortSignal, opts: NormalizeOptions): Promise<Resolved> {
    signal.throwIfAborted();
    if (job.kind === 'image') return { kind: 'image', uri: await resolveImage(job.raw, signal, opts) };
    const { bytes, base64, declared } = await load(job, signal, opts);
    if (job.kind === 'audio') {
      const { format } = await proc.probeAudio!(bytes, signal);
      // llama.cpp decodes WAV, MP3 and FLAC (miniaudio): Ogg becomes WAV for it.
      if (opts.engine === 'llamacpp' && format === 'ogg' && proc.toWav) return { kind: 'audio', base64: (await proc.toWav(bytes, signal)).toString('base64'), format: 'wav' };
      return { kind: 'audio', base64: base64 ?? bytes.toString('base64'), format };
    }
    const { mime } = await proc.probeVideo!(bytes, signal);
    if (job.asFrames) {
      const frames = await proc.sampleFrames!(bytes, policy.videoFrames ?? 8, signal);
      metrics.framesSampled?.(frames.length);
      const uris: string[] = [];
      for (const f of frames) uris.push((await resolveImage(`data:${f.mime};base64,${f.bytes.toString('base64')}`, signal, opts)) ?? `data:${f.mime};base64,${f.bytes.toString('base64')}`);
      return { kind: 'frames', uris };
    }
    if (base64 !== undefined && declared === `${mime};base64` && job.type === 'video_url') return { kind: 'video', uri: undefined };
    return { kind: 'video', uri: `data:${mime};base64,${base64 ?? bytes.toString('base64')}` };
  }

  /** The data URI to send instead of `raw`, or undefined if `raw` is already one, valid and fit. */
  async function resolveImage(raw: string, signal: AbortSignal, opts: NormalizeOptions): Promise<string | undefined> {
    signal.throwIfAborted();
    let uri: string;
    let info;
    if (/^data:/i.test(raw)) {
      const { base64 } = parseDataUri(raw, policy.maxBytes);
      info = await inspectBase64(base64, policy.maxPixels);
      uri = `data:${info.mime};base64,${base64}`;
    } else {
      uri = await loadUrl(parseUrl(raw, 'image_url'), signal, opts);
      info = await inspectBase64(uri.slice(uri.indexOf(',') + 1), policy.maxPixels);
    }
    const accept = opts.engine === 'llamacpp' ? STB_IMAGES : ALL_IMAGES;
    const resize = opts.resizeMaxPixels ?? policy.resizeMaxPixels ?? 0;
    const convert = !accept.includes(info.mime);
    if ((convert || (resize > 0 && info.width * info.height > resize)) && proc.prepareImage) {
      const bytes = Buffer.from(uri.slice(uri.indexOf(',') + 1), 'base64');
      const out = await proc.prepareImage(bytes, info.mime, { maxPixels: resize, accept });
      if (out.resized) metrics.imageTransformed?.('resized');
      if (out.converted) metrics.imageTransformed?.('converted');
      uri = `data:${out.mime};base64,${out.bytes.toString('base64')}`;
    }
    // Already canonical and of the right type: leave the (possibly large) string alone.
    return uri === raw ? undefined : uri;
  }

  function parseUrl(raw: string, type: string): URL {
    try {
      return new URL(raw);
    } catch {
      throw invalidImage('invalid_part', `${type === 'image_url' ? 'image_url.url' : type} is neither an http(s) URL nor a data: URI`);
    }
  }

  function loadUrl(url: URL, signal: AbortSignal, opts: NormalizeOptions): Promise<string> {
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
      shared = new SharedFetch((s) => network.run(() => fetchImage(url, key, s), s, slotOptions(opts)));
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
      if (!signal.aborted && !refused) metrics.fetch('error', (performance.now() - started) / 1000, 0, 'image');
      throw err;
    }
    metrics.fetch('ok', (performance.now() - started) / 1000, fetched.bytes.length, 'image');
    const { mime } = await inspectImage(fetched.bytes, policy.maxPixels);
    const uri = `data:${mime};base64,${fetched.bytes.toString('base64')}`;
    cache.set(key, uri, uri.length, ttlFromCacheControl(fetched.cacheControl));
    return uri;
  }

  // Most bodies carry no media: answered with one shared settled promise (no async frame per request).
  function normalize(body: Record<string, unknown>, signal?: AbortSignal, opts: NormalizeOptions = {}): Promise<boolean> {
    return hasMedia(body, opts.sites) ? normalizeMedia(body, signal, opts) : UNCHANGED;
  }

  async function normalizeMedia(body: Record<string, unknown>, signal: AbortSignal | undefined, opts: NormalizeOptions): Promise<boolean> {
    const { jobs, texts } = collect(body, opts);
    // Fetch slots are shared in turn between owners; a request waits for one at most its fetch deadline.
    opts = { ...opts, owner: opts.owner ?? Symbol('request') };
    admit(jobs, opts);
    // One controller per request: the client going away, or the first refusal, stops the rest.
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(signal!.reason);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });

    const results: Resolved[] = [];
    let failed: { err: unknown; index: number } | undefined;
    let next = 0;
    const worker = async () => {
      while (!failed && next < jobs.length) {
        const index = next++;
        try {
          results[index] = await resolveJob(jobs[index]!, ctl.signal, opts);
        } catch (err) {
          if (!failed) {
            failed = { err, index };
            ctl.abort(err);
          }
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(perRequest, jobs.length) }, worker));
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }

    if (failed) {
      if (signal?.aborted) throw signal.reason;
      const { err, index } = failed;
      const job = jobs[index]!;
      if (err instanceof MediaRefusal) throw refuse(err, job.param, job.kind);
      if (err instanceof PorticoError) throw err;
      // A parser choking on hostile bytes is still the client's media, not our 500.
      metrics.refusal('unexpected', job.kind);
      const code: ErrorCode = job.kind === 'image' ? 'invalid_image' : job.kind === 'video' ? 'invalid_video' : 'invalid_audio';
      throw new PorticoError(code, `${job.kind} could not be processed`, { param: job.param, cause: err });
    }
    return apply(jobs, results, texts, opts);
  }

  /**
   * Write the results into the body. Every media part is rebuilt from the table's fields only, so
   * nothing the gateway did not check rides along (llama-server reads `video_url.data` before
   * `.url`; vLLM reads a part with `uuid` by its media keys). A part already in canonical form
   * with an unchanged data URI is left as it is. Frames replace one part with several: back to front.
   */
  function apply(jobs: Job[], results: Resolved[], texts: [Record<string, unknown>, string][], opts: NormalizeOptions): boolean {
    let changed = texts.length > 0;
    for (const [part, text] of texts) {
      for (const k of Object.keys(part)) delete part[k];
      Object.assign(part, { type: 'text', text });
    }
    for (let i = jobs.length - 1; i >= 0; i--) {
      const job = jobs[i]!;
      const r = results[i]!;
      let parts: Record<string, unknown>[];
      switch (r.kind) {
        case 'image': {
          const iu = job.part.image_url;
          const detail = isObject(iu) && typeof iu.detail === 'string' ? { detail: iu.detail } : {};
          parts = [{ type: 'image_url', image_url: { url: r.uri ?? job.raw, ...detail } }];
          break;
        }
        case 'video':
          parts = [{ type: 'video_url', video_url: { url: r.uri ?? job.raw } }];
          break;
        case 'frames':
          parts = r.uris.map((url) => ({ type: 'image_url', image_url: { url } }));
          break;
        case 'audio':
          parts = [
            opts.engine === 'tensorrt_llm'
              ? { type: 'audio_url', audio_url: { url: `data:audio/${r.format};base64,${r.base64}` } }
              : { type: 'input_audio', input_audio: { data: r.base64, format: r.format } },
          ];
          break;
      }
      if (parts.length === 1 && sameShape(job.part, parts[0]!)) continue;
      job.content.splice(job.index, 1, ...parts);
      changed = true;
    }
    return changed;
  }

  return {
    normalize,
    async close() {
      for (const shared of inflight.values()) shared.abort(new Error('media normalizer closed'));
      inflight.clear();
      cache.clear();
      await Promise.all([...fetchers.values()].map((f) => f.close()));
    },
  };
}

/** Same keys and string values, one level of nesting deep (a canonical part compared with the client's). */
function sameShape(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    const va = a[k];
    const vb = b[k];
    if (isObject(va) && isObject(vb)) {
      if (Object.keys(va).length !== Object.keys(vb).length) return false;
      for (const kk of Object.keys(vb)) if (va[kk] !== vb[kk]) return false;
    } else if (va !== vb) return false;
  }
  return true;
}

/** The message a code's template makes of `detail` (for re-labelling image wording). */
function PorticoErrorMessage(code: ErrorCode, detail: string): string {
  return new PorticoError(code, detail).message;
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
