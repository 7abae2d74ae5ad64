// Route × credential matrix, generated from the app's own route table: a route added to the table
// is covered here without anyone remembering to add it. Deny by default: only the health probes
// (and /v1/metrics under NIM_METRICS_PUBLIC=1) answer without a key; unknown paths answer 401.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyStore } from '../gateway/auth.js';
import { json, type ErrorEnvelope, type ModelList } from './helpers/json.js';
import { isEnvelope, MODEL, rig, sampleBody, type Rig } from './helpers/secure-app.js';
import { isMessagesPath } from '../gateway/translate/messages.js';

const RIGHT = 'sk-right-0123456789abcdef';
const SCOPED = 'sk-scoped-0123456789abcdef';
const WRONG = 'sk-wrong-0123456789abcdef';
/** The only routes that may answer without a key (asserted, not derived: marking a route public is a decision). */
const EXPECTED_PUBLIC = new Set(['/v1/health/live', '/v1/health/ready']);

type Cred = { name: string; header?: string; expect: 'missing' | 'invalid' | 'ok' | 'scoped' };
const CREDS: Cred[] = [
  { name: 'no key', expect: 'missing' },
  { name: 'empty header', header: '', expect: 'invalid' },
  { name: 'bare key', header: RIGHT, expect: 'invalid' },
  { name: 'Basic scheme', header: `Basic ${Buffer.from(`u:${RIGHT}`).toString('base64')}`, expect: 'invalid' },
  { name: 'Bearer without key', header: 'Bearer ', expect: 'invalid' },
  { name: 'two tokens', header: `Bearer ${RIGHT} ${RIGHT}`, expect: 'invalid' },
  { name: 'key prefix', header: `Bearer ${RIGHT.slice(0, -1)}`, expect: 'invalid' },
  { name: 'key + suffix', header: `Bearer ${RIGHT}x`, expect: 'invalid' },
  { name: 'wrong key', header: `Bearer ${WRONG}`, expect: 'invalid' },
  { name: 'right key', header: `Bearer ${RIGHT}`, expect: 'ok' },
  { name: 'right key, lower-case scheme', header: `bearer ${RIGHT}`, expect: 'ok' },
  { name: 'scoped key (another model)', header: `Bearer ${SCOPED}`, expect: 'scoped' },
];

let r: Rig;
let dir: string;
let keysFile: string;
beforeAll(async () => {
  r = await rig();
  dir = mkdtempSync(join(tmpdir(), 'portico-auth-'));
  keysFile = join(dir, 'keys');
  writeFileSync(keysFile, `# test keys\n${RIGHT}\n${SCOPED} models=other-model name=scoped\n`);
});
afterAll(async () => {
  await r.close();
  rmSync(dir, { recursive: true, force: true });
});

function request(app: { request: (p: string, i?: RequestInit) => Response | Promise<Response> }, route: { method: string; path: string }, header?: string) {
  const headers: Record<string, string> = {};
  if (header !== undefined) headers.authorization = header;
  const init: RequestInit = { method: route.method, headers };
  if (route.method === 'POST') {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(sampleBody(route.path));
  }
  return app.request(route.path, init);
}

describe('route × credential matrix (from the route table)', () => {
  it('covers every route and every credential with 0 bypasses', async () => {
    const keys = new KeyStore({ file: keysFile });
    const { app, routes } = r.make({ keys });
    expect(routes.length).toBeGreaterThanOrEqual(10);
    const publicInTable = new Set(routes.filter((x) => x.access === 'public').map((x) => x.path));
    expect(publicInTable).toEqual(EXPECTED_PUBLIC);

    // Beyond the table: unknown paths, near-misses of public paths, other methods (any HTTP
    // method, not only the table's GET | POST).
    const extra: { method: string; path: string }[] = [
      { method: 'GET', path: '/' },
      { method: 'GET', path: '/v1/nothing' },
      { method: 'POST', path: '/v1/nothing' },
      { method: 'GET', path: '/v1/health/live/' },
      { method: 'GET', path: '/v1/health/live/extra' },
      { method: 'GET', path: '/V1/HEALTH/LIVE' },
      { method: 'GET', path: '/v1/health/../models' },
      { method: 'GET', path: '/v1/health/live/../../models' },
      { method: 'GET', path: '/v1//models' },
      { method: 'GET', path: '/v1/%6Dodels' },
      { method: 'GET', path: '/v1/chat/completions' },
      { method: 'DELETE', path: '/v1/models' },
      { method: 'OPTIONS', path: '/v1/models' },
      { method: 'HEAD', path: '/v1/models' },
      { method: 'GET', path: '/metrics' },
      { method: 'GET', path: '/docs' },
      { method: 'GET', path: '/openapi.json' },
    ];
    const targets = [...routes.map((x) => ({ method: x.method, path: x.path, table: x })), ...extra.map((x) => ({ ...x, table: undefined }))];

    let bypasses = 0;
    let cases = 0;
    const failures: string[] = [];
    for (const t of targets) {
      const isPublic = t.table?.access === 'public';
      for (const cred of CREDS) {
        cases++;
        const res = await request(app, t, cred.header);
        const body = t.method === 'HEAD' ? null : await json<ErrorEnvelope>(res).catch(() => null);
        const where = `${t.method} ${t.path} [${cred.name}] → ${res.status}`;
        if (isPublic) {
          if (res.status === 401 || res.status === 403) failures.push(`${where}: a public route refused`);
          continue;
        }
        if (cred.expect === 'missing' || cred.expect === 'invalid') {
          if (res.status !== 401) {
            bypasses++;
            failures.push(`${where}: expected 401`);
            continue;
          }
          expect(res.headers.get('www-authenticate') ?? '', where).toMatch(/^Bearer\b/);
          if (body && isMessagesPath(t.path)) {
            // Anthropic's routes answer in Anthropic's error shape.
            expect(body, where).toEqual({ type: 'error', error: { type: 'authentication_error', message: expect.any(String) } });
          } else if (body) {
            expect(isEnvelope(body), where).toBe(true);
            expect(body.error.code, where).toBe(cred.expect === 'missing' ? 'missing_api_key' : 'invalid_api_key');
            expect(body.error.type, where).toBe('authentication_error');
          }
        } else if (cred.expect === 'ok') {
          if (res.status === 401 || res.status === 403) failures.push(`${where}: the right key was refused`);
        } else {
          // Scoped to another model: every model-bearing request is 403, the rest are served.
          if (res.status === 401) failures.push(`${where}: scoped key not recognised`);
          if (t.table && t.method === 'POST') {
            if (res.status !== 403) {
              bypasses++;
              failures.push(`${where}: expected 403 for a model the key may not use`);
            } else {
              if (isMessagesPath(t.path)) expect(body?.error, where).toMatchObject({ type: 'permission_error', message: expect.stringContaining('may not use model') });
              else expect(body?.error).toMatchObject({ code: 'model_not_allowed', type: 'permission_error', param: 'model' });
            }
          }
        }
        await res.body?.cancel().catch(() => {});
      }
    }
    expect(failures).toEqual([]);
    expect(bypasses).toBe(0);
    expect(cases).toBe(targets.length * CREDS.length);
  });

  it('with no keys configured, everything is open (NIM behaviour)', async () => {
    const { app } = r.make();
    expect((await app.request('/v1/models')).status).toBe(200);
  });

  it('NIM_METRICS_PUBLIC opens the metrics route only (when the table has one)', async () => {
    const keys = new KeyStore({ keys: [RIGHT] });
    const { app, routes } = r.make({ keys, settings: { maxRequestBytes: 1024, metricsPublic: true } });
    const metrics = routes.filter((x) => x.path === '/v1/metrics' || x.path === '/metrics');
    for (const m of metrics) expect((await app.request(m.path)).status).not.toBe(401);
    for (const x of routes.filter((x) => x.access !== 'public' && !metrics.includes(x))) {
      const res = await request(app, x);
      expect(res.status, `${x.method} ${x.path}`).toBe(401);
    }
    // Without the setting, metrics need a key.
    const closed = r.make({ keys }).app;
    for (const m of metrics) expect((await closed.request(m.path)).status).toBe(401);
  });

  it('a scoped key lists only the models it may use, and may use those', async () => {
    const keys = new KeyStore({ file: keysFile });
    const { app } = r.make({ keys });
    const scoped = await json<ModelList>(await app.request('/v1/models', { headers: { authorization: `Bearer ${SCOPED}` } }));
    expect(scoped.data).toEqual([]);
    const full = await json<ModelList>(await app.request('/v1/models', { headers: { authorization: `Bearer ${RIGHT}` } }));
    expect(full.data[0]!.id).toBe(MODEL.id);

    const own = new KeyStore({ keys: [], file: undefined });
    expect(own.enabled).toBe(false);
    writeFileSync(join(dir, 'own'), `${SCOPED} models=${MODEL.id},other\n`);
    const app2 = r.make({ keys: new KeyStore({ file: join(dir, 'own') }) }).app;
    const res = await app2.request('/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${SCOPED}`, 'content-type': 'application/json' },
      body: JSON.stringify(sampleBody('/v1/chat/completions')),
    });
    expect(res.status).toBe(200);
  });

  it('an empty keys file locks every protected route (fail closed)', async () => {
    writeFileSync(join(dir, 'empty'), '# nobody\n');
    const keys = new KeyStore({ file: join(dir, 'empty') });
    expect(keys.enabled).toBe(true);
    const { app } = r.make({ keys });
    expect((await app.request('/v1/models', { headers: { authorization: `Bearer ${RIGHT}` } })).status).toBe(401);
    expect((await app.request('/v1/health/live')).status).toBe(200);
  });

  it('keys in settings alone turn auth on (createApp is safe without an explicit KeyStore)', async () => {
    const { app } = r.make({ settings: { maxRequestBytes: 1024, apiKeys: [RIGHT] } });
    expect((await app.request('/v1/models')).status).toBe(401);
    expect((await app.request('/v1/models', { headers: { authorization: `Bearer ${RIGHT}` } })).status).toBe(200);
  });
});
