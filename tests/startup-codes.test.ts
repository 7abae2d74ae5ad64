// Start-up failures: one table of codes → exit statuses (core/startup-errors.ts), the same on every
// path that can hit them (`serve`, `serve --dry-run`, `serve --ray-head`, `list-model-profiles`),
// one line on stderr, and nothing left listening. README lists the table.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePort } from '../core/net.js';
import { STARTUP_ERRORS, startupTableMarkdown } from '../core/startup-errors.js';
import { main } from '../serve/main.js';
import { ROOT } from './helpers/stack.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'portico-startup-'));
  mkdirSync(join(dir, 'bin'));
  // A manifest whose `profiles` is not a list: a broken file, named with its field.
  writeFileSync(join(dir, 'broken.yaml'), 'version: 1\nmodel:\n  id: acme/x\n  source: hf://acme/x\nprofiles: 3\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An environment with no GPU tools on PATH (no nvidia-smi, no vllm, no ray). */
const env = (extra: Record<string, string>): NodeJS.ProcessEnv => ({ PATH: join(dir, 'bin'), HOME: dir, NIM_CACHE_PATH: join(dir, 'cache'), NIM_LOG_LEVEL: 'ERROR', ...extra });

async function cli(argv: string[], e: NodeJS.ProcessEnv): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const w = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((stderr += String(c)), true));
  try {
    return { code: await main(argv, e), stderr };
  } finally {
    o.mockRestore();
    w.mockRestore();
  }
}

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

describe('start-up failure codes', () => {
  it('README lists the table the CLI exits by', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain(startupTableMarkdown());
    // Configuration failures exit differently from engine / cluster failures (a restart fixes only those).
    expect(STARTUP_ERRORS.invalid_setting.exit).not.toBe(STARTUP_ERRORS.engine_failed.exit);
  });

  it('a broken manifest is `invalid_manifest` on every path', async () => {
    const e = env({ NIM_MANIFEST_PATH: join(dir, 'broken.yaml'), NIM_MODEL_NAME: 'acme/x' });
    const runs = [['serve', '--dry-run'], ['list-model-profiles'], ['serve', '--ray-head', '--dry-run']];
    for (const argv of runs) {
      const r = await cli(argv, e);
      expect(r.code, argv.join(' ')).toBe(STARTUP_ERRORS.invalid_manifest.exit);
      expect(r.stderr, argv.join(' ')).toMatch(/^portico: .*broken\.yaml: model\.max_model_len/);
      expect(r.stderr.trim().split('\n'), argv.join(' ')).toHaveLength(1);
    }
  });

  it('a model path that does not exist is `invalid_setting` under serve and --ray-head alike', async () => {
    const e = env({ NIM_MODEL_PATH: join(dir, 'missing.gguf') });
    for (const argv of [['serve', '--dry-run'], ['serve', '--ray-head', '--dry-run']]) {
      const r = await cli(argv, e);
      expect(r.code, argv.join(' ')).toBe(STARTUP_ERRORS.invalid_setting.exit);
      expect(r.stderr).toMatch(/^portico: NIM_MODEL_PATH=.*missing\.gguf: no such file/);
    }
  });

  it('a bad API key is `invalid_credentials` under serve and --ray-head, and nothing is left listening', async () => {
    for (const argv of [['serve'], ['serve', '--ray-head']]) {
      const port = await freePort();
      const e = env({
        NIM_API_KEYS: 'good-key,bad key',
        NIM_SERVER_HOST: '127.0.0.1',
        NIM_SERVER_PORT: String(port),
        ...(argv.includes('--ray-head') ? { NIM_MODEL_NAME: 'hf://acme/x' } : { NIM_ENGINE_URL: `http://127.0.0.1:${await freePort()}` }),
      });
      const r = await cli(argv, e);
      expect(r.code, argv.join(' ')).toBe(STARTUP_ERRORS.invalid_credentials.exit);
      expect(r.stderr).toMatch(/^portico: NIM_API_KEYS: key #2 has spaces/);
      expect(await listening(port)).toBe(false);
    }
  });

  it('usage errors share one status', async () => {
    expect((await cli(['frobnicate'], env({}))).code).toBe(STARTUP_ERRORS.usage.exit);
    expect((await cli(['serve', '--nope'], env({}))).code).toBe(STARTUP_ERRORS.usage.exit);
    expect((await cli(['serve', '--ray-head', '--ray-worker', 'x'], env({}))).code).toBe(STARTUP_ERRORS.usage.exit);
  });
});
