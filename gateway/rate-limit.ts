// Per-key rate limits: requests per minute and tokens per minute, as token buckets that refill
// continuously (a bucket holds one minute's allowance). Refusals are 429 + Retry-After, and every
// answer to a limited key carries the hosted APIs' `x-ratelimit-*` headers.
//
// Tokens: a request is charged an estimate up front, once its body is parsed (prompt text / 4 +
// max_tokens, or 256 when max_tokens is absent), and refused if the bucket cannot cover it (an
// estimate larger than the whole bucket needs a full bucket). When the answer ends, the charge is
// settled to the real usage, prompt + completion tokens (JSON body, or the SSE usage chunk). A stream
// without a usage chunk is settled to the prompt estimate + one token per SSE event; an error answer
// is refunded. The bucket may go negative after a settle: the key then waits until it refills.
import type { ApiKey } from './auth.js';
import { PorticoError } from '../core/errors.js';
import { Slot, type LifeObserver } from './lifecycle.js';

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

/** Per-request state, kept on the request's life between admission and the settle. */
interface Ticket {
  key: ApiKey;
  buckets: KeyBuckets;
  /** Tokens charged up front (settled when the answer ends). */
  charged: number;
  /** Prompt part of the estimate (for streams without a usage chunk). */
  promptEstimate: number;
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

const TICKET = new Slot<Ticket>();

/**
 * The rate limits as an observer of each request's life (gateway/lifecycle.ts), all in one place:
 * a limited key (rpm or tpm set) is admitted against its buckets once it is known (after auth);
 * the body's token estimate is charged when it goes to the engine; the charge is settled to the
 * answer's usage (read once by the life, from the JSON body or the stream's usage chunk), to the
 * estimate + one token per SSE event for a stream without a usage chunk, or refunded for an error
 * answer; every answer to a limited key carries `x-ratelimit-*`.
 * `exempt`: paths never throttled (health, metrics).
 */
export function rateLimitObserver(limiter: RateLimiter, exempt: ReadonlySet<string>): LifeObserver {
  return {
    admit(life) {
      const key = life.c.get('apiKey');
      if (!key || (key.rpm <= 0 && key.tpm <= 0) || exempt.has(life.c.req.path)) return;
      life.put(TICKET, limiter.admit(key));
    },
    accept(life, body) {
      const ticket = life.get(TICKET);
      if (!ticket?.buckets.tokens) return;
      const { total, prompt } = estimateTokens(body);
      limiter.charge(ticket, total, prompt);
    },
    head(life, status, out) {
      const ticket = life.get(TICKET);
      if (!ticket) return;
      // A JSON answer is settled before its headers are written, so they show the settled bucket.
      if (ticket.charged > 0 && !life.streamUsage) {
        // A refused or failed request costs nothing (a stream is always a 200).
        if (status >= 400) limiter.settle(ticket, 0);
        else {
          const usage = life.usage;
          if (usage) limiter.settle(ticket, usage.prompt + usage.completion);
        }
      }
      Object.assign(out, limiter.headers(ticket));
    },
    end(life) {
      const ticket = life.get(TICKET);
      const stream = life.streamUsage;
      if (!ticket || !stream || ticket.charged <= 0) return;
      const usage = stream.reported();
      limiter.settle(ticket, usage ? usage.prompt + usage.completion : ticket.promptEstimate + stream.events);
    },
  };
}
