import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { createManagement } from '../gateway/management.js';
import { llamaCppCommand } from '../launcher/engines/llamacpp.js';
import { manifestsDir } from '../launcher/manifest.js';
import { buildManagementInfo, licenseNextTo, porticoRelease } from './model-info.js';

const dir = mkdtempSync(join(tmpdir(), 'portico-model-info-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const engine = llamaCppCommand({ binary: '/cache/engine/llama-server', model: '/m.gguf', servedName: 'x', port: 1, contextLength: 2048 });
const settings = { cachePath: dir, engineUrl: undefined };

describe('buildManagementInfo', () => {
  it('the demo model: its manifest file verbatim, its license text in a file, the selected profile', () => {
    const manifest = join(manifestsDir(), 'portico-tiny-vlm.yaml');
    const info = buildManagementInfo({
      settings,
      plan: {
        profile: { id: 'f'.repeat(64), name: 'llamacpp-generic-gguf-tp1-pp1-latency', manifest, model: 'portico/tiny-vlm' },
        engine,
        model: { id: 'portico/tiny-vlm', root: 'portico://tiny-vlm', maxModelLen: 2048 },
      },
      model: { id: 'portico/tiny-vlm', root: 'portico://tiny-vlm', maxModelLen: 2048 },
      release: '1.0.0',
    });
    expect(info.manifestYaml).toBe(readFileSync(manifest, 'utf8'));
    expect(info.model).toEqual({ url: 'portico://tiny-vlm', shortName: 'portico/tiny-vlm' });
    expect(info.profile).toEqual({ id: 'f'.repeat(64), name: 'llamacpp-generic-gguf-tp1-pp1-latency' });
    expect(info.assets).toEqual(['llamacpp:llama-server']);
    expect(info.license.name).toBe('Apache-2.0');
    expect(info.license.url).toBe('https://www.apache.org/licenses/LICENSE-2.0');
    expect(info.license.content).toMatch(/Random weights/);
    // `path` names a file holding exactly `content`, so sha and size describe that file.
    expect(readFileSync(info.license.path, 'utf8')).toBe(info.license.content);
    const lic = createManagement(info, { id: 'portico/tiny-vlm', maxModelLen: 2048 }).license();
    expect(lic.size).toBe(readFileSync(info.license.path).length);
  });

  it('a GGUF without a manifest: a synthesized manifest, and the LICENSE next to the weights', () => {
    const weights = join(dir, 'my-model.gguf');
    writeFileSync(weights, 'GGUF');
    writeFileSync(join(dir, 'LICENSE'), '                                 Apache License\n                           Version 2.0, January 2004\n');
    const info = buildManagementInfo({
      settings,
      plan: {
        profile: { id: 'e'.repeat(64), name: 'llamacpp-generic-gguf-tp1-pp1-latency', manifest: `(synthesized for ${weights})`, tags: { llm_engine: 'llamacpp' } },
        engine,
        model: { id: 'my-model', root: weights, maxModelLen: 4096 },
      },
      model: { id: 'my-model', root: weights, maxModelLen: 4096 },
      release: '1.0.0',
    });
    const doc = YAML.parse(info.manifestYaml) as { model: { id: string; source: string }; profiles: { id: string; tags: object }[] };
    expect(info.manifestYaml).toMatch(/^# synthesized by portico/);
    expect(doc.model).toMatchObject({ id: 'my-model', source: weights });
    expect(doc.profiles[0]).toMatchObject({ id: 'e'.repeat(64), tags: { llm_engine: 'llamacpp' } });
    expect(info.license).toMatchObject({ name: 'Apache-2.0', path: join(dir, 'LICENSE') });
  });

  it('an external engine (NIM_ENGINE_URL): no manifest, no license, the model learnt later', () => {
    const info = buildManagementInfo({ settings: { cachePath: dir, engineUrl: 'http://10.0.0.1:8000' }, plan: undefined, model: { id: 'unknown', root: '', maxModelLen: 0 }, release: '1.0.0' });
    expect(info.profile.id).toBe('external');
    expect(info.license.name).toBe('unknown');
    const served = { id: 'learnt/model', maxModelLen: 8192 };
    expect(createManagement(info, served).metadata().modelInfo[0]).toMatchObject({ shortName: 'learnt/model', servedModelName: 'learnt/model', modelUrl: 'http://10.0.0.1:8000' });
  });

  it('licenseNextTo finds nothing where there is nothing', () => {
    expect(licenseNextTo('/nonexistent/model.gguf')).toBeUndefined();
  });

  it('porticoRelease is package.json version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(porticoRelease()).toBe(pkg.version);
  });
});
