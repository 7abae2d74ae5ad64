import { createHash } from 'node:crypto';
import Ajv2020 from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp } from './app.js';
import { licenseResponse, manifestResponse, metadataResponse, versionResponse, API_VERSION, type ManagementInfo } from './management.js';
import { DOCS_CSP } from './openapi.js';
import { chatCompletionRequest } from './schemas.js';
import { Upstream } from './upstream.js';

const MODEL = { id: 'portico/tiny-vlm', root: '/cache/models/portico-tiny-vlm.gguf', maxModelLen: 2048 };
const INFO: ManagementInfo = {
  release: '9.8.7',
  model: { url: 'portico://tiny-vlm', shortName: 'portico/tiny-vlm' },
  profile: { id: 'a'.repeat(64), name: 'llamacpp-generic-gguf-tp1-pp1-latency' },
  manifestYaml: 'version: 1\nmodel:\n  id: portico/tiny-vlm\n',
  license: { name: 'Apache-2.0', path: '/cache/licenses/x.txt', url: 'https://www.apache.org/licenses/LICENSE-2.0', content: 'Random weights — Apache-2.0.\n' },
  assets: ['llamacpp:llama-server'],
  repositoryOverride: '',
};

function app(management?: ManagementInfo) {
  return createApp({
    settings: { maxRequestBytes: 1024 },
    model: MODEL,
    upstream: new Upstream('http://127.0.0.1:9'),
    engine: { dialect: 'llamacpp' },
    readiness: { isReady: () => false, reason: () => 'starting' },
    ...(management ? { management } : {}),
  });
}

const get = async (path: string, management = INFO) => {
  const res = await app(management).app.request(path);
  expect(res.status, path).toBe(200);
  return res;
};

describe('management endpoints', () => {
  it('GET /v1/metadata: NIM shape from the launcher-provided info (before the engine is ready)', async () => {
    const body = metadataResponse.parse(await (await get('/v1/metadata')).json());
    expect(body).toMatchObject({
      version: '9.8.7',
      assetInfo: ['llamacpp:llama-server'],
      repository_override: '',
      selectedModelProfileId: 'a'.repeat(64),
      modelInfo: [{ modelUrl: 'portico://tiny-vlm', shortName: 'portico/tiny-vlm', servedModelName: 'portico/tiny-vlm', maxModelLen: 2048 }],
    });
    expect(body.licenseInfo).toEqual(licenseResponse.parse(await (await get('/v1/license')).json()));
  });

  it('GET /v1/license: sha is the SHA-1 of content, size its UTF-8 bytes', async () => {
    const body = licenseResponse.parse(await (await get('/v1/license')).json());
    expect(body).toMatchObject({ name: 'Apache-2.0', path: '/cache/licenses/x.txt', type: 'file', content: INFO.license.content, url: INFO.license.url });
    expect(body.sha).toBe(createHash('sha1').update(INFO.license.content).digest('hex'));
    expect(body.size).toBe(Buffer.byteLength(INFO.license.content));
    expect(body.size).toBeGreaterThan(INFO.license.content.length); // the em dash is 3 bytes
  });

  it('GET /v1/version and /v1/manifest', async () => {
    expect(versionResponse.parse(await (await get('/v1/version')).json())).toEqual({ release: '9.8.7', api: API_VERSION });
    expect(manifestResponse.parse(await (await get('/v1/manifest')).json())).toEqual({ manifest_file: INFO.manifestYaml, repository_override: '' });
  });

  it('without launcher info: still every shape, derived from the model', async () => {
    const a = app().app;
    expect(metadataResponse.parse(await (await a.request('/v1/metadata')).json()).modelInfo[0]?.servedModelName).toBe('portico/tiny-vlm');
    licenseResponse.parse(await (await a.request('/v1/license')).json());
    manifestResponse.parse(await (await a.request('/v1/manifest')).json());
  });

  it('/v1/metrics answers Prometheus text even when the engine is unreachable', async () => {
    const res = await app(INFO).app.request('/v1/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    expect(text).toContain('portico_engine_metrics_up 0');
    expect(text).toContain('portico_engine_ready 0');
  });
});

describe('OpenAPI', () => {
  it('documents every route of the table, from the same zod schemas, as valid JSON Schema 2020-12', async () => {
    const { app: a, routes } = app(INFO);
    const doc = (await (await a.request('/openapi.json')).json()) as {
      openapi: string;
      info: { version: string };
      paths: Record<string, Record<string, { security: unknown[]; requestBody?: { content: Record<string, { schema: { $ref: string } }> } }>>;
      components: { schemas: Record<string, object> };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.version).toBe(API_VERSION);
    for (const r of routes) {
      const op = doc.paths[r.path.replace(/:(\w+)(\{[^}]*\})?/g, '{$1}')]?.[r.method.toLowerCase()];
      expect(op, `${r.method} ${r.path}`).toBeDefined();
      expect(op!.security).toEqual(r.access === 'public' ? [] : [{ bearerAuth: [] }, { apiKeyHeader: [] }]);
    }
    expect(doc.paths['/v1/chat/completions']!.post!.requestBody!.content['application/json']!.schema.$ref).toBe('#/components/schemas/ChatCompletionRequest');
    const { $schema: _, ...direct } = z.toJSONSchema(chatCompletionRequest, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
    expect(doc.components.schemas.ChatCompletionRequest).toEqual(direct);
    // Each component compiles, and $refs resolve, with the document as one schema registry.
    const ajv = new Ajv2020.default({ strict: false });
    ajv.addSchema({ $id: 'doc', components: doc.components }, 'doc');
    const validate = ajv.compile({ $ref: 'doc#/components/schemas/Metadata' });
    expect(validate(await (await a.request('/v1/metadata')).json())).toBe(true);
    const chatReq = ajv.compile({ $ref: 'doc#/components/schemas/ChatCompletionRequest' });
    expect(chatReq({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })).toBe(true);
    expect(chatReq({ model: 'm' })).toBe(false);
  });

  it('/docs is a self-contained page with the document embedded and a strict CSP', async () => {
    const res = await app(INFO).app.request('/docs');
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(res.headers.get('content-security-policy')).toBe(DOCS_CSP);
    const html = await res.text();
    const spec = /<script type="application\/json" id="spec">([^<]*)<\/script>/.exec(html)?.[1];
    expect(JSON.parse(spec!).openapi).toBe('3.1.0');
    // The inline renderer is exactly the script the CSP hash allows.
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '';
    expect(DOCS_CSP).toContain(`'sha256-${createHash('sha256').update(script).digest('base64')}'`);
    expect(html).not.toMatch(/https?:\/\/(?!www\.apache)/); // nothing loaded from elsewhere
  });
});
