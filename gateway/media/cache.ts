// In-memory LRU of fetched images (as ready-to-send data URIs), bounded by bytes, with per-entry
// expiry. A Map keeps insertion order, so "touch" is delete + set and the oldest is the first key.

interface Entry<V> {
  value: V;
  size: number;
  expires: number;
}

export class ByteLru<V> {
  readonly #entries = new Map<string, Entry<V>>();
  #bytes = 0;

  constructor(
    readonly maxBytes: number,
    private readonly now: () => number = Date.now,
  ) {}

  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): V | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (e.expires <= this.now()) {
      this.delete(key);
      return undefined;
    }
    this.#entries.delete(key);
    this.#entries.set(key, e);
    return e.value;
  }

  /** Store for `ttlMs`; ignored when the TTL is not positive or the value alone exceeds the budget. */
  set(key: string, value: V, size: number, ttlMs: number): void {
    this.delete(key);
    if (ttlMs <= 0 || size > this.maxBytes) return;
    while (this.#bytes + size > this.maxBytes) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.delete(oldest.value);
    }
    this.#entries.set(key, { value, size, expires: this.now() + ttlMs });
    this.#bytes += size;
  }

  delete(key: string): void {
    const e = this.#entries.get(key);
    if (!e) return;
    this.#entries.delete(key);
    this.#bytes -= e.size;
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }
}

/** Used when a response says nothing about freshness. */
export const DEFAULT_TTL_MS = 5 * 60_000;
/** Upper bound, so a year-long max-age cannot pin memory or a changed image for that long. */
export const MAX_TTL_MS = 60 * 60_000;

/**
 * How long a response may be reused, from its Cache-Control: 0 for no-store / no-cache / private
 * (we never revalidate, and the cache is shared by every client of the gateway), s-maxage over
 * max-age (we are a shared cache), else the default.
 */
export function ttlFromCacheControl(
  header: string | undefined,
  defaultMs = DEFAULT_TTL_MS,
  maxMs = MAX_TTL_MS,
): number {
  if (!header) return defaultMs;
  let maxAge: number | undefined;
  let sMaxAge: number | undefined;
  for (const raw of header.split(',')) {
    const [name = '', value] = raw.trim().toLowerCase().split('=', 2);
    if (name === 'no-store' || name === 'no-cache' || name === 'private') return 0;
    const seconds = value === undefined ? NaN : Number(value.replace(/^"|"$/g, ''));
    if (!Number.isFinite(seconds)) continue;
    if (name === 'max-age') maxAge = seconds;
    else if (name === 's-maxage') sMaxAge = seconds;
  }
  const seconds = sMaxAge ?? maxAge;
  if (seconds === undefined) return defaultMs;
  return Math.min(Math.max(0, seconds) * 1000, maxMs);
}
