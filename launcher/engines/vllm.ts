// vLLM's OpenAI server (`vllm serve`). Pure: inputs → argv. Health: GET /health answers 200 once
// the model is loaded (the HTTP server only starts listening after that).
import type { EngineCommand, GpuEngineInput } from './types.js';
import type { Precision } from '../manifest.js';

export interface VllmInput extends GpuEngineInput {
  precision: Precision;
  /** Serve LoRA adapters (the profile has feat_lora). */
  lora?: boolean | undefined;
  /** Adapters found under NIM_PEFT_SOURCE: `--lora-modules name=path`. */
  loraModules?: { name: string; path: string }[] | undefined;
  /** Multimodal model: the most items of each kind one prompt may carry (--limit-mm-per-prompt). */
  mmLimits?: { image?: number; video?: number; audio?: number } | undefined;
}

/**
 * vLLM must never fetch a URL itself (CVE-2025-6242; its fetch checks no addresses): the gateway
 * sends data: URIs only. Defence in depth: media URLs are allowed only from a domain that cannot
 * resolve (RFC 6761 `.invalid`), and local files stay off (`--allowed-local-media-path` unset).
 */
export const VLLM_NO_MEDIA_FETCH = ['--allowed-media-domains', 'portico.invalid'];

/**
 * The flags a precision needs. bf16/fp16/f32 set the dtype; fp8 quantizes a 16-bit checkpoint on
 * load (and is a no-op for a checkpoint that is already FP8); nvfp4 / mxfp4 name their kernels;
 * int4 (AWQ / GPTQ) is read from the checkpoint's own quantization_config.
 */
export function vllmPrecisionArgs(precision: Precision): string[] {
  switch (precision) {
    case 'bf16':
      return ['--dtype', 'bfloat16'];
    case 'fp16':
      return ['--dtype', 'float16'];
    case 'f32':
      return ['--dtype', 'float32'];
    case 'fp8':
      return ['--quantization', 'fp8'];
    case 'nvfp4':
      return ['--quantization', 'modelopt_fp4'];
    case 'mxfp4':
      return ['--quantization', 'mxfp4'];
    case 'int4':
    case 'gguf':
      return [];
  }
}

export function vllmCommand(i: VllmInput): EngineCommand {
  const args = [
    'serve',
    i.model,
    '--host', '127.0.0.1',
    '--port', String(i.port),
    '--served-model-name', i.servedName,
    '--tensor-parallel-size', String(i.tp),
    '--pipeline-parallel-size', String(i.pp),
    ...(i.maxModelLen ? ['--max-model-len', String(i.maxModelLen)] : []),
    ...vllmPrecisionArgs(i.precision),
    ...(i.lora ? ['--enable-lora'] : []),
    ...(i.lora && i.loraModules?.length ? ['--lora-modules', ...i.loraModules.map((m) => `${m.name}=${m.path}`)] : []),
    ...(i.mmLimits && Object.keys(i.mmLimits).length ? ['--limit-mm-per-prompt', JSON.stringify(i.mmLimits)] : []),
    ...VLLM_NO_MEDIA_FETCH,
    ...(i.profileArgs ?? []),
    ...(i.passthrough ?? []),
  ];
  return {
    kind: 'vllm',
    command: i.command ?? 'vllm',
    args,
    // No usage reporting from a self-hosted server.
    env: { VLLM_NO_USAGE_STATS: '1', DO_NOT_TRACK: '1', ...(i.env ?? {}) },
    host: '127.0.0.1',
    port: i.port,
    healthPath: '/health',
    dialect: 'openai',
  };
}
