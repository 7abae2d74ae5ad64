// The limit and hardening settings: defaults, and one clear line naming a bad variable.
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../core/config.js';

describe('auth / limits / CORS / TLS settings', () => {
  it('defaults', () => {
    const s = loadSettings({});
    expect(s).toMatchObject({
      apiKeys: [],
      apiKeysFile: undefined,
      metricsPublic: false,
      maxConcurrentRequests: 256,
      maxQueue: 0,
      queueTimeoutMs: 30_000,
      maxRequestBytes: 32 * 1024 * 1024,
      requestTimeoutMs: 300_000,
      headersTimeoutMs: 30_000,
      streamIdleTimeoutMs: 300_000,
      maxHeaderBytes: 16_384,
      maxHeaders: 100,
      rateLimitRpm: 0,
      rateLimitTpm: 0,
    });
    expect(s.cors).toEqual({ allowOrigins: [], allowMethods: ['GET', 'POST', 'OPTIONS'], allowHeaders: ['*'], exposeHeaders: ['X-Request-Id', 'X-Portico-Overhead-Ms', 'Retry-After'], maxAge: 600 });
    expect(s.ssl.mode).toBe('DISABLED');
  });

  it('parses values', () => {
    const s = loadSettings({ NIM_API_KEYS: 'a, b,,c', NIM_RATE_LIMIT_RPM: '60', NIM_RATE_LIMIT_TPM: '100000', NIM_SSL_MODE: 'tls', NIM_SSL_KEY_PATH: '/k', NIM_SSL_CERTS_PATH: '/c', NIM_CORS_ALLOW_ORIGINS: '*' });
    expect(s.apiKeys).toEqual(['a', 'b', 'c']);
    expect(s.rateLimitRpm).toBe(60);
    expect(s.ssl.mode).toBe('TLS');
    expect(s.cors.allowOrigins).toEqual(['*']);
  });

  it('names the variable of a bad value', () => {
    expect(() => loadSettings({ NIM_MAX_HEADERS: '0' })).toThrow(/^NIM_MAX_HEADERS="0": /);
    expect(() => loadSettings({ NIM_STREAM_IDLE_TIMEOUT_MS: 'soon' })).toThrow(/^NIM_STREAM_IDLE_TIMEOUT_MS="soon": /);
    expect(() => loadSettings({ NIM_SSL_MODE: 'ON' })).toThrow(/^NIM_SSL_MODE="ON": /);
    expect(() => loadSettings({ NIM_SSL_MODE: 'MTLS', NIM_SSL_KEY_PATH: '/k', NIM_SSL_CERTS_PATH: '/c' })).toThrow(/NIM_SSL_CA_CERTS_PATH/);
  });
});
