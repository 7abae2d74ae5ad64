import { gguf } from '@huggingface/gguf';
import { execa } from 'execa';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTinyModel } from './tiny-model.js';
import { buildTinyLora, TINY_LORA_ALPHA, TINY_LORA_CONFIG, TINY_LORA_FILE, TINY_LORA_NAMES, TINY_LORA_RANK, writeDemoLoras } from './tiny-lora.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tiny-lora-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const read = async (p: string) => gguf(p, { allowLocalFile: true });

describe('tiny LoRA adapters', () => {
  it('carry the KV llama.cpp requires: general.type adapter, arch llama, adapter.type lora, alpha', async () => {
    const [a] = await writeDemoLoras(join(dir, 'kv'));
    const m = (await read(a!.gguf)).metadata as Record<string, unknown>;
    expect(m['general.type']).toBe('adapter');
    expect(m['general.architecture']).toBe('llama');
    expect(m['adapter.type']).toBe('lora');
    expect(m['adapter.lora.alpha']).toBe(TINY_LORA_ALPHA);
  });

  it('pair <base>.lora_a [n_in, r] with <base>.lora_b [r, n_out] for tensors of the tiny VLM', async () => {
    const base = await read((await ensureTinyModel(join(dir, 'base'))).model);
    const baseShape = new Map(base.tensorInfos.map((t) => [t.name, t.shape.map(Number)]));
    const [a] = await writeDemoLoras(join(dir, 'shapes'));
    const infos = (await read(a!.gguf)).tensorInfos;
    expect(infos.length).toBeGreaterThan(0);
    for (const t of infos) {
      const m = /^(.*)\.lora_(a|b)$/.exec(t.name);
      expect(m, t.name).not.toBeNull();
      const [nIn, nOut] = baseShape.get(m![1]!)!;
      expect(t.shape.map(Number)).toEqual(m![2] === 'a' ? [nIn, TINY_LORA_RANK] : [TINY_LORA_RANK, nOut]);
      expect(infos.some((o) => o.name === `${m![1]}.lora_${m![2] === 'a' ? 'b' : 'a'}`)).toBe(true);
    }
  });

  it('are deterministic and differ from each other', () => {
    expect(buildTinyLora(0).equals(buildTinyLora(0))).toBe(true);
    expect(buildTinyLora(0).equals(buildTinyLora(1))).toBe(false);
  });

  it('`demo:loras DIR` (the compiled script) writes two NIM-style folders: adapter GGUF + adapter_config.json', async () => {
    const out = join(dir, 'cli');
    const r = await execa('node', ['dist/launcher/prepare/tiny-lora.js', out], { reject: false, timeout: 30_000 });
    expect(r.exitCode).toBe(0);
    expect((await readdir(out)).sort()).toEqual([...TINY_LORA_NAMES]);
    for (const [i, name] of TINY_LORA_NAMES.entries()) {
      expect((await readdir(join(out, name))).sort()).toEqual([TINY_LORA_CONFIG, TINY_LORA_FILE]);
      expect((await readFile(join(out, name, TINY_LORA_FILE))).equals(buildTinyLora(i))).toBe(true);
      const config = JSON.parse(await readFile(join(out, name, TINY_LORA_CONFIG), 'utf8')) as Record<string, unknown>;
      expect(config).toMatchObject({ peft_type: 'LORA', r: TINY_LORA_RANK, lora_alpha: TINY_LORA_ALPHA, target_modules: ['lm_head', 'v_proj'] });
    }
    const usage = await execa('node', ['dist/launcher/prepare/tiny-lora.js'], { reject: false, timeout: 30_000 });
    expect(usage.exitCode).toBe(2);
    expect(usage.stderr).toMatch(/usage: npm run demo:loras -- <output-dir>/);
  });
});
