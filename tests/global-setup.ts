// Runs once before the suite: everything the cross-process tests need, built or reused from
// the cache (NIM_CACHE_PATH, default ~/.cache/portico).
import { execa } from 'execa';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadSettings } from '../core/config.js';
import { ensureLlamaServer } from '../launcher/prepare/build-engine.js';
import { ensureTinyModel } from '../launcher/prepare/tiny-model.js';
import { ensureTinyEmbed } from '../launcher/prepare/tiny-embed.js';
import { MARKER, waitNoLeftovers } from './helpers/leftovers.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Every process the suite starts inherits this marker; the teardown below fails the run if any
  // is still alive (an orphaned engine, a fake engine, nginx, prometheus...).
  const runId = randomUUID();
  process.env[MARKER] = runId;
  const { cachePath } = loadSettings({ NIM_CACHE_PATH: process.env.NIM_CACHE_PATH });
  const llamaServer = await ensureLlamaServer(cachePath, (l) => process.stderr.write(`${l}\n`));
  const models = await ensureTinyModel(join(cachePath, 'models'));
  // The CPU demo's second model: written once here, so stacks starting in parallel find it current.
  await ensureTinyEmbed(join(cachePath, 'models'));
  // CLI tests run the compiled launcher, as users do.
  await execa('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  project.provide('cachePath', cachePath);
  project.provide('llamaServer', llamaServer);
  project.provide('tinyModel', models.model);
  project.provide('tinyMmproj', models.mmproj);
  return async () => {
    // vitest's own workers carry the marker too; anything else is a leak.
    const left = await waitNoLeftovers(runId, (p) => /node_modules\/(vitest|tinypool)\//.test(p.args), 3000);
    if (left.length === 0) return;
    for (const p of left) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // vitest reports an error thrown here but still exits 0: set the exit code ourselves.
    process.exitCode = 1;
    throw new Error(`the suite left ${left.length} process(es) running (now killed):\n${left.map((p) => `  ${p.pid} ${p.args}`).join('\n')}`);
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    cachePath: string;
    llamaServer: string;
    tinyModel: string;
    tinyMmproj: string;
  }
}
