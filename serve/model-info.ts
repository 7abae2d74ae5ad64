// What the NIM management endpoints describe (gateway/management.ts ManagementInfo), built once at
// start from the launch plan: the manifest the profile came from (its YAML text and license), the
// selected profile, the engine. Models without a manifest file get a synthesized manifest, and a
// license found next to the weights or an explicit "no license information" text.
import { redactUrl } from '../launcher/redact-url.js';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import YAML from 'yaml';
import type { ManagementInfo } from '../gateway/management.js';
import type { Settings } from '../core/config.js';
import type { EngineCommand, ServedModel } from '../core/engine.js';
import { loadManifest, repoRoot, type License, type Manifest } from '../launcher/manifest.js';

/** portico's version, from its package.json. */
export function porticoRelease(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export interface ManagementInput {
  settings: Pick<Settings, 'cachePath' | 'engineUrl'>;
  /** The launch plan; undefined when fronting an engine at NIM_ENGINE_URL. */
  plan: { profile: Record<string, unknown>; engine: EngineCommand; model: ServedModel } | undefined;
  model: ServedModel;
  release?: string;
}

export function buildManagementInfo(input: ManagementInput): ManagementInfo {
  const release = input.release ?? porticoRelease();
  const { plan, settings } = input;
  if (!plan) {
    const url = settings.engineUrl ? redactUrl(settings.engineUrl) : '';
    return {
      release,
      // shortName '' → the gateway shows the model id it learns from the engine.
      model: { url, shortName: '' },
      profile: { id: 'external', name: 'external-engine' },
      manifestYaml: `# portico fronts an engine it did not start (NIM_ENGINE_URL=${url}): no manifest.\n`,
      license: unknownLicense(input.model.id),
      assets: [],
      repositoryOverride: '',
    };
  }
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const manifestFile = str(plan.profile.manifest);
  const manifest = manifestFile && existsSync(manifestFile) ? tryLoad(manifestFile) : undefined;
  const manifestYaml = manifest ? readFileSync(manifestFile, 'utf8') : synthesizedManifest(plan);
  const modelId = manifest?.model.id || str(plan.profile.model) || plan.model.id;
  return {
    release,
    model: { url: manifest?.model.source ?? plan.model.root, shortName: modelId },
    profile: { id: str(plan.profile.id) || 'unknown', name: str(plan.profile.name) || 'unknown' },
    manifestYaml,
    license:
      (manifest?.model.license && licenseFromManifest(manifest.model.license, modelId, settings.cachePath)) ??
      licenseNextTo(plan.model.root) ??
      unknownLicense(plan.model.id),
    assets: [`${plan.engine.kind}:${basename(plan.engine.command)}`],
    repositoryOverride: '',
  };
}

function tryLoad(file: string): Manifest | undefined {
  try {
    return loadManifest(file);
  } catch {
    return undefined;
  }
}

/** A manifest in portico's format describing what runs, for models no manifest file describes. */
function synthesizedManifest(plan: NonNullable<ManagementInput['plan']>): string {
  const doc = new YAML.Document({
    version: 1,
    model: { id: plan.model.id, source: plan.model.root, max_model_len: plan.model.maxModelLen },
    profiles: [{ id: plan.profile.id, name: plan.profile.name, tags: plan.profile.tags }],
  });
  doc.commentBefore = ` synthesized by portico: no manifest file describes this model (${String(plan.profile.manifest ?? '')})`;
  return doc.toString();
}

const LICENSE_URLS: Record<string, string> = {
  'Apache-2.0': 'https://www.apache.org/licenses/LICENSE-2.0',
  MIT: 'https://opensource.org/license/mit',
};

/**
 * The manifest's license: its file, or its inline text written once to NIM_CACHE_PATH/licenses so
 * `path` names a file holding exactly `content` (as NIM's does).
 */
function licenseFromManifest(l: License, modelId: string, cachePath: string): ManagementInfo['license'] | undefined {
  let content: string | undefined;
  let path = '';
  if (l.file) {
    try {
      content = readFileSync(l.file, 'utf8');
      path = l.file;
    } catch {
      content = undefined;
    }
  }
  if (content === undefined && l.text) {
    content = l.text.endsWith('\n') ? l.text : `${l.text}\n`;
    path = writeCached(join(cachePath, 'licenses', `${modelId.replace(/[^\w.-]+/g, '_')}.LICENSE.txt`), content);
  }
  if (content === undefined) return undefined;
  return { name: l.name, path, url: l.url ?? LICENSE_URLS[l.name] ?? '', content };
}

function writeCached(file: string, content: string): string {
  try {
    if (!existsSync(file) || readFileSync(file, 'utf8') !== content) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, content);
    }
    return file;
  } catch {
    return '';
  }
}

const LICENSE_FILE = /^licen[cs]e(\.(txt|md))?$/i;

/** A LICENSE file in the weights' directory (Hugging Face snapshots ship one). */
export function licenseNextTo(weights: string): ManagementInfo['license'] | undefined {
  try {
    const dir = statSync(weights).isDirectory() ? weights : dirname(weights);
    const hit = readdirSync(dir).find((f) => LICENSE_FILE.test(f));
    if (!hit) return undefined;
    const path = join(dir, hit);
    const content = readFileSync(path, 'utf8');
    const name = /Apache License/i.test(content) ? 'Apache-2.0' : /\bMIT License\b/i.test(content) ? 'MIT' : (content.split('\n').find((l) => l.trim())?.trim().slice(0, 80) ?? hit);
    return { name, path, url: LICENSE_URLS[name] ?? '', content };
  } catch {
    return undefined;
  }
}

function unknownLicense(model: string): ManagementInfo['license'] {
  return {
    name: 'unknown',
    path: '',
    url: '',
    content: `No license information is available for ${model}: no manifest names one and no LICENSE file sits next to the weights. Check the terms of the weights before use.\n`,
  };
}
