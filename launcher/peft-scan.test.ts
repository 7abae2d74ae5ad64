import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTinyLora } from './prepare/tiny-lora.js';
import { scanPeftSource } from './peft-scan.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'peft-scan-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function folder(root: string, name: string, files: Record<string, string | Buffer>): Promise<void> {
  await mkdir(join(root, name), { recursive: true });
  for (const [f, content] of Object.entries(files)) await writeFile(join(root, name, f), content);
}
const hfConfig = (r: unknown, extra: Record<string, unknown> = {}) => JSON.stringify({ peft_type: 'LORA', r, lora_alpha: 16, target_modules: ['q_proj'], ...extra });

describe('scanPeftSource for vLLM and TensorRT-LLM (Hugging Face PEFT folders)', () => {
  it('keeps folders with adapter_config.json and weights; skips the rest with one reason each', async () => {
    const src = join(dir, 'hf');
    await folder(src, 'sql', { 'adapter_config.json': hfConfig(8), 'adapter_model.safetensors': 'w' });
    await folder(src, 'math', { 'adapter_config.json': hfConfig(16), 'adapter_model.bin': 'w' });
    await folder(src, 'no-rank-given', { 'adapter_config.json': '{}', 'adapter_model.safetensors': 'w' });
    await folder(src, 'big', { 'adapter_config.json': hfConfig(64), 'adapter_model.safetensors': 'w' });
    await folder(src, 'no-weights', { 'adapter_config.json': hfConfig(8) });
    await folder(src, 'no-config', { 'adapter_model.safetensors': 'w' });
    await folder(src, 'broken-json', { 'adapter_config.json': '{"r": 8', 'adapter_model.safetensors': 'w' });
    await folder(src, 'ia3', { 'adapter_config.json': hfConfig(8, { peft_type: 'IA3' }), 'adapter_model.safetensors': 'w' });
    await folder(src, 'bad-rank', { 'adapter_config.json': hfConfig('eight'), 'adapter_model.safetensors': 'w' });
    await folder(src, 'bad name', { 'adapter_config.json': hfConfig(8), 'adapter_model.safetensors': 'w' });
    await writeFile(join(src, 'stray.json'), '{}');
    const scan = await scanPeftSource(src, { engine: 'vllm', maxRank: 32 });
    expect(scan.problem).toBeUndefined();
    expect(scan.adapters.map((a) => [a.name, a.path, a.rank])).toEqual([
      ['math', join(src, 'math'), 16],
      ['no-rank-given', join(src, 'no-rank-given'), undefined],
      ['sql', join(src, 'sql'), 8],
    ]);
    expect(Object.fromEntries(scan.skipped.map((s) => [s.name, s.reason]))).toEqual({
      'bad name': expect.stringMatching(/not a valid model name/),
      'bad-rank': 'adapter_config.json: r is "eight", not a positive whole number',
      big: 'rank 64 is above NIM_MAX_LORA_RANK=32',
      'broken-json': expect.stringMatching(/^adapter_config\.json: .*JSON/),
      ia3: 'adapter_config.json: peft_type is "IA3", not "LORA"',
      'no-config': 'holds no adapter_config.json',
      'no-weights': 'holds no adapter_model.safetensors or adapter_model.bin',
    });
    // No cap on GPU engines: they evict from their own caches.
    expect((await scanPeftSource(src, { engine: 'tensorrt_llm', maxRank: 32, maxAdapters: undefined })).adapters).toHaveLength(3);
  });

  it('a fingerprint that changes when the weights are replaced in place', async () => {
    const src = join(dir, 'fp');
    await folder(src, 'a', { 'adapter_config.json': hfConfig(8), 'adapter_model.safetensors': 'w1' });
    const before = (await scanPeftSource(src, { engine: 'vllm', maxRank: 32 })).adapters[0]!.fingerprint;
    expect((await scanPeftSource(src, { engine: 'vllm', maxRank: 32 })).adapters[0]!.fingerprint).toBe(before);
    await writeFile(join(src, 'a', 'adapter_model.safetensors'), 'w2-longer');
    await utimes(join(src, 'a', 'adapter_model.safetensors'), new Date(), new Date(Date.now() + 5000));
    expect((await scanPeftSource(src, { engine: 'vllm', maxRank: 32 })).adapters[0]!.fingerprint).not.toBe(before);
  });

  it('a missing or unreadable NIM_PEFT_SOURCE is a problem to report, not an error', async () => {
    const missing = await scanPeftSource(join(dir, 'nope'), { engine: 'vllm', maxRank: 32 });
    expect(missing).toEqual({ adapters: [], skipped: [], problem: expect.stringMatching(/NIM_PEFT_SOURCE=.*nope cannot be read \(ENOENT\)/) });
    await writeFile(join(dir, 'a-file'), '');
    expect((await scanPeftSource(join(dir, 'a-file'), { engine: 'llamacpp', maxRank: 32 })).problem).toMatch(/is not a directory/);
  });
});

describe('scanPeftSource for llama.cpp (GGUF adapters)', () => {
  it('reads the rank from the tensors and applies NIM_MAX_LORA_RANK', async () => {
    const src = join(dir, 'gguf');
    await folder(src, 'a', { 'adapter_model.gguf': buildTinyLora(0) });
    await folder(src, 'hf-only', { 'adapter_config.json': hfConfig(8), 'adapter_model.safetensors': 'w' });
    const scan = await scanPeftSource(src, { engine: 'llamacpp', maxRank: 32 });
    expect(scan.adapters).toEqual([{ name: 'a', path: join(src, 'a'), file: join(src, 'a', 'adapter_model.gguf'), rank: 4, fingerprint: expect.stringMatching(/^adapter_model\.gguf:\d+:\d+$/) }]);
    expect(scan.skipped).toEqual([{ name: 'hf-only', reason: expect.stringMatching(/no \.gguf adapter/) }]);
    const low = await scanPeftSource(src, { engine: 'llamacpp', maxRank: 2 });
    expect(low.adapters).toEqual([]);
    expect(low.skipped.map((s) => s.reason)).toContain('rank 4 is above NIM_MAX_LORA_RANK=2');
  });

  it('over NIM_MAX_CPU_LORAS: the adapters served keep their place, the rest come in name order', async () => {
    const src = join(dir, 'many');
    for (const [i, name] of ['a', 'b', 'c', 'd'].entries()) await folder(src, name, { 'adapter_model.gguf': buildTinyLora(i) });
    const first = await scanPeftSource(src, { engine: 'llamacpp', maxRank: 32, maxAdapters: 2 });
    expect(first.adapters.map((a) => a.name)).toEqual(['a', 'b']);
    expect(first.skipped).toEqual([
      { name: 'c', reason: 'over NIM_MAX_CPU_LORAS=2: llama.cpp holds at most that many adapters' },
      { name: 'd', reason: 'over NIM_MAX_CPU_LORAS=2: llama.cpp holds at most that many adapters' },
    ]);
    // d is served: a new folder sorting before it does not push it out.
    const again = await scanPeftSource(src, { engine: 'llamacpp', maxRank: 32, maxAdapters: 2, serving: ['d', 'b'] });
    expect(again.adapters.map((a) => a.name)).toEqual(['b', 'd']);
  });
});
