// TensorRT-LLM's OpenAI server (`trtllm-serve`), PyTorch backend: it loads a Hugging Face
// checkpoint directly (quantization comes from the checkpoint, e.g. an FP8 / NVFP4 ModelOpt
// export), so no engine build step is needed. Pure: inputs → argv. Health: GET /health.
import type { EngineCommand, GpuEngineInput } from './types.js';

export type TrtllmInput = GpuEngineInput;

export function trtllmCommand(i: TrtllmInput): EngineCommand {
  const args = [
    i.model,
    '--host', '127.0.0.1',
    '--port', String(i.port),
    '--served_model_name', i.servedName,
    '--backend', 'pytorch',
    '--tp_size', String(i.tp),
    '--pp_size', String(i.pp),
    ...(i.maxModelLen ? ['--max_seq_len', String(i.maxModelLen)] : []),
    ...(i.profileArgs ?? []),
    ...(i.passthrough ?? []),
  ];
  return {
    kind: 'tensorrt_llm',
    command: i.command ?? 'trtllm-serve',
    args,
    env: { DO_NOT_TRACK: '1', ...(i.env ?? {}) },
    host: '127.0.0.1',
    port: i.port,
    healthPath: '/health',
    dialect: 'openai',
  };
}
