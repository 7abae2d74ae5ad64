// CORS (NIM_CORS_*) with API keys on: preflights are answered without a key (browsers send none),
// an allowed origin gets the CORS headers on answers and refusals alike, a refused one gets none.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyStore } from '../gateway/auth.js';
import type { Settings } from '../core/config.js';
import { json } from './helpers/json.js';
import { isEnvelope, rig, type Rig } from './helpers/secure-app.js';

const KEY = 'sk-cors-test-0123456789';
const ALLOWED = 'https://app.example.com';
const REFUSED = 'https://evil.example.net';
let r: Rig;
beforeAll(async () => {
  r = await rig();
});
afterAll(() => r.close());

/** NIM_CORS_* as the app receives them (Settings['cors']). */
type Cors = Settings['cors'];
const cors = (over: Partial<Cors> = {}): Cors => ({
  allowOrigins: [ALLOWED, 'http://localhost:3000'],
  allowMethods: ['GET', 'POST', 'OPTIONS'],
  allowHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
  exposeHeaders: ['X-Request-Id', 'Retry-After'],
  maxAge: 600,
  ...over,
});
const make = (c?: Cors) => r.make({ keys: new KeyStore({ keys: [KEY] }), settings: { maxRequestBytes: 4096, cors: c } }).app;
const preflight = (app: ReturnType<typeof make>, origin: string, headers: Record<string, string> = {}) =>
  app.request('/v1/chat/completions', {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type', ...headers },
  });

describe('CORS preflight', () => {
  it('answers an allowed origin without a key', async () => {
    const res = await preflight(make(cors()), ALLOWED);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(res.headers.get('access-control-allow-methods')).toBe('GET, POST, OPTIONS');
    expect(res.headers.get('access-control-allow-headers')).toBe('Authorization, Content-Type, X-Request-Id');
    expect(res.headers.get('access-control-max-age')).toBe('600');
    expect(res.headers.get('vary')).toContain('Origin');
    // Origins compare case-insensitively, without a trailing slash.
    expect((await preflight(make(cors()), 'HTTPS://APP.EXAMPLE.COM')).status).toBe(204);
  });

  it('refuses another origin with a 403 envelope and no CORS headers', async () => {
    const res = await preflight(make(cors()), REFUSED);
    expect(res.status).toBe(403);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const body = await json(res);
    expect(isEnvelope(body)).toBe(true);
    expect(body.error.code).toBe('origin_not_allowed');
    // A look-alike is not the allowed origin.
    expect((await preflight(make(cors()), 'https://app.example.com.evil.net')).status).toBe(403);
    expect((await preflight(make(cors()), 'http://app.example.com')).status).toBe(403);
  });

  it('`*` allows any origin, and `*` headers reflect what the browser asks for (Authorization included)', async () => {
    const app = make(cors({ allowOrigins: ['*'], allowHeaders: ['*'], allowMethods: ['*'] }));
    const res = await preflight(app, REFUSED);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-headers')).toBe('authorization, content-type');
    expect(res.headers.get('access-control-allow-methods')).toBe('POST');
    // Junk in the request headers is not reflected.
    const junk = await preflight(app, REFUSED, { 'access-control-request-headers': 'x y, <script>' });
    expect(junk.headers.get('access-control-allow-headers')).toBeNull();
  });

  it('with no origins configured, there is no CORS: a preflight is just an unauthenticated request', async () => {
    const res = await preflight(make(undefined), ALLOWED);
    expect(res.status).toBe(401);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('CORS on requests', () => {
  it('an allowed origin can read answers and refusals (401, 404)', async () => {
    const app = make(cors());
    const ok = await app.request('/v1/models', { headers: { origin: ALLOWED, authorization: `Bearer ${KEY}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(ok.headers.get('access-control-expose-headers')).toBe('X-Request-Id, Retry-After');
    const denied = await app.request('/v1/models', { headers: { origin: ALLOWED } });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    const missing = await app.request('/v1/nope', { headers: { origin: ALLOWED, authorization: `Bearer ${KEY}` } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('access-control-allow-origin')).toBe(ALLOWED);
  });

  it('a refused origin gets no CORS headers (the browser hides the answer); the key still decides access', async () => {
    const app = make(cors());
    const res = await app.request('/v1/models', { headers: { origin: REFUSED, authorization: `Bearer ${KEY}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(res.headers.get('vary')).toContain('Origin');
    expect((await app.request('/v1/models', { headers: { origin: REFUSED } })).status).toBe(401);
  });

  it('an OPTIONS request that is not a preflight needs a key like any other', async () => {
    const res = await make(cors()).request('/v1/models', { method: 'OPTIONS' });
    expect(res.status).toBe(401);
  });
});
