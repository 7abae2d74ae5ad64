import { gguf } from '@huggingface/gguf';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTinyEmbedFile, ensureTinyEmbed, TINY_EMBED_DIM, TINY_EMBED_NAME, tinyEmbedServerArgs } from './tiny-embed.js';
import { TINY_VOCAB } from './tiny-model.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tiny-embed-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('tiny embedding model', () => {
  it('is deterministic and rewritten when damaged', async () => {
    const paths = await ensureTinyEmbed(dir);
    expect(paths).toMatchObject({ name: 'portico/tiny-embed', dim: 48, pooling: 'mean' });
    const bytes = await readFile(paths.model);
    expect(bytes.equals(buildTinyEmbedFile())).toBe(true);
    await writeFile(paths.model, 'truncated');
    await ensureTinyEmbed(dir);
    expect((await readFile(paths.model)).equals(bytes)).toBe(true);
  });

  it('is a llama GGUF with mean pooling, the VLM vocabulary and no output head', async () => {
    const { model } = await ensureTinyEmbed(dir);
    const p = await gguf(model, { allowLocalFile: true });
    const m = p.metadata as Record<string, unknown>;
    expect(m['general.architecture']).toBe('llama');
    expect(m['llama.embedding_length']).toBe(TINY_EMBED_DIM);
    expect(m['llama.pooling_type']).toBe(1); // LLAMA_POOLING_TYPE_MEAN
    expect(m['tokenizer.ggml.tokens']).toEqual(TINY_VOCAB);
    const names = p.tensorInfos.map((t) => t.name);
    expect(names).toContain('token_embd.weight');
    expect(names).not.toContain('output.weight');
    expect(p.tensorInfos.find((t) => t.name === 'token_embd.weight')!.shape.map(Number)).toEqual([48, TINY_VOCAB.length]);
  });

  it('is served with --embeddings and an explicit pooling type under its model name', () => {
    const args = tinyEmbedServerArgs('/m.gguf');
    expect(args).toEqual(expect.arrayContaining(['--embeddings', '--no-webui', '-kvu']));
    expect(tinyEmbedServerArgs('/m.gguf', { unifiedKv: false })).not.toContain('-kvu');
    expect(args[args.indexOf('--pooling') + 1]).toBe('mean');
    expect(args[args.indexOf('--alias') + 1]).toBe(TINY_EMBED_NAME);
    expect(args[args.indexOf('-m') + 1]).toBe('/m.gguf');
  });
});
