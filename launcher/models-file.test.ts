import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../core/config.js';
import { loadModelsFile, parseModelsFile } from './models-file.js';

const FILE = '/etc/portico/models.yaml';
const fail = (text: string) => {
  try {
    parseModelsFile(text, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg.split('\n')).toHaveLength(1); // one line
    return msg;
  }
  throw new Error('expected the models file to be rejected');
};

describe('parseModelsFile', () => {
  it('reads the three kinds of model, with per-model overrides; relative paths follow the file', () => {
    const models = parseModelsFile(
      `
- name: meta/llama-3.1-70b-instruct
  manifest: manifests/llama-3.1-70b-instruct.yaml
  profile: vllm-bf16-tp4-pp1-latency
  gpus: 4
  max_model_len: 32768
  passthrough_args: --max-num-seqs 64 --enable-prefix-caching
  peft_source: ./loras
- name: portico/tiny-embed
  model_path: models/tiny-embed.gguf
  task: embedding
  gpus: [6, 7]
  passthrough_args: ['--pooling', 'mean', 8]
- name: meta/llama-3.1-8b-instruct
  model_path: meta-llama/Llama-3.1-8B-Instruct
- name: remote
  engine_url: http://127.0.0.1:9000/
`,
      FILE,
    );
    expect(models).toEqual([
      {
        name: 'meta/llama-3.1-70b-instruct',
        source: { kind: 'manifest', manifest: '/etc/portico/manifests/llama-3.1-70b-instruct.yaml', profile: 'vllm-bf16-tp4-pp1-latency' },
        task: 'chat',
        maxModelLen: 32768,
        tensorParallelSize: undefined,
        pipelineParallelSize: undefined,
        passthroughArgs: ['--max-num-seqs', '64', '--enable-prefix-caching'],
        peftSource: '/etc/portico/loras',
        gpus: { count: 4 },
        mmprojPath: undefined,
      },
      expect.objectContaining({ name: 'portico/tiny-embed', source: { kind: 'model_path', modelPath: '/etc/portico/models/tiny-embed.gguf' }, task: 'embedding', gpus: { indices: [6, 7] }, passthroughArgs: ['--pooling', 'mean', '8'] }),
      expect.objectContaining({ source: { kind: 'model_path', modelPath: 'meta-llama/Llama-3.1-8B-Instruct' }, gpus: undefined, passthroughArgs: [] }),
      expect.objectContaining({ name: 'remote', source: { kind: 'engine_url', engineUrl: 'http://127.0.0.1:9000' } }),
    ]);
  });

  it.each([
    ['- name: a\n  model_path: /m.gguf\n  max_model_len: -5\n', 'model "a" (#1): max_model_len: expected a whole number ≥ 1'],
    ['- name: a\n  model_path: /m.gguf\n- name: b\n  model_path: /m.gguf\n  maxmodellen: 5\n', 'model "b" (#2): maxmodellen: unknown field'],
    ['- name: a\n  model_path: /m.gguf\n  manifest: x.yaml\n', 'model "a" (#1): manifest: give one of model_path, manifest or engine_url, not model_path and manifest'],
    ['- name: a\n  gpus: 2\n', 'model "a" (#1): model_path: give one of model_path, manifest or engine_url'],
    ['- model_path: /m.gguf\n', 'model (#1): name: required'],
    ['- name: a\n  model_path: /m.gguf\n  profile: x\n', 'model "a" (#1): profile: only with manifest'],
    ['- name: a\n  engine_url: ftp://x\n', 'model "a" (#1): engine_url: expected an http(s) URL'],
    ['- name: a\n  engine_url: http://127.0.0.1:1\n  gpus: 2\n', 'model "a" (#1): gpus: not used with engine_url (nothing is spawned)'],
    ['- name: a\n  model_path: /m.gguf\n  gpus: [1, 1]\n', 'model "a" (#1): gpus: lists a GPU twice'],
    ['- name: a\n  model_path: /m.gguf\n  gpus: [0, x]\n', 'model "a" (#1): gpus[1]: expected a whole number ≥ 0'],
    ['- name: a\n  model_path: /m.gguf\n  task: rerank\n', 'model "a" (#1): task: Invalid option: expected one of "chat"|"embedding"'],
    ['- name: a\n  model_path: /m.gguf\n  passthrough_args: "--x 1 && rm -rf /"\n', 'model "a" (#1): passthrough_args: shell operators and comments are not allowed (arguments go to the engine, not to a shell)'],
    ['- name: a\n  model_path: /m.gguf\n- name: a\n  model_path: /n.gguf\n', 'model "a" (#2): name: already used by model #1'],
    ['- name: a\n  model_path: /m.gguf\n  max_model_len: 1\n  max_model_len: 2\n', 'line 4: Map keys must be unique'],
    ['name: a\nmodel_path: /m.gguf\n', 'expected a YAML list of models (- name: ...)'],
    ['[]\n', 'lists no model'],
    ['- name: a\n  model_path: [unclosed\n', 'line 3: Flow sequence in block collection must be sufficiently indented'],
  ])('rejects %j with one line naming the file, model and field', (text, want) => {
    const msg = fail(text);
    expect(msg.startsWith(`NIM_MODELS_FILE=${FILE}: `)).toBe(true);
    expect(msg).toContain(want);
  });
});

describe('loadModelsFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'models-file-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  it('reads a file from disk and names it when it cannot', async () => {
    const f = join(dir, 'models.yaml');
    await writeFile(f, '- name: x\n  model_path: ./x.gguf\n');
    expect((await loadModelsFile(f))[0]!.source).toEqual({ kind: 'model_path', modelPath: join(dir, 'x.gguf') });
    await expect(loadModelsFile(join(dir, 'missing.yaml'))).rejects.toThrow(`NIM_MODELS_FILE=${join(dir, 'missing.yaml')}: cannot read: ENOENT`);
  });
});
