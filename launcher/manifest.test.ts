import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ManifestError,
  genericVllmManifest,
  ggufManifest,
  inspectHfDir,
  loadManifest,
  loadShippedManifests,
  makeProfile,
  manifestsDir,
  matchManifest,
  modelIdFromRepo,
  nimTags,
  parseManifest,
  profileId,
  profileName,
  repoRoot,
  type ProfileTags,
} from './manifest.js';

const FILE = 'manifests/bad.yaml';
const MODEL = `version: 1
model:
  id: acme/model
  source: hf://acme/model
  max_model_len: 4096
  license: { name: MIT, text: ok }
  parameters: 1B
`;
const withProfiles = (...lines: string[]) => `${MODEL}profiles:\n${lines.map((l) => `  - ${l}`).join('\n')}\n`;
const fails = (text: string) => {
  try {
    parseManifest(text, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(ManifestError);
    return (err as Error).message;
  }
  throw new Error('expected the manifest to be rejected');
};

describe('shipped manifests', () => {
  const shipped = loadShippedManifests();

  it('all load, with the models the issue asks for', () => {
    expect(shipped.map((m) => m.model.id).sort()).toEqual([
      'meta/llama-3.1-70b-instruct',
      'meta/llama-3.1-8b-instruct',
      'meta/llama-3.2-11b-vision-instruct',
      'nvidia/llama-3.2-nv-embedqa-1b-v2',
      'portico/tiny-embed',
      'portico/tiny-vlm',
      'qwen/qwen2.5-vl-7b-instruct',
    ]);
    for (const m of shipped) {
      expect(m.format).toBe('portico');
      expect(m.model.license?.name).toBeTruthy();
      expect(m.model.parameters).toBeGreaterThan(0);
      expect(m.model.kvBytesPerToken).toBeGreaterThan(0);
    }
  });

  it('every profile has a unique 64-hex id and a readable name in the documented form', () => {
    const NAME = /^(tensorrt_llm|vllm|llamacpp)-([a-z0-9_]+|generic)-(bf16|fp16|fp8|nvfp4|mxfp4|int4|f32|gguf)-tp\d+-pp\d+-(latency|throughput)(-lora)?$/;
    for (const m of shipped) {
      const ids = m.profiles.map((p) => p.id);
      expect(new Set(ids).size).toBe(ids.length);
      for (const p of m.profiles) {
        expect(p.id).toMatch(/^[0-9a-f]{64}$/);
        expect(p.name).toMatch(NAME);
        expect(p.id).toBe(profileId(p.tags));
      }
    }
  });

  it('the demo manifest is one llama.cpp profile over a generated model', () => {
    const demo = shipped.find((m) => m.model.id === 'portico/tiny-vlm')!;
    expect(demo.model.source).toBe('portico://tiny-vlm');
    expect(demo.model.mmproj).toBe('portico://tiny-vlm-mmproj');
    expect(demo.model.maxModelLen).toBe(2048);
    expect(demo.model.vision).toEqual({ maxImagesPerPrompt: 1 });
    expect(demo.profiles.map((p) => p.name)).toEqual(['llamacpp-generic-gguf-tp1-pp1-latency']);
    expect(nimTags(demo.profiles[0]!.tags)).toEqual({ feat_lora: 'false', llm_engine: 'llamacpp', number_of_gpus: '0', pp: '1', precision: 'gguf', profile: 'latency', tp: '1' });
  });

  it('the manifests folder is found from the source tree and from dist/', () => {
    const root = repoRoot();
    expect(manifestsDir()).toBe(join(root, 'manifests'));
    expect(repoRoot(join(root, 'dist', 'launcher', 'manifest.js'))).toBe(root);
  });
});

describe('ids and names', () => {
  const tags: ProfileTags = { llm_engine: 'tensorrt_llm', precision: 'fp8', tp: 2, pp: 1, profile: 'latency', gpu: 'H100', gpu_device: '2330:10de', number_of_gpus: 2, feat_lora: false };

  it('NIM-style tags, the readable name, and a stable id', () => {
    expect(nimTags(tags)).toEqual({ feat_lora: 'false', gpu: 'H100', gpu_device: '2330:10de', llm_engine: 'tensorrt_llm', number_of_gpus: '2', pp: '1', precision: 'fp8', profile: 'latency', tp: '2' });
    expect(profileName(tags)).toBe('tensorrt_llm-h100-fp8-tp2-pp1-latency');
    expect(profileName({ ...tags, gpu: undefined, gpu_device: undefined, llm_engine: 'vllm', feat_lora: true })).toBe('vllm-generic-fp8-tp2-pp1-latency-lora');
    // The id is a pure function of the canonical tags: pinned so it never drifts between releases.
    expect(profileId(tags)).toBe('2cc46d3177cf79aedd889ce6e4ed8f6f1c4dace86c0778df1453f57186b5cd87');
  });

  it('does not depend on key order or the case of gpu / gpu_device', () => {
    const reordered = { feat_lora: false, number_of_gpus: 2, gpu_device: '2330:10DE', gpu: 'h100', profile: 'latency', pp: 1, tp: 2, precision: 'fp8', llm_engine: 'tensorrt_llm' } as ProfileTags;
    expect(profileId(reordered)).toBe(profileId(tags));
    expect(profileId({ ...tags, tp: 1 })).not.toBe(profileId(tags));
  });

  it('manifest key order does not change ids', () => {
    const a = parseManifest(withProfiles('{ llm_engine: vllm, precision: fp8, tp: 2, profile: latency }'), FILE);
    const b = parseManifest(withProfiles('{ profile: latency, tp: "2", precision: fp8, llm_engine: vllm }'), FILE);
    expect(a.profiles[0]!.id).toBe(b.profiles[0]!.id);
    expect(a.profiles[0]!.tags.number_of_gpus).toBe(2);
  });
});

describe('validation errors name the file and the field', () => {
  it.each([
    ['{ llm_engine: vllm, precision: fp9, profile: latency }', 'profiles[0].precision: Invalid option: expected one of "nvfp4"|"mxfp4"|"int4"|"fp8"|"bf16"|"fp16"|"gguf"|"f32"'],
    ['{ llm_engine: sglang, precision: fp8, profile: latency }', 'profiles[0].llm_engine: Invalid option: expected one of "tensorrt_llm"|"vllm"|"llamacpp"'],
    ['{ llm_engine: vllm, precison: fp8, precision: fp8, profile: latency }', 'profiles[0].precison: unknown field'],
    ['{ llm_engine: vllm, precision: fp8, profile: latency, tp: two }', 'profiles[0].tp: expected a whole number ≥ 1'],
    ['{ llm_engine: vllm, precision: fp8, profile: latency, tp: 0 }', 'profiles[0].tp: expected a whole number ≥ 1'],
    ['{ llm_engine: vllm, precision: fp8, profile: fastest }', 'profiles[0].profile: Invalid option: expected one of "latency"|"throughput"'],
    ['{ llm_engine: vllm, precision: fp8, profile: latency, feat_lora: maybe }', 'profiles[0].feat_lora: expected true or false'],
    ['{ llm_engine: vllm, precision: fp8, profile: latency, gpu_device: "2330" }', 'profiles[0].gpu_device: expected a PCI id like 2330:10de'],
    ['{ llm_engine: vllm, precision: fp8, profile: latency, tp: 2, number_of_gpus: 1 }', 'profiles[0].number_of_gpus: must be at least tp × pp = 2'],
    ['{ llm_engine: vllm, precision: gguf, profile: latency }', "profiles[0].precision: gguf is llama.cpp's format; vllm needs another precision"],
    ['{ llm_engine: llamacpp, precision: gguf, profile: latency, gpu: H100 }', 'profiles[0].gpu: llamacpp profiles run on the CPU and name no GPU'],
    ['{ llm_engine: llamacpp, precision: bf16, profile: latency }', 'profiles[0].precision: llamacpp profiles use gguf or f32'],
  ])('%s', (profile, message) => {
    expect(fails(withProfiles(profile))).toBe(`${FILE}: ${message}`);
  });

  it('duplicate profiles', () => {
    expect(fails(withProfiles('{ llm_engine: vllm, precision: fp8, profile: latency }', '{ llm_engine: vllm, precision: fp8, profile: latency, args: [--x] }'))).toBe(
      `${FILE}: profiles[1]: same tags as profiles[0] (vllm-generic-fp8-tp1-pp1-latency); give one of them a different gpu, precision, tp, pp or profile`,
    );
  });

  it('model fields', () => {
    expect(fails(MODEL.replace('  source: hf://acme/model\n', '') + 'profiles: [{ llm_engine: vllm, precision: fp8, profile: latency }]')).toBe(`${FILE}: model.source: required`);
    expect(fails(MODEL.replace('parameters: 1B', 'parameters: lots') + 'profiles: [{ llm_engine: vllm, precision: fp8, profile: latency }]')).toBe(
      `${FILE}: model.parameters: expected a count like 8.03e9 or "8.03B"`,
    );
    expect(fails(MODEL.replace('{ name: MIT, text: ok }', '{ name: MIT }') + 'profiles: [{ llm_engine: vllm, precision: fp8, profile: latency }]')).toBe(
      `${FILE}: model.license: needs \`text\` or \`file\``,
    );
    expect(fails(MODEL.replace('{ name: MIT, text: ok }', '{ name: MIT, file: NOPE.txt }') + 'profiles: [{ llm_engine: vllm, precision: fp8, profile: latency }]')).toBe(
      `${FILE}: model.license.file: no such file NOPE.txt`,
    );
    expect(fails(`${MODEL}profiles: []\n`)).toBe(`${FILE}: profiles: a manifest needs at least one profile`);
    expect(fails(MODEL.replace('version: 1', 'version: 2') + 'profiles: [{ llm_engine: vllm, precision: fp8, profile: latency }]')).toBe(`${FILE}: version: Invalid input: expected 1`);
  });

  it('YAML syntax errors carry line and column', () => {
    expect(fails(withProfiles('{ llm_engine: vllm, precision: fp8, profile: latency'))).toMatch(/^manifests\/bad\.yaml:\d+:\d+: invalid YAML: Flow map in block collection/);
  });

  it('files that are neither kind of manifest', () => {
    expect(fails('hello: 1\n')).toBe(`${FILE}: neither a portico manifest (no \`version: 1\` and \`model:\`) nor a NIM model_manifest.yaml (no \`schema_version\`)`);
    expect(fails('- a\n')).toBe(`${FILE}: expected a YAML mapping at the top level`);
  });

  it('an unreadable file', () => {
    expect(() => loadManifest('/nonexistent/m.yaml')).toThrow('/nonexistent/m.yaml: cannot read manifest: ENOENT');
  });

  it('parses counts, license files and relative sources', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-manifest-'));
    try {
      writeFileSync(join(dir, 'LICENSE.txt'), 'license');
      writeFileSync(
        join(dir, 'm.yaml'),
        MODEL.replace('{ name: MIT, text: ok }', '{ name: MIT, file: LICENSE.txt }').replace('parameters: 1B', 'parameters: "8.03B"').replace('hf://acme/model', './weights') +
          'profiles: [{ llm_engine: vllm, precision: fp8, profile: latency, source: ../elsewhere, args: [--max-num-seqs, 16], env: { A: 1 } }]\n',
      );
      const m = loadManifest(join(dir, 'm.yaml'));
      expect(m.model.parameters).toBe(8.03e9);
      expect(m.model.license?.file).toBe(join(dir, 'LICENSE.txt'));
      expect(m.model.source).toBe(join(dir, 'weights'));
      expect(m.profiles[0]).toMatchObject({ source: join(dir, '..', 'elsewhere'), args: ['--max-num-seqs', '16'], env: { A: '1' } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('NIM model_manifest.yaml v2', () => {
  const H100_ID = '3bb4e8fe78e5037b05dd618cebb1053347325ad6a1e709e0eb18bb8558362ac5';
  const NIM = `schema_version: '2.0'
profile_selection_criteria:
  - precision
profiles:
- id: ${H100_ID}
  profile: default
  tags: {feat_lora: 'false', gpu: H100, gpu_device: 2330:10de, llm_engine: tensorrt_llm, number_of_gpus: '2', pp: '1', precision: fp8, profile: latency, tp: '2', nim_workspace_hash_v1: abc}
  workspace: !workspace
    components:
    - dst: ''
      src:
        files: [!name 'config.json']
        repo_id: ngc://nim/meta/llama-3.1-8b-instruct:0.11.1+14957bf8-h100x2-fp8-latency
- id: 193649a2eb95e821309d6023a2cabb31489d3b690a9973c7ab5d1ff58b0aa7eb
  tags: {feat_lora: 'false', llm_engine: vllm, pp: '1', precision: bf16, tp: '1'}
  workspace: !workspace
    components: []
- id: a111111111111111111111111111111111111111111111111111111111111111
  tags: {llm_engine: sglang, precision: bf16, tp: '1', pp: '1'}
- id: b222222222222222222222222222222222222222222222222222222222222222
  tags: {llm_engine: tensorrt_llm, precision: int8_wo, tp: '1', pp: '1', gpu: A10G}
- id: c333333333333333333333333333333333333333333333333333333333333333
  tags: {llm_engine: vllm, precision: bf16, tp: '1', pp: '1', feat_lora_max_rank: '32'}
`;

  it('imports profiles with their ids, tags and workspace model id', () => {
    const m = parseManifest(NIM, '/nim/model_manifest.yaml');
    expect(m.format).toBe('nim-v2');
    expect(m.model.id).toBe('meta/llama-3.1-8b-instruct');
    expect(m.model.source).toBe('ngc://nim/meta/llama-3.1-8b-instruct:0.11.1+14957bf8-h100x2-fp8-latency');
    expect(m.profiles.map((p) => p.name)).toEqual([
      'tensorrt_llm-h100-fp8-tp2-pp1-latency',
      'vllm-generic-bf16-tp1-pp1-latency-193649a2',
      'sglang-generic-bf16-tp1-pp1-latency',
      'tensorrt_llm-a10g-int8_wo-tp1-pp1-latency',
      'vllm-generic-bf16-tp1-pp1-latency-c3333333',
    ]);
    const h100 = m.profiles[0]!;
    expect(h100.id).toBe(H100_ID);
    expect(h100.tags).toEqual({ llm_engine: 'tensorrt_llm', precision: 'fp8', tp: 2, pp: 1, profile: 'latency', gpu: 'H100', gpu_device: '2330:10de', number_of_gpus: 2, feat_lora: false });
    expect(h100.extraTags).toEqual({ nim_workspace_hash_v1: 'abc' });
    expect(m.profiles[2]!.unsupported).toBe('engine sglang is not supported by portico');
    expect(m.profiles[3]!.unsupported).toBe('precision int8_wo is not supported by portico');
  });

  it('rejects other schema versions and bad tags, naming the field', () => {
    expect(() => parseManifest("schema_version: '1.0'\nprofiles: [{id: a, tags: {}}]\n", FILE)).toThrow(`${FILE}: schema_version: 1.0 is not supported (NIM model_manifest.yaml v2 is)`);
    expect(() => parseManifest("schema_version: '2.0'\nprofiles: [{id: a, tags: {tp: two}}]\n", FILE)).toThrow(`${FILE}: profiles[0].tags.tp: expected a whole number, got "two"`);
    expect(() => parseManifest("schema_version: '2.0'\nprofiles: [{tags: {}}]\n", FILE)).toThrow(`${FILE}: profiles[0].id: required`);
  });

  it('derives model ids from workspace repos', () => {
    expect(modelIdFromRepo('ngc://nim/meta/llama-3.1-8b-instruct:0.11')).toBe('meta/llama-3.1-8b-instruct');
    expect(modelIdFromRepo('hf://Qwen/Qwen2.5-VL-7B-Instruct@main')).toBe('Qwen/Qwen2.5-VL-7B-Instruct');
  });
});

describe('which manifest a NIM_MODEL_PATH means', () => {
  const shipped = loadShippedManifests();
  it.each([
    ['meta/llama-3.1-8b-instruct', 'meta/llama-3.1-8b-instruct'],
    ['hf://meta-llama/Llama-3.1-8B-Instruct', 'meta/llama-3.1-8b-instruct'],
    ['meta-llama/Llama-3.1-8B-Instruct', 'meta/llama-3.1-8b-instruct'],
    ['llama-3.1-8b-instruct', 'meta/llama-3.1-8b-instruct'],
    ['/models/Llama-3.1-8B-Instruct/', 'meta/llama-3.1-8b-instruct'],
    ['nvidia/Llama-3.1-8B-Instruct-FP8', 'meta/llama-3.1-8b-instruct'],
    ['Qwen/Qwen2.5-VL-7B-Instruct', 'qwen/qwen2.5-vl-7b-instruct'],
    ['./Llama-3.2-11B-Vision-Instruct', 'meta/llama-3.2-11b-vision-instruct'],
    ['portico-tiny-vlm', 'portico/tiny-vlm'],
  ])('%s → %s', (path, id) => {
    expect(matchManifest(path, shipped)?.model.id).toBe(id);
  });
  it('no match', () => {
    expect(matchManifest('/models/mistral-7b', shipped)).toBeUndefined();
    expect(matchManifest('someone/Llama-3.1-8B-Instruct-finetune', shipped)).toBeUndefined();
  });
});

describe('synthesized manifests', () => {
  it('a GGUF file: one llama.cpp profile', () => {
    const m = ggufManifest('/models/Phi-3-mini-Q4_K_M.gguf', { mmproj: '/models/mmproj-f16.gguf' });
    expect(m.model).toMatchObject({ id: 'Phi-3-mini-Q4_K_M', servedName: 'Phi-3-mini-Q4_K_M', source: '/models/Phi-3-mini-Q4_K_M.gguf', mmproj: '/models/mmproj-f16.gguf', maxModelLen: 2048 });
    expect(m.profiles.map((p) => p.name)).toEqual(['llamacpp-generic-gguf-tp1-pp1-latency']);
    expect(m.profiles[0]!.id).toBe(loadShippedManifests().find((x) => x.model.id === 'portico/tiny-vlm')!.profiles[0]!.id);
  });

  it('an unknown Hugging Face model: generic vLLM bf16 profiles', () => {
    const m = genericVllmManifest('mistralai/Mistral-7B-Instruct-v0.3', { parameters: 7.2e9 });
    expect(m.model.id).toBe('mistralai/Mistral-7B-Instruct-v0.3');
    expect(m.profiles.map((p) => p.name)).toEqual([
      'vllm-generic-bf16-tp1-pp1-latency',
      'vllm-generic-bf16-tp1-pp1-throughput',
      'vllm-generic-bf16-tp2-pp1-latency',
      'vllm-generic-bf16-tp4-pp1-latency',
      'vllm-generic-bf16-tp8-pp1-latency',
    ]);
  });

  it('reads config.json and safetensors sizes of a local model directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portico-hf-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ torch_dtype: 'bfloat16', num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, hidden_size: 4096, max_position_embeddings: 131072 }),
    );
    const facts = inspectHfDir(dir, undefined, () => [
      { name: 'model-00001-of-00002.safetensors', size: 10e9 },
      { name: 'model-00002-of-00002.safetensors', size: 6.06e9 },
      { name: 'tokenizer.json', size: 1e7 },
    ]);
    expect(facts).toEqual({ maxModelLen: 131072, kvBytesPerToken: 131072, parameters: 8.03e9, vision: false });
    expect(inspectHfDir(join(dir, 'sub'))).toEqual({});
  });

  it('makeProfile fills id and name from tags', () => {
    const p = makeProfile({ llm_engine: 'vllm', precision: 'bf16', tp: 1, pp: 1, profile: 'latency', number_of_gpus: 1, feat_lora: false });
    expect(p.name).toBe('vllm-generic-bf16-tp1-pp1-latency');
    expect(p.args).toEqual([]);
  });
});
