import { describe, expect, it } from 'vitest';
import { llamaCppCommand } from './engines/llamacpp.js';
import { trtllmCommand } from './engines/trtllm.js';
import { vllmCommand, vllmPrecisionArgs } from './engines/vllm.js';

describe('vllm adapter', () => {
  it('builds `vllm serve` for a text model', () => {
    const c = vllmCommand({ model: 'meta-llama/Llama-3.1-8B-Instruct', servedName: 'meta/llama-3.1-8b-instruct', port: 9001, tp: 2, pp: 1, maxModelLen: 131072, precision: 'bf16' });
    expect(c).toEqual({
      kind: 'vllm',
      command: 'vllm',
      args: [
        'serve', 'meta-llama/Llama-3.1-8B-Instruct',
        '--host', '127.0.0.1',
        '--port', '9001',
        '--served-model-name', 'meta/llama-3.1-8b-instruct',
        '--tensor-parallel-size', '2',
        '--pipeline-parallel-size', '1',
        '--max-model-len', '131072',
        '--dtype', 'bfloat16',
        '--allowed-media-domains', 'portico.invalid',
      ],
      env: { VLLM_NO_USAGE_STATS: '1', DO_NOT_TRACK: '1' },
      host: '127.0.0.1',
      port: 9001,
      healthPath: '/health',
      dialect: 'openai',
    });
  });

  it('adds LoRA, the per-prompt media limits, no media fetching, profile args, then passthrough args last', () => {
    const c = vllmCommand({
      command: '/opt/venv/bin/vllm',
      model: '/models/qwen',
      servedName: 'qwen',
      port: 1,
      tp: 1,
      pp: 2,
      precision: 'fp8',
      lora: true,
      loraModules: [{ name: 'sql', path: '/loras/sql' }],
      mmLimits: { image: 4, video: 1 },
      profileArgs: ['--max-num-seqs', '16'],
      passthrough: ['--max-num-seqs', '8', '--enforce-eager'],
      env: { CUDA_VISIBLE_DEVICES: '3' },
    });
    expect(c.command).toBe('/opt/venv/bin/vllm');
    expect(c.args).toEqual([
      'serve', '/models/qwen',
      '--host', '127.0.0.1', '--port', '1',
      '--served-model-name', 'qwen',
      '--tensor-parallel-size', '1', '--pipeline-parallel-size', '2',
      '--quantization', 'fp8',
      '--enable-lora', '--lora-modules', '{"name":"sql","path":"/loras/sql"}',
      '--limit-mm-per-prompt', '{"image":4,"video":1}',
      '--allowed-media-domains', 'portico.invalid',
      '--max-num-seqs', '16',
      '--max-num-seqs', '8', '--enforce-eager',
    ]);
    expect(c.env.CUDA_VISIBLE_DEVICES).toBe('3');
  });

  it('maps each precision', () => {
    expect(vllmPrecisionArgs('fp16')).toEqual(['--dtype', 'float16']);
    expect(vllmPrecisionArgs('f32')).toEqual(['--dtype', 'float32']);
    expect(vllmPrecisionArgs('nvfp4')).toEqual(['--quantization', 'modelopt_fp4']);
    expect(vllmPrecisionArgs('mxfp4')).toEqual(['--quantization', 'mxfp4']);
    expect(vllmPrecisionArgs('int4')).toEqual([]);
  });
});

describe('trtllm adapter', () => {
  it('builds `trtllm-serve` with the PyTorch backend, metrics and LoRA in the --config YAML', () => {
    const c = trtllmCommand({ configPath: '/cache/trtllm/abc.yaml', model: 'nvidia/Llama-3.1-8B-Instruct-FP8', servedName: 'meta/llama-3.1-8b-instruct', port: 9002, tp: 2, pp: 1, maxModelLen: 8192, passthrough: ['--max_batch_size', '64'] });
    expect(c).toEqual({
      kind: 'tensorrt_llm',
      command: 'trtllm-serve',
      args: [
        'nvidia/Llama-3.1-8B-Instruct-FP8',
        '--host', '127.0.0.1',
        '--port', '9002',
        '--backend', 'pytorch',
        '--tp_size', '2',
        '--pp_size', '1',
        '--max_seq_len', '8192',
        '--config', '/cache/trtllm/abc.yaml',
        '--max_batch_size', '64',
      ],
      env: { DO_NOT_TRACK: '1' },
      host: '127.0.0.1',
      port: 9002,
      healthPath: '/health',
      dialect: 'trtllm',
      files: [{ path: '/cache/trtllm/abc.yaml', content: 'return_perf_metrics: true\n' }],
    });
    const lora = trtllmCommand({ configPath: '/c.yaml', model: 'm', servedName: 'm', port: 1, tp: 1, pp: 1, lora: true, loraModules: [{ name: 'sql', path: '/loras/sql' }] });
    expect(lora.files?.[0]?.content).toBe('return_perf_metrics: true\nlora_config:\n  lora_dir:\n    - /loras/sql\n  lora_ckpt_source: hf\n  max_lora_rank: 64\n  max_loras: 1\n  max_cpu_loras: 1\n');
  });
});

describe('llama.cpp adapter (issue A, unchanged)', () => {
  it('health and dialect', () => {
    const c = llamaCppCommand({ binary: '/x/llama-server', model: '/m.gguf', servedName: 'm', port: 5, contextLength: 2048 });
    expect([c.healthPath, c.dialect, c.kind]).toEqual(['/health', 'llamacpp', 'llamacpp']);
  });
});
