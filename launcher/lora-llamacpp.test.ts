import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { llamaCppLoraArgs, llamaCppLoraField, scanLlamaCppLoras } from './lora-llamacpp.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lora-scan-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function folder(root: string, name: string, files: Record<string, string>): Promise<void> {
  await mkdir(join(root, name), { recursive: true });
  for (const [f, content] of Object.entries(files)) await writeFile(join(root, name, f), content);
}

describe('scanLlamaCppLoras', () => {
  it('keeps folders with one GGUF adapter, sorted by name, and skips the rest with a reason', async () => {
    const src = join(dir, 'src');
    await folder(src, 'zeta', { 'adapter.gguf': 'GGUF....', 'adapter_config.json': '{}' });
    await folder(src, 'alpha', { 'a.gguf': 'GGUF....' });
    await folder(src, 'safetensors-only', { 'adapter_model.safetensors': 'x', 'adapter_config.json': '{}' });
    await folder(src, 'two', { 'a.gguf': 'GGUF', 'b.gguf': 'GGUF' });
    await folder(src, 'not-gguf', { 'a.gguf': 'PK\u0003\u0004' });
    await folder(src, 'bad name!', { 'a.gguf': 'GGUF' });
    await writeFile(join(src, 'stray-file.gguf'), 'GGUF');
    const r = await scanLlamaCppLoras(src);
    expect(r.adapters).toEqual([
      { name: 'alpha', file: join(src, 'alpha', 'a.gguf') },
      { name: 'zeta', file: join(src, 'zeta', 'adapter.gguf') },
    ]);
    expect(Object.fromEntries(r.skipped.map((s) => [s.name, s.reason]))).toEqual({
      'bad name!': expect.stringMatching(/not a valid model name/),
      'not-gguf': 'a.gguf is not a GGUF file',
      'safetensors-only': expect.stringMatching(/no \.gguf adapter/),
      two: 'holds 2 .gguf files; expected one',
    });
  });

  it('skips a path llama-server\'s comma/colon list cannot carry', async () => {
    const src = join(dir, 'with:colon');
    await folder(src, 'ok', { 'a.gguf': 'GGUF' });
    const r = await scanLlamaCppLoras(src);
    expect(r.adapters).toEqual([]);
    expect(r.skipped[0]!.reason).toMatch(/"," or ":"/);
  });
});

describe('llama-server arguments and request field', () => {
  const adapters = [
    { name: 'a', file: '/p/a/x.gguf' },
    { name: 'b', file: '/p/b/y.gguf' },
  ];
  it('loads every adapter at global scale 0', () => {
    expect(llamaCppLoraArgs(adapters)).toEqual(['--lora-scaled', '/p/a/x.gguf:0,/p/b/y.gguf:0']);
    expect(llamaCppLoraArgs([])).toEqual([]);
  });
  it('always sends the whole vector: base = all zeros, an adapter = its id at 1', () => {
    expect(llamaCppLoraField(adapters, undefined)).toEqual([{ id: 0, scale: 0 }, { id: 1, scale: 0 }]);
    expect(llamaCppLoraField(adapters, 'b')).toEqual([{ id: 0, scale: 0 }, { id: 1, scale: 1 }]);
    expect(() => llamaCppLoraField(adapters, 'c')).toThrow(/adapter c is not loaded/);
  });
});
