// Reading a manifest file of either format.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import YAML from 'yaml';
import { type Manifest, ManifestError } from './model.js';
import { fromPortico } from './portico-format.js';
import { fromNim } from './nim-v2.js';

// ---------------------------------------------------------------------------------------------
// loading





/** Parse a manifest from YAML text. `file` is used for messages and relative paths. */
export function parseManifest(text: string, file: string): Manifest {
  const doc = YAML.parseDocument(text, { prettyErrors: true, logLevel: 'silent' });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    throw new ManifestError(`${file}${pos ? `:${pos.line}:${pos.col}` : ''}: invalid YAML: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  const data = doc.toJS() as unknown;
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new ManifestError(`${file}: expected a YAML mapping at the top level`);
  const obj = data as Record<string, unknown>;
  if ('model' in obj || 'version' in obj) return fromPortico(obj, file);
  if ('schema_version' in obj || 'profiles' in obj) return fromNim(obj, file);
  throw new ManifestError(`${file}: neither a portico manifest (no \`version: 1\` and \`model:\`) nor a NIM model_manifest.yaml (no \`schema_version\`)`);
}




export function loadManifest(file: string): Manifest {
  const abs = resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    throw new ManifestError(`${file}: cannot read manifest: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseManifest(text, abs);
}
