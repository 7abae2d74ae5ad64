// vLLM's OpenAI server (`vllm serve`, v0.11.0: the Dockerfile's image). Pure: inputs → argv.
// Health: GET /health answers 200 once the model is loaded (the HTTP server only starts listening
// after that). Every flag here is checked against v0.11.0's parser by tests/engine-argv.test.ts.
import type { EngineCommand, GpuEngineInput } from '../../core/engine.js';
import type { Precision } from '../manifest.js';
import { VLLM_RUNTIME_LORA_ENV, vllmLoraArgs, type VllmLoraLimits } from '../lora-vllm.js';

export interface VllmInput extends GpuEngineInput {
  precision: Precision;
  /** Serve LoRA adapters (the profile has feat_lora). */
  lora?: boolean | undefined;
  /** Adapters found under NIM_PEFT_SOURCE: `--lora-modules` items. */
  loraModules?: { name: string; path: string }[] | undefined;
  /** NIM_MAX_GPU_LORAS / NIM_MAX_CPU_LORAS / NIM_MAX_LORA_RANK. */
  loraLimits?: VllmLoraLimits | undefined;
  /** NIM_PEFT_REFRESH_INTERVAL is set: register the runtime load/unload endpoints. */
  loraRuntime?: boolean | undefined;
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
 * The flags a precision needs. bf16/fp16/f32 set the dtype. fp8 / nvfp4 / mxfp4 name vLLM's
 * quantization for a 16-bit checkpoint (fp8 quantizes it on load). A checkpoint that carries its
 * own quantization_config (`checkpointQuantized`: a profile's pre-quantized source, or a local
 * config.json that says so) gets no flag: vLLM checks the flag against the checkpoint
 * (ModelConfig._verify_quantization) and refuses a mismatch such as `fp8` on a compressed-tensors
 * FP8 checkpoint, so "a no-op on FP8 checkpoints" does not hold. int4 (AWQ / GPTQ) is always read
 * from the checkpoint.
 */
export function vllmPrecisionArgs(precision: Precision, checkpointQuantized = false): string[] {
  switch (precision) {
    case 'bf16':
      return ['--dtype', 'bfloat16'];
    case 'fp16':
      return ['--dtype', 'float16'];
    case 'f32':
      return ['--dtype', 'float32'];
    case 'fp8':
      return checkpointQuantized ? [] : ['--quantization', 'fp8'];
    case 'nvfp4':
      return checkpointQuantized ? [] : ['--quantization', 'modelopt_fp4'];
    case 'mxfp4':
      return checkpointQuantized ? [] : ['--quantization', 'mxfp4'];
    case 'int4':
    case 'gguf':
      return [];
  }
}

export function vllmCommand(i: VllmInput & { checkpointQuantized?: boolean | undefined }): EngineCommand {
  const chat = i.chat ?? {};
  const args = [
    'serve',
    i.model,
    '--host', '127.0.0.1',
    '--port', String(i.port),
    '--served-model-name', i.servedName,
    '--tensor-parallel-size', String(i.tp),
    '--pipeline-parallel-size', String(i.pp),
    ...(i.maxModelLen ? ['--max-model-len', String(i.maxModelLen)] : []),
    ...vllmPrecisionArgs(i.precision, i.checkpointQuantized),
    ...(i.lora ? vllmLoraArgs(i.loraLimits ?? {}, i.loraModules) : []),
    ...(i.mmLimits && Object.keys(i.mmLimits).length ? ['--limit-mm-per-prompt', JSON.stringify(i.mmLimits)] : []),
    ...VLLM_NO_MEDIA_FETCH,
    // Tool calls: "auto" needs the parser; "required" and named functions use structured outputs.
    ...(chat.toolCallParser ? ['--enable-auto-tool-choice', '--tool-call-parser', chat.toolCallParser] : []),
    ...(chat.reasoningParser ? ['--reasoning-parser', chat.reasoningParser] : []),
    ...(chat.chatTemplate ? ['--chat-template', chat.chatTemplate] : []),
    ...(i.profileArgs ?? []),
    ...(i.passthrough ?? []),
  ];
  return {
    kind: 'vllm',
    command: i.command ?? 'vllm',
    args,
    // No usage reporting from a self-hosted server.
    env: { VLLM_NO_USAGE_STATS: '1', DO_NOT_TRACK: '1', ...(i.lora && i.loraRuntime ? VLLM_RUNTIME_LORA_ENV : {}), ...(i.env ?? {}) },
    host: '127.0.0.1',
    port: i.port,
    healthPath: '/health',
    dialect: 'openai',
  };
}
