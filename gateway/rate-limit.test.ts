import { describe, expect, it } from 'vitest';
import type { ApiKey } from './auth.js';
import { DEFAULT_COMPLETION_ESTIMATE, duration, estimateTokens, RateLimiter, TokenBucket } from './rate-limit.js';

const key = (rpm: number, tpm: number): ApiKey => ({ id: 'abcd1234', hash: `h-${rpm}-${tpm}`, models: null, rpm, tpm });

describe('TokenBucket', () => {
  it('refills continuously up to its capacity', () => {
    const b = new TokenBucket(60, 0);
    b.tokens = 0;
    b.refill(1000);
    expect(b.tokens).toBeCloseTo(1);
    b.refill(10 * 60_000);
    expect(b.tokens).toBe(60);
    b.tokens = -30;
    expect(b.msUntil(1)).toBeCloseTo(31_000);
  });
});

describe('RateLimiter', () => {
  it('requests per minute: refuses with Retry-After, refills with time', () => {
    let now = 0;
    const rl = new RateLimiter(() => now);
    const k = key(2, 0);
    const t1 = rl.admit(k);
    expect(rl.headers(t1)['x-ratelimit-remaining-requests']).toBe('1');
    rl.admit(k);
    let err: any;
    try {
      rl.admit(k);
    } catch (e) {
      err = e;
    }
    expect(err?.status).toBe(429);
    expect(err.code).toBe('rate_limit_exceeded');
    expect(err.headers['retry-after']).toBe('30');
    expect(err.headers['x-ratelimit-limit-requests']).toBe('2');
    expect(err.headers['x-ratelimit-remaining-requests']).toBe('0');
    expect(err.headers['x-ratelimit-reset-requests']).toBe('1m0s');
    now += 30_000;
    expect(() => rl.admit(k)).not.toThrow();
  });

  it('tokens per minute: charges the estimate, settles to the real usage', () => {
    let now = 0;
    const rl = new RateLimiter(() => now);
    const k = key(0, 1000);
    const t = rl.admit(k);
    rl.charge(t, 600, 100);
    expect(rl.headers(t)['x-ratelimit-remaining-tokens']).toBe('400');
    rl.settle(t, 50);
    expect(rl.headers(t)['x-ratelimit-remaining-tokens']).toBe('950');
    // More than is left: refused with the time to refill the difference.
    const t2 = rl.admit(k);
    expect(() => rl.charge(t2, 2000, 0)).toThrow(/Rate limit of 1000 tokens/);
    // An estimate larger than the bucket needs a full bucket, then goes through.
    now += 60_000;
    rl.charge(t2, 2000, 0);
    expect(() => rl.admit(k)).toThrow(/1000 tokens/); // in debt: refused before reading a body
    rl.settle(t2, 10);
    expect(() => rl.admit(k)).not.toThrow();
  });

  it('follows limit changes on reload (same key, new limits)', () => {
    const rl = new RateLimiter(() => 0);
    rl.admit(key(5, 0));
    const k2 = { ...key(5, 0), rpm: 1 }; // same key (hash), limit lowered: the bucket shrinks to 1
    expect(() => rl.admit(k2)).not.toThrow();
    expect(() => rl.admit(k2)).toThrow(/1 requests/);
  });
});

describe('estimates and formats', () => {
  it('estimates prompt text / 4 plus the completion budget', () => {
    expect(estimateTokens({ messages: [{ role: 'user', content: 'x'.repeat(40) }], max_tokens: 10 })).toEqual({ total: 20, prompt: 10 });
    expect(estimateTokens({ messages: [{ role: 'user', content: [{ type: 'text', text: 'abcd' }, { type: 'image_url' }] }] }).total).toBe(1 + DEFAULT_COMPLETION_ESTIMATE);
    expect(estimateTokens({ prompt: [1, 2, 3], max_tokens: 1, n: 2 })).toEqual({ total: 5, prompt: 3 });
    expect(estimateTokens({ input: ['abcd', 'abcd'] })).toEqual({ total: 2, prompt: 2 });
  });

  it('formats reset durations like the hosted APIs', () => {
    expect(duration(0)).toBe('0s');
    expect(duration(17)).toBe('17ms');
    expect(duration(1000)).toBe('1s');
    expect(duration(1500)).toBe('1.5s');
    expect(duration(360_000)).toBe('6m0s');
  });
});
