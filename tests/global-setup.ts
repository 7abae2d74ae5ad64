// Runs once before the suite: everything the cross-process tests need, built or reused from
// the cache (NIM_CACHE_PATH, default ~/.cache/portico).
import { execa } from 'execa';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadSettings } from '../launcher/config.js';
import { ensureLlamaServer } from '../scripts/build-engine.js';
import { ensureTinyModel } from '../scripts/tiny-model.js';

export default async function setup(project: TestProject): Promise<void> {
  const { cachePath } = loadSettings({ NIM_CACHE_PATH: process.env.NIM_CACHE_PATH });
  const llamaServer = await ensureLlamaServer(cachePath, (l) => process.stderr.write(`${l}\n`));
  const models = await ensureTinyModel(join(cachePath, 'models'));
  // CLI tests run the compiled launcher, as users do.
  await execa('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  project.provide('cachePath', cachePath);
  project.provide('llamaServer', llamaServer);
  project.provide('tinyModel', models.model);
  project.provide('tinyMmproj', models.mmproj);
}

declare module 'vitest' {
  export interface ProvidedContext {
    cachePath: string;
    llamaServer: string;
    tinyModel: string;
    tinyMmproj: string;
  }
}
