import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { f32, str, writeGGUF, type GGUFTensor } from './prepare/gguf-writer.js';
import { ensureTinyEmbed } from './prepare/tiny-embed.js';
import { buildTinyLora } from './prepare/tiny-lora.js';
import { ensureTinyModel } from './prepare/tiny-model.js';
import { parseGgufHeader } from './gguf-header.js';
import { llamaCppLoraArgs, llamaCppLoraField, scanLlamaCppLoras } from './lora-llamacpp.js';

let dir: string;
let baseModel: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lora-scan-'));
  baseModel = (await ensureTinyModel(join(dir, 'base'))).model;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function folder(root: string, name: string, files: Record<string, string | Buffer>): Promise<void> {
  await mkdir(join(root, name), { recursive: true });
  for (const [f, content] of Object.entries(files)) await writeFile(join(root, name, f), content);
}
const zeros = (name: string, dims: number[]): GGUFTensor => ({ name, dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)) });
const adapter = (tensors: GGUFTensor[], kv: Record<string, string> = {}) =>
  writeGGUF({
    kv: [
      ['general.architecture', str(kv.arch ?? 'llama')],
      ['general.type', str(kv.type ?? 'adapter')],
      ['adapter.type', str('lora')],
      ['adapter.lora.alpha', f32(8)],
    ],
    tensors,
  });

describe('scanLlamaCppLoras', () => {
  it('keeps folders with one GGUF adapter, sorted by name, and skips the rest with a reason', async () => {
    const src = join(dir, 'src');
    await folder(src, 'zeta', { 'adapter.gguf': buildTinyLora(0), 'adapter_config.json': '{}' });
    await folder(src, 'alpha', { 'a.gguf': buildTinyLora(1) });
    await folder(src, 'safetensors-only', { 'adapter_model.safetensors': 'x', 'adapter_config.json': '{}' });
    await folder(src, 'two', { 'a.gguf': buildTinyLora(0), 'b.gguf': buildTinyLora(1) });
    await folder(src, 'not-gguf', { 'a.gguf': 'PK\u0003\u0004' });
    await folder(src, 'truncated', { 'a.gguf': buildTinyLora(0).subarray(0, 100) });
    await folder(src, 'bad name!', { 'a.gguf': buildTinyLora(0) });
    await writeFile(join(src, 'stray-file.gguf'), 'GGUF');
    const r = await scanLlamaCppLoras(src);
    expect(r.adapters).toEqual([
      { name: 'alpha', file: join(src, 'alpha', 'a.gguf'), rank: 4 },
      { name: 'zeta', file: join(src, 'zeta', 'adapter.gguf'), rank: 4 },
    ]);
    expect(Object.fromEntries(r.skipped.map((s) => [s.name, s.reason]))).toEqual({
      'bad name!': expect.stringMatching(/not a valid model name/),
      'not-gguf': 'a.gguf: not a GGUF file',
      'safetensors-only': expect.stringMatching(/no \.gguf adapter/),
      truncated: 'a.gguf: truncated GGUF header',
      two: 'holds 2 .gguf files; expected one',
    });
  });

  it('with the base model, skips adapters llama.cpp would refuse (and that would stop the engine)', async () => {
    const src = join(dir, 'checked');
    await folder(src, 'good', { 'a.gguf': buildTinyLora(0) });
    await mkdir(join(src, 'full-model'));
    await copyFile((await ensureTinyEmbed(join(dir, 'embed'))).model, join(src, 'full-model', 'model.gguf'));
    await folder(src, 'wrong-shape', { 'a.gguf': adapter([zeros('output.weight.lora_a', [48, 4]), zeros('output.weight.lora_b', [4, 108])]) });
    await folder(src, 'unknown-tensor', { 'a.gguf': adapter([zeros('blk.9.attn_q.weight.lora_a', [64, 4]), zeros('blk.9.attn_q.weight.lora_b', [4, 64])]) });
    await folder(src, 'half-pair', { 'a.gguf': adapter([zeros('output.weight.lora_a', [64, 4])]) });
    await folder(src, 'other-arch', { 'a.gguf': adapter([zeros('output.weight.lora_a', [64, 4]), zeros('output.weight.lora_b', [4, 108])], { arch: 'qwen2' }) });
    const r = await scanLlamaCppLoras(src, baseModel);
    expect(r.adapters.map((a) => a.name)).toEqual(['good']);
    expect(Object.fromEntries(r.skipped.map((s) => [s.name, s.reason]))).toEqual({
      'full-model': 'model.gguf: general.type is "", not "adapter"',
      'half-pair': 'a.gguf: output.weight lacks its lora_b tensor',
      'other-arch': 'a.gguf: architecture qwen2 does not match the base model\'s llama',
      'unknown-tensor': 'a.gguf: blk.9.attn_q.weight is not a tensor of the base model',
      'wrong-shape': 'a.gguf: output.weight: shapes a 48x4, b 4x108 do not fit the base tensor 64x108',
    });
  });

  it('skips a path llama-server\'s comma/colon list cannot carry', async () => {
    const src = join(dir, 'with:colon');
    await folder(src, 'ok', { 'a.gguf': buildTinyLora(0) });
    const r = await scanLlamaCppLoras(src);
    expect(r.adapters).toEqual([]);
    expect(r.skipped[0]!.reason).toMatch(/"," or ":"/);
  });
});

describe('parseGgufHeader', () => {
  it('reads metadata and tensor dims of the generated adapter', () => {
    const h = parseGgufHeader(buildTinyLora(0));
    expect(h.kv.get('general.type')).toBe('adapter');
    expect(h.kv.get('adapter.lora.alpha')).toBe(8);
    expect(h.tensors.get('output.weight.lora_a')).toEqual([64, 4]);
    expect(h.tensors.get('output.weight.lora_b')).toEqual([4, 108]);
  });
  it('refuses implausible counts instead of allocating them', () => {
    const b = Buffer.alloc(24);
    b.write('GGUF', 0, 'latin1');
    b.writeUInt32LE(3, 4);
    b.writeBigUInt64LE(2n ** 62n, 8);
    expect(() => parseGgufHeader(b)).toThrow('implausible count in GGUF header');
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
