// The NIM management endpoints of the running stack (demo model): shapes as NIM documents them,
// the data from the demo manifest and the selected profile, the OpenAPI document and /docs.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { licenseResponse, manifestResponse, metadataResponse, versionResponse, API_VERSION } from '../gateway/management.js';
import { DEMO_MODEL_NAME } from '../launcher/plan.js';
import { ROOT, startStack, type Stack } from './helpers/stack.js';

let stack: Stack;
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  expect(await stack?.stop()).toBe(0);
});

const get = async (path: string) => {
  const res = await fetch(`${stack.url}${path}`);
  expect(res.status, path).toBe(200);
  expect(res.headers.get('x-portico-overhead-ms'), path).toMatch(/^\d+\.\d{3}$/);
  expect(res.headers.get('x-request-id'), path).toBeTruthy();
  return res;
};

describe('NIM management endpoints', () => {
  it('GET /v1/version: the package version and the API version', async () => {
    expect(versionResponse.parse(await (await get('/v1/version')).json())).toEqual({ release: pkg.version, api: API_VERSION });
  });

  it('GET /v1/metadata: the demo model, the selected profile, its license', async () => {
    const m = metadataResponse.parse(await (await get('/v1/metadata')).json());
    expect(m.version).toBe(pkg.version);
    expect(m.selectedModelProfileId).toMatch(/^[0-9a-f]{64}$/);
    expect(m.selectedModelProfileName).toMatch(/^llamacpp-/);
    expect(m.assetInfo).toEqual(['llamacpp:llama-server']);
    expect(m.repository_override).toBe('');
    // The CPU demo serves two models: the VLM (whose deployment the rest describes), then the embedder.
    expect(m.modelInfo).toEqual([
      { modelUrl: 'portico://tiny-vlm', shortName: DEMO_MODEL_NAME, servedModelName: DEMO_MODEL_NAME, maxModelLen: 2048 },
      { modelUrl: expect.stringMatching(/portico-tiny-embed\.gguf$/), shortName: 'portico/tiny-embed', servedModelName: 'portico/tiny-embed', maxModelLen: 512 },
    ]);
    expect(m.licenseInfo).toEqual(licenseResponse.parse(await (await get('/v1/license')).json()));
    // The same profile `portico serve --dry-run` reports.
    expect(stack.output()).toContain(m.selectedModelProfileId);
  });

  it('GET /v1/license: the demo manifest’s license; sha = SHA-1 of content; path holds exactly content', async () => {
    const l = licenseResponse.parse(await (await get('/v1/license')).json());
    expect(l).toMatchObject({ name: 'Apache-2.0', type: 'file', url: 'https://www.apache.org/licenses/LICENSE-2.0' });
    expect(l.content).toMatch(/Random weights/);
    expect(l.sha).toBe(createHash('sha1').update(l.content).digest('hex'));
    expect(l.size).toBe(Buffer.byteLength(l.content));
    expect(existsSync(l.path)).toBe(true);
    expect(readFileSync(l.path, 'utf8')).toBe(l.content);
  });

  it('GET /v1/manifest: the demo manifest as YAML text', async () => {
    const m = manifestResponse.parse(await (await get('/v1/manifest')).json());
    expect(m.manifest_file).toBe(readFileSync(join(ROOT, 'manifests', 'portico-tiny-vlm.yaml'), 'utf8'));
    expect((YAML.parse(m.manifest_file) as { model: { id: string } }).model.id).toBe(DEMO_MODEL_NAME);
    expect(m.repository_override).toBe('');
  });

  it('GET /openapi.json and /docs', async () => {
    const doc = (await (await get('/openapi.json')).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe('3.1.0');
    for (const p of ['/v1/chat/completions', '/v1/metadata', '/v1/version', '/v1/license', '/v1/manifest', '/v1/metrics', '/v1/health/ready']) {
      expect(doc.paths[p], p).toBeDefined();
    }
    const docs = await get('/docs');
    expect(docs.headers.get('content-type')).toContain('text/html');
    expect(await docs.text()).toContain('"openapi":"3.1.0"');
  });
});
