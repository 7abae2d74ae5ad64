// Model manifests: which model, where its weights come from, and the profiles (engine, precision,
// parallelism, GPU) it can run with. Two inputs are accepted:
//   - portico manifests (manifests/*.yaml, `version: 1`, a `model:` block and `profiles:`), and
//   - NIM's model_manifest.yaml v2 (`schema_version: 2.x`, `profiles: [{id, tags, workspace}]`).
// Both become the same `Manifest`. Every validation error names the file and the field.
//
// This module is the manifests' public face; the parts live in manifest/ by job.
export * from './manifest/model.js';
export * from './manifest/portico-format.js';
export * from './manifest/nim-v2.js';
export * from './manifest/load.js';
export * from './manifest/synthesize.js';
export * from './manifest/paths.js';
