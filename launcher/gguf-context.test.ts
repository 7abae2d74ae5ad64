// A `.gguf` NIM_MODEL_PATH serves the context length written in the file (issue 12, item 10):
// files made with the same GGUF writer as the tiny demo model; NIM_MAX_MODEL_LEN still overrides.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { llamaServerPath } from './prepare/build-engine.js';
import { arr, GGUFValueType, str, u32, u64, writeGGUF } from './prepare/gguf-writer.js';
import { loadSettings } from '../core/config.js';
import { ggufContextLength } from './gguf-context.js';
import { planLaunch, resolveManifest } from './plan.js';

const tmp = mkdtempSync(join(tmpdir(), 'portico-gguf-ctx-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function gguf(name: string, kv: Parameters<typeof writeGGUF>[0]['kv']): string {
  const file = join(tmp, name);
  writeFileSync(file, writeGGUF({ kv, tensors: [] }));
  return file;
}

describe('GGUF context length', () => {
  it('reads <arch>.context_length, whatever the architecture and integer type', () => {
    expect(ggufContextLength(gguf('a.gguf', [['general.architecture', str('llama')], ['llama.context_length', u32(32768)]]))).toBe(32768);
    expect(ggufContextLength(gguf('b.gguf', [['general.architecture', str('qwen2')], ['qwen2.context_length', u64(131072)]]))).toBe(131072);
    // A large vocabulary before the key: more than the first 1 MiB window.
    const vocab = Array.from({ length: 200_000 }, (_, i) => `token-${i}`);
    const big = gguf('c.gguf', [['general.architecture', str('llama')], ['tokenizer.ggml.tokens', arr(GGUFValueType.STRING, vocab)], ['llama.context_length', u32(8192)]]);
    expect(ggufContextLength(big)).toBe(8192);
  });

  it('nothing readable: undefined (the key of another architecture does not count)', () => {
    expect(ggufContextLength(gguf('d.gguf', [['general.architecture', str('llama')], ['qwen2.context_length', u32(4096)]]))).toBeUndefined();
    const empty = join(tmp, 'empty.gguf');
    writeFileSync(empty, '');
    expect(ggufContextLength(empty)).toBeUndefined();
    expect(ggufContextLength(join(tmp, 'missing.gguf'))).toBeUndefined();
  });

  it('a .gguf NIM_MODEL_PATH: the manifest, the plan and the served model carry it; NIM_MAX_MODEL_LEN overrides', async () => {
    const file = gguf('model-Q4.gguf', [['general.architecture', str('llama')], ['llama.context_length', u32(16384)]]);
    const settings = (env: Record<string, string>) => loadSettings({ NIM_CACHE_PATH: tmp, NIM_MODEL_PATH: file, ...env });
    // A dry run only needs the engine to exist (an empty stand-in; nothing runs it).
    mkdirSync(dirname(llamaServerPath(tmp)), { recursive: true });
    writeFileSync(llamaServerPath(tmp), '', { mode: 0o755 });
    const ctx = { enginePort: 9100, dryRun: true, log: () => {}, env: { PATH: tmp } };
    const r = resolveManifest(settings({}));
    expect(r.manifest.model.maxModelLen).toBe(16384);
    const plan = await planLaunch(settings({}), ctx);
    expect(plan.model.maxModelLen).toBe(16384);
    const over = await planLaunch(settings({ NIM_MAX_MODEL_LEN: '1024' }), ctx);
    expect(over.model.maxModelLen).toBe(1024);
  });
});
