// Per-key rate limits: requests per minute and tokens per minute, as token buckets that refill
// continuously (a bucket holds one minute's allowance). Refusals are 429 + Retry-After, and every
// answer to a limited key carries the hosted APIs' `x-ratelimit-*` headers.
//
// Tokens: a request is charged an estimate up front, once its body is parsed (prompt text / 4 +
// max_tokens, or 256 when max_tokens is absent), and refused if the bucket cannot cover it (an
// estimate larger than the whole bucket needs a full bucket). When the answer ends, the charge is
// settled to the real `usage.total_tokens` (JSON body, or the SSE usage chunk). A stream without a
// usage chunk is settled to the prompt estimate + one token per SSE event; an error answer is
// refunded. The bucket may go negative after a settle: the key then waits until it refills.
import type { Context, MiddlewareHandler } from 'hono';
import type { ApiKey } from './auth.js';
import { PorticoError } from '../core/errors.js';
import { setResponseHeaders } from './response-guard.js';
import { onStream } from './sse.js';

/** A bucket of `capacity` that refills `capacity` per minute. */
export class TokenBucket {
  tokens: number;
  private updated: number;

  constructor(
    public capacity: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.updated = now;
  }

  private get perMs(): number {
    return this.capacity / 60_000;
  }

  refill(now: number): void {
    if (now > this.updated) this.tokens = Math.min(this.capacity, this.tokens + (now - this.updated) * this.perMs);
    this.updated = Math.max(this.updated, now);
  }

  /** Ms until the bucket holds `n` (0 if it does). */
  msUntil(n: number): number {
    return this.tokens >= n ? 0 : (n - this.tokens) / this.perMs;
  }

  /** Ms until full: the `x-ratelimit-reset-*` value. */
  msUntilFull(): number {
    return this.msUntil(this.capacity);
  }

  resize(capacity: number): void {
    if (capacity === this.capacity) return;
    this.tokens = Math.min(this.tokens, capacity);
    this.capacity = capacity;
  }
}

interface KeyBuckets {
  requests?: TokenBucket;
  tokens?: TokenBucket;
}

/** Per-request state, kept on the context between the middleware and the handler's charge. */
interface Ticket {
  key: ApiKey;
  buckets: KeyBuckets;
  /** Tokens charged up front (settled when the answer ends). */
  charged: number;
  /** Prompt part of the estimate (for streams without a usage chunk). */
  promptEstimate: number;
}

declare module 'hono' {
  interface ContextVariableMap {
    rateLimitTicket: Ticket | undefined;
  }
}

/** Completion tokens assumed when a request sets no max_tokens. */
export const DEFAULT_COMPLETION_ESTIMATE = 256;

export class RateLimiter {
  private readonly buckets = new Map<string, KeyBuckets>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** The key's buckets, created on first use and resized when its limits change (reload). */
  bucketsFor(key: ApiKey): KeyBuckets {
    const t = this.now();
    let b = this.buckets.get(key.hash);
    if (!b) this.buckets.set(key.hash, (b = {}));
    b.requests = sync(b.requests, key.rpm, t);
    b.tokens = sync(b.tokens, key.tpm, t);
    return b;
  }

  /** Take one request; throws 429 when the key is out of requests or already out of tokens. */
  admit(key: ApiKey): Ticket {
    const buckets = this.bucketsFor(key);
    const { requests, tokens } = buckets;
    if (requests && requests.tokens < 1) throw limited(key, buckets, 'requests', requests.msUntil(1));
    if (tokens && tokens.tokens <= 0) throw limited(key, buckets, 'tokens', tokens.msUntil(1));
    if (requests) requests.tokens -= 1;
    return { key, buckets, charged: 0, promptEstimate: 0 };
  }

  /** Charge the up-front token estimate; throws 429 when the bucket cannot cover it. */
  charge(t: Ticket, estimate: number, promptEstimate: number): void {
    const b = t.buckets.tokens;
    if (!b) return;
    b.refill(this.now());
    const need = Math.min(estimate, b.capacity);
    if (b.tokens < need) throw limited(t.key, t.buckets, 'tokens', b.msUntil(need), estimate);
    b.tokens -= estimate;
    t.charged += estimate;
    t.promptEstimate = promptEstimate;
  }

  /** Replace the up-front charge with what the request really used. */
  settle(t: Ticket, actual: number): void {
    const b = t.buckets.tokens;
    if (!b) return;
    b.refill(this.now());
    b.tokens = Math.min(b.capacity, b.tokens + t.charged - actual);
    t.charged = actual;
  }

  headers(t: Ticket): Record<string, string> {
    return rateHeaders(t.buckets);
  }
}

function sync(b: TokenBucket | undefined, limit: number, now: number): TokenBucket | undefined {
  if (limit <= 0) return undefined;
  if (!b) return new TokenBucket(limit, now);
  b.resize(limit);
  b.refill(now);
  return b;
}

function rateHeaders(b: KeyBuckets): Record<string, string> {
  const h: Record<string, string> = {};
  if (b.requests) {
    h['x-ratelimit-limit-requests'] = String(b.requests.capacity);
    h['x-ratelimit-remaining-requests'] = String(Math.max(0, Math.floor(b.requests.tokens)));
    h['x-ratelimit-reset-requests'] = duration(b.requests.msUntilFull());
  }
  if (b.tokens) {
    h['x-ratelimit-limit-tokens'] = String(b.tokens.capacity);
    h['x-ratelimit-remaining-tokens'] = String(Math.max(0, Math.floor(b.tokens.tokens)));
    h['x-ratelimit-reset-tokens'] = duration(b.tokens.msUntilFull());
  }
  return h;
}

function limited(key: ApiKey, b: KeyBuckets, what: 'requests' | 'tokens', waitMs: number, estimate?: number): PorticoError {
  const limit = what === 'requests' ? `${key.rpm} requests` : `${key.tpm} tokens`;
  const extra = estimate !== undefined ? ` (this request is estimated at ${estimate} tokens)` : '';
  return new PorticoError('rate_limit_exceeded', `Rate limit of ${limit} per minute reached for this API key${extra}. Retry after ${Math.ceil(waitMs / 1000)} s.`, {
    headers: { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))), ...rateHeaders(b) },
  });
}

/** OpenAI-style duration: `20ms`, `1s`, `6m0s`, `1.5s`. */
export function duration(ms: number): string {
  if (ms <= 0) return '0s';
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${Number(s.toFixed(s < 10 ? 2 : 1))}s`;
  const m = Math.floor(s / 60);
  return `${m}m${Math.round(s - m * 60)}s`;
}

/** A cheap token estimate from a parsed request: text characters / 4, plus the completion budget. */
export function estimateTokens(body: Record<string, unknown>): { total: number; prompt: number } {
  let chars = 0;
  let ids = 0;
  const text = (v: unknown): void => {
    if (typeof v === 'string') chars += v.length;
    else if (typeof v === 'number') ids += 1;
    else if (Array.isArray(v)) for (const x of v) text(x);
  };
  if (Array.isArray(body.messages)) {
    for (const m of body.messages) {
      const content = (m as { content?: unknown } | null)?.content;
      if (typeof content === 'string') chars += content.length;
      else if (Array.isArray(content)) {
        for (const p of content) {
          const t = (p as { text?: unknown } | null)?.text;
          if (typeof t === 'string') chars += t.length;
        }
      }
    }
  }
  text(body.prompt);
  text(body.input);
  const prompt = Math.ceil(chars / 4) + ids;
  const isEmbedding = body.input !== undefined && body.messages === undefined && body.prompt === undefined;
  const maxTokens = [body.max_completion_tokens, body.max_tokens].find((v): v is number => typeof v === 'number' && v > 0);
  const n = typeof body.n === 'number' && body.n > 1 ? body.n : 1;
  const completion = isEmbedding ? 0 : (maxTokens ?? DEFAULT_COMPLETION_ESTIMATE) * n;
  return { total: Math.max(1, prompt + completion), prompt };
}

/**
 * Middleware: a limited key (rpm or tpm set) is admitted against its buckets and its answer carries
 * `x-ratelimit-*`; the token charge is settled when the answer ends: by the handler for a JSON
 * answer (settleTokens), by the stream's hooks for an SSE answer, refunded for an error answer.
 * `exempt`: paths never throttled (health, metrics).
 */
export function rateLimit(limiter: RateLimiter, exempt: ReadonlySet<string>): MiddlewareHandler {
  return async (c, next) => {
    const key = c.get('apiKey');
    if (!key || (key.rpm <= 0 && key.tpm <= 0) || exempt.has(c.req.path)) return next();
    const ticket = limiter.admit(key);
    c.set('rateLimitTicket', ticket);
    let stream: { readonly attached: boolean } | undefined;
    if (ticket.buckets.tokens) {
      // An SSE answer is settled at its end, to its usage chunk (or an estimate from its events).
      const usage = usageTap();
      stream = onStream(c, {
        chunk: usage.chunk,
        end: () => {
          if (ticket.charged > 0) limiter.settle(ticket, usage.total() ?? ticket.promptEstimate + usage.events());
        },
      });
    }
    try {
      await next();
    } catch (err) {
      if (!stream?.attached && ticket.charged > 0) limiter.settle(ticket, 0);
      throw err;
    }
    // A refused or failed request costs nothing (a stream is always a 200).
    if (!stream?.attached && ticket.charged > 0 && c.res.status >= 400) limiter.settle(ticket, 0);
    // On the answer's own headers: for every Response the app builds this leaves the body alone.
    setResponseHeaders(c, limiter.headers(ticket));
  };
}

/** Called by handlers once the body is parsed: charge the request's token estimate (or 429). */
export function chargeTokens(c: Context, limiter: RateLimiter | undefined, body: Record<string, unknown>): void {
  const ticket = c.get('rateLimitTicket');
  if (!limiter || !ticket?.buckets.tokens) return;
  const { total, prompt } = estimateTokens(body);
  limiter.charge(ticket, total, prompt);
}

/**
 * Called by handlers with a complete JSON answer, before it is sent: settle the charge to its
 * `usage.total_tokens` (left as charged when there is none).
 */
export function settleTokens(c: Context, limiter: RateLimiter | undefined, answer: Uint8Array): void {
  const ticket = c.get('rateLimitTicket');
  if (!limiter || !ticket?.buckets.tokens || ticket.charged <= 0) return;
  const total = lastTotalTokens(Buffer.from(answer.buffer, answer.byteOffset, answer.byteLength).toString('latin1'));
  if (total !== undefined) limiter.settle(ticket, total);
}

const TOTAL_RE = /"total_tokens"\s*:\s*(\d+)/g;

function lastTotalTokens(text: string): number | undefined {
  let last: number | undefined;
  for (const m of text.matchAll(TOTAL_RE)) last = Number(m[1]);
  return last;
}

/** Follows an SSE body for the usage chunk's total_tokens and counts `data:` events. */
function usageTap() {
  const dec = new TextDecoder();
  let tail = '';
  let total: number | undefined;
  let events = 0;
  return {
    chunk(bytes: Uint8Array) {
      const text = dec.decode(bytes, { stream: true });
      events += (text.match(/(?:^|\n)data:/g) ?? []).length;
      // The tail catches a usage object split across two chunks (a repeat match is harmless).
      const s = tail + text;
      for (const m of s.matchAll(TOTAL_RE)) total = Number(m[1]);
      tail = s.slice(-64);
    },
    total: () => total,
    events: () => events,
  };
}
