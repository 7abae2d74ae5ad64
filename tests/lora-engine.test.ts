// LoRA adapters on the real llama-server with the tiny VLM: the facts issue 16's llama.cpp path
// relies on (launcher/lora-llamacpp.ts), each proven against the engine itself.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { llamaCppLoraArgs, llamaCppLoraField, scanLlamaCppLoras, type LoraAdapter } from '../launcher/lora-llamacpp.js';
import { f32, str, writeGGUF } from '../launcher/prepare/gguf-writer.js';
import { TINY_LORA_NAMES, writeDemoLoras, writeTinyLora } from '../launcher/prepare/tiny-lora.js';
import { startLlamaServer, type LlamaServer } from './helpers/llama-server.js';

const [A, B] = TINY_LORA_NAMES;
let dir: string;
let adapters: LoraAdapter[];
let engine: LlamaServer;

const base = (np = 2) => ['-m', inject('tinyModel'), '--mmproj', inject('tinyMmproj'), '-c', '2048', '-np', String(np), '-t', '2', '--alias', 'portico/tiny-vlm', '--no-webui'];

async function chat(e: LlamaServer, extra: Record<string, unknown>): Promise<string> {
  const r = await fetch(`${e.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Hello there' }], temperature: 0, max_tokens: 60, ...extra }),
  });
  const body = (await r.json()) as { choices: { message: { content: string }; finish_reason: string }[] };
  expect(r.status).toBe(200);
  return body.choices[0]!.message.content;
}
const withAdapter = (name: string | undefined) => ({ lora: llamaCppLoraField(adapters, name) });
async function loraList(e: LlamaServer) {
  return (await (await fetch(`${e.url}/lora-adapters`)).json()) as { id: number; path: string; scale: number }[];
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lora-engine-'));
  await writeDemoLoras(dir);
  const scan = await scanLlamaCppLoras(dir, inject('tinyModel'));
  expect(scan.skipped).toEqual([]);
  adapters = scan.adapters;
  engine = await startLlamaServer([...base(), ...llamaCppLoraArgs(adapters)]);
});
afterAll(async () => {
  await engine?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('two tiny adapters loaded at scale 0, selected per request', () => {
  it('GET /lora-adapters lists both, in scan order, at global scale 0', async () => {
    expect(adapters.map((a) => a.name)).toEqual([A, B]);
    expect(await loraList(engine)).toMatchObject([
      { id: 0, path: adapters[0]!.file, scale: 0 },
      { id: 1, path: adapters[1]!.file, scale: 0 },
    ]);
  });

  it('at temperature 0 base, adapter a and adapter b answer deterministically and differently', async () => {
    const seen: Record<string, string[]> = { base: [], a: [], b: [] };
    // interleaved, so each request follows one made with another adapter on the same slots
    for (let round = 0; round < 2; round++) {
      seen.base!.push(await chat(engine, withAdapter(undefined)));
      seen.a!.push(await chat(engine, withAdapter(A)));
      seen.b!.push(await chat(engine, withAdapter(B)));
    }
    for (const k of ['base', 'a', 'b']) {
      expect(seen[k]![0]!.length, k).toBeGreaterThan(0);
      expect(seen[k]![1], k).toBe(seen[k]![0]);
    }
    expect(new Set([seen.base![0], seen.a![0], seen.b![0]]).size).toBe(3);
    // the adapters keep the base model's wiring: printable replies that end on their own
    for (const k of ['base', 'a', 'b']) expect(seen[k]![0]).toMatch(/^[ a-z]+$/);
  });

  it('the base vector (all zeros) answers like an engine started without adapters', async () => {
    const plain = await startLlamaServer(base());
    try {
      expect(await chat(engine, withAdapter(undefined))).toBe(await chat(plain, {}));
    } finally {
      await plain.stop();
    }
  });

  it('the engine cannot load a new adapter file while running: POST /lora-adapters only sets scales of loaded ids', async () => {
    const c = await writeTinyLora(dir, 'portico-tiny-lora-c', 2);
    const r = await fetch(`${engine.url}/lora-adapters`, { method: 'POST', body: JSON.stringify([{ path: c.gguf, scale: 1 }, { id: 2, scale: 1 }]) });
    expect(await r.json()).toEqual({ success: true }); // accepted, and ignored
    expect((await loraList(engine)).map((l) => l.id)).toEqual([0, 1]);
    // a request naming id 2 gets the base model: unknown ids are dropped silently
    expect(await chat(engine, { lora: [{ id: 2, scale: 1 }] })).toBe(await chat(engine, withAdapter(undefined)));
    // restarting with the rescanned folder is what loads it (ids follow the sorted folder names)
    const rescanned = (await scanLlamaCppLoras(dir)).adapters;
    expect(rescanned.map((a) => a.name)).toEqual([A, B, 'portico-tiny-lora-c']);
    const restarted = await startLlamaServer([...base(1), ...llamaCppLoraArgs(rescanned)]);
    try {
      const outs = new Set<string>();
      for (const name of [undefined, A, B, 'portico-tiny-lora-c']) outs.add(await chat(restarted, { lora: llamaCppLoraField(rescanned, name) }));
      expect(outs.size).toBe(4);
    } finally {
      await restarted.stop();
      await rm(c.dir, { recursive: true, force: true });
    }
  });
});

describe('llama-server de3ff81 behaviours that launcher/lora-llamacpp.ts works around', () => {
  it('a request without `lora` reuses a slot KV cache computed under an adapter (so the field is always sent)', async () => {
    const one = await startLlamaServer([...base(1), ...llamaCppLoraArgs(adapters)]); // one slot: reuse is certain
    try {
      const clean = await chat(one, withAdapter(undefined));
      await chat(one, withAdapter(B));
      const omitted = await chat(one, {});
      expect(omitted).not.toBe(clean); // contaminated by adapter b's cached prompt
      await chat(one, withAdapter(B));
      expect(await chat(one, withAdapter(undefined))).toBe(clean); // the full vector clears it
    } finally {
      await one.stop();
    }
  });

  it('--lora-init-without-apply leaves the global scale at 1: requests without `lora` run every adapter', async () => {
    const e = await startLlamaServer([...base(1), '--lora', adapters.map((a) => a.file).join(','), '--lora-init-without-apply']);
    try {
      expect((await loraList(e)).map((l) => l.scale)).toEqual([1, 1]);
      const omitted = await chat(e, {});
      expect(omitted).toBe(await chat(e, { lora: [{ id: 0, scale: 1 }, { id: 1, scale: 1 }] }));
      expect(omitted).not.toBe(await chat(e, withAdapter(undefined)));
    } finally {
      await e.stop();
    }
  });

  it('an unreadable adapter file stops the engine at start (hence folders are checked before)', async () => {
    const bad = join(dir, 'bad.gguf');
    await writeFile(bad, 'not a gguf');
    const e = await startLlamaServer([...base(1), '--lora-scaled', `${bad}:0`], { waitReady: false });
    const r = await e.proc;
    expect(r.exitCode).not.toBe(0);
    expect(e.output()).toMatch(/failed to load lora adapter/);
  });

  it('an adapter shaped for another model stops the engine too; the scan with the base model skips it first', async () => {
    const other = join(dir, 'other-shapes');
    await mkdir(join(other, 'wrong'), { recursive: true });
    const t = (name: string, dims: number[]) => ({ name, dims, data: new Float32Array(dims[0]! * dims[1]!) });
    const file = join(other, 'wrong', 'adapter_model.gguf');
    await writeFile(file, writeGGUF({
      kv: [['general.architecture', str('llama')], ['general.type', str('adapter')], ['adapter.type', str('lora')], ['adapter.lora.alpha', f32(8)]],
      tensors: [t('output.weight.lora_a', [48, 4]), t('output.weight.lora_b', [4, 108])],
    }));
    const scan = await scanLlamaCppLoras(other, inject('tinyModel'));
    expect(scan.adapters).toEqual([]);
    expect(scan.skipped[0]!.reason).toMatch(/output\.weight: shapes a 48x4, b 4x108 do not fit the base tensor 64x108/);
    const e = await startLlamaServer([...base(1), '--lora-scaled', `${file}:0`], { waitReady: false });
    expect((await e.proc).exitCode).not.toBe(0);
    expect(e.output()).toMatch(/has incorrect shape/);
    await rm(other, { recursive: true, force: true });
  });
});
