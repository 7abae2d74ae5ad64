import { describe, expect, it } from 'vitest';
import { ByteLru, DEFAULT_TTL_MS, MAX_TTL_MS, ttlFromCacheControl } from './cache.js';

describe('ByteLru', () => {
  it('evicts least recently used entries to stay within the byte budget', () => {
    const lru = new ByteLru<string>(10);
    lru.set('a', 'A', 4, 1000);
    lru.set('b', 'B', 4, 1000);
    expect(lru.get('a')).toBe('A'); // a is now the most recent
    lru.set('c', 'C', 4, 1000); // evicts b
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('a')).toBe('A');
    expect(lru.get('c')).toBe('C');
    expect(lru.bytes).toBe(8);
  });

  it('does not store values larger than the budget, or with no TTL', () => {
    const lru = new ByteLru<string>(10);
    lru.set('big', 'x', 11, 1000);
    lru.set('stale', 'x', 1, 0);
    expect(lru.size).toBe(0);
    expect(new ByteLru<string>(0).get('x')).toBeUndefined();
  });

  it('expires entries by the clock', () => {
    let now = 1000;
    const lru = new ByteLru<string>(100, () => now);
    lru.set('a', 'A', 1, 500);
    now = 1499;
    expect(lru.get('a')).toBe('A');
    now = 1500;
    expect(lru.get('a')).toBeUndefined();
    expect(lru.bytes).toBe(0);
  });

  it('replacing a key accounts its bytes once', () => {
    const lru = new ByteLru<string>(100);
    lru.set('a', 'A', 30, 1000);
    lru.set('a', 'A2', 40, 1000);
    expect(lru.bytes).toBe(40);
    expect(lru.get('a')).toBe('A2');
  });
});

describe('ttlFromCacheControl', () => {
  it.each([
    [undefined, DEFAULT_TTL_MS],
    ['', DEFAULT_TTL_MS],
    ['public', DEFAULT_TTL_MS],
    ['max-age=60', 60_000],
    ['public, max-age=60, s-maxage=10', 10_000],
    ['max-age="30"', 30_000],
    ['max-age=0', 0],
    ['no-store', 0],
    ['max-age=600, no-cache', 0],
    ['private, max-age=600', 0],
    ['max-age=31536000, immutable', MAX_TTL_MS],
    ['max-age=abc', DEFAULT_TTL_MS],
  ])('%j → %i ms', (header, ttl) => {
    expect(ttlFromCacheControl(header)).toBe(ttl);
  });
});
