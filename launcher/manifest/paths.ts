// Where the repository's shipped manifests and GPU catalog live, and which one NIM_MODEL_PATH means.
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Manifest, isLocalSource } from './model.js';
import { loadManifest } from './load.js';

// ---------------------------------------------------------------------------------------------
// where the repo's manifests live

let cachedRoot: string | undefined;

/**
 * The repository root: the nearest ancestor of this module holding package.json. Works from
 * both launcher/manifest.ts (tests, tsx) and dist/launcher/manifest.js (npm start, container).
 */
export function repoRoot(from: string = fileURLToPath(import.meta.url)): string {
  if (cachedRoot && from === fileURLToPath(import.meta.url)) return cachedRoot;
  let dir = isAbsolute(from) ? dirname(from) : resolve(from);
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'manifests'))) break;
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find portico's repository root (package.json and manifests/) above ${from}`);
    dir = up;
  }
  if (from === fileURLToPath(import.meta.url)) cachedRoot = dir;
  return dir;
}

export const DEMO_MANIFEST = 'portico-tiny-vlm.yaml';

export function manifestsDir(root = repoRoot()): string {
  return join(root, 'manifests');
}

export function gpuCatalogFile(root = repoRoot()): string {
  return join(root, 'profiles', 'gpus.yaml');
}

/** Every shipped manifest (manifests/*.yaml), sorted by file name. */
export function loadShippedManifests(dir = manifestsDir()): Manifest[] {
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/i.test(f))
    .sort()
    .map((f) => loadManifest(join(dir, f)));
}

const norm = (s: string) => s.replace(/^hf:\/\//i, '').replace(/\/+$/, '').toLowerCase();

/**
 * The shipped manifest NIM_MODEL_PATH refers to: equal to its model id, served name, an alias
 * or a source (`hf://` optional), or a local directory named like one of them
 * (`/models/Llama-3.1-8B-Instruct` matches `hf://meta-llama/Llama-3.1-8B-Instruct`).
 */
export function matchManifest(modelPath: string, manifests: Manifest[]): Manifest | undefined {
  const want = norm(modelPath);
  const wantBase = basename(want);
  const keys = (m: Manifest) => [m.model.id, m.model.servedName, m.model.source, ...m.model.aliases, ...m.profiles.map((p) => p.source ?? '')].filter(Boolean).map(norm);
  return (
    manifests.find((m) => keys(m).includes(want)) ??
    (isLocalSource(modelPath) ? manifests.find((m) => keys(m).some((k) => basename(k) === wantBase)) : undefined)
  );
}
