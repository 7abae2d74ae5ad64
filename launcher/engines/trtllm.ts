// TensorRT-LLM's OpenAI server (`trtllm-serve`), PyTorch backend, as of TensorRT-LLM 1.3.0rc3
// (the version the trtllm profiles target; README "Tools, reasoning and structured output"). It
// loads a Hugging Face checkpoint directly (quantization comes from the checkpoint, e.g. an FP8 /
// NVFP4 ModelOpt export), so no engine build step is needed. Pure: inputs → argv + the --config
// YAML. Health: GET /health. Every flag is checked against 1.3.0rc3's click options by
// tests/engine-argv.test.ts.
//
// What 1.3.0rc3 lacks, and how portico copes: no --served_model_name (added after rc3: the gateway
// answers /v1/models itself and the engine does not check the request's `model`); no LoRA flag
// (LoRA is `lora_config` in the --config YAML); Prometheus text on /prometheus/metrics only with
// `return_perf_metrics: true` in that YAML; no /tokenize, /detokenize or render routes (the
// gateway's trtllm dialect answers 501).
import { stringify as toYaml } from 'yaml';
import type { EngineCommand, GpuEngineInput } from '../../core/engine.js';

/** trtllm-serve 1.3.0rc3's click.Choice values (ToolParserFactory / ReasoningParserFactory). */
export const TRTLLM_TOOL_PARSERS = ['qwen3', 'qwen3_coder', 'kimi_k2', 'deepseek_v3', 'deepseek_v31', 'deepseek_v32'] as const;
export const TRTLLM_REASONING_PARSERS = ['deepseek-r1', 'qwen3', 'nano-v3'] as const;

export interface TrtllmInput extends GpuEngineInput {
  /** Where the --config YAML goes (the launcher writes `files` before the spawn). */
  configPath: string;
  /** Serve LoRA adapters (the profile has feat_lora): lora_config in the YAML. */
  lora?: boolean | undefined;
  loraModules?: { name: string; path: string }[] | undefined;
  /** NIM_MAX_GPU_LORAS / NIM_MAX_CPU_LORAS / NIM_MAX_LORA_RANK (LoraConfig's max_loras, max_cpu_loras, max_lora_rank). */
  loraLimits?: { maxLoras?: number | undefined; maxCpuLoras?: number | undefined; maxLoraRank?: number | undefined } | undefined;
}

/** The LLM-args YAML merged over trtllm-serve's flags (serve.py update_llm_args_with_extra_dict). */
export function trtllmConfig(i: Pick<TrtllmInput, 'lora' | 'loraModules' | 'loraLimits'>): Record<string, unknown> {
  const limits = i.loraLimits ?? {};
  return {
    // Without it /prometheus/metrics is a 404 and the gateway has no engine series.
    return_perf_metrics: true,
    ...(i.lora
      ? {
          lora_config: {
            lora_dir: (i.loraModules ?? []).map((m) => m.path),
            lora_ckpt_source: 'hf',
            // Adapters are named per request (lora_request, by the gateway): these bound its caches.
            max_lora_rank: limits.maxLoraRank ?? 64,
            max_loras: limits.maxLoras ?? Math.max(1, i.loraModules?.length ?? 0),
            max_cpu_loras: limits.maxCpuLoras ?? Math.max(1, i.loraModules?.length ?? 0),
          },
        }
      : {}),
  };
}

export function trtllmCommand(i: TrtllmInput): EngineCommand {
  const chat = i.chat ?? {};
  const args = [
    i.model,
    '--host', '127.0.0.1',
    '--port', String(i.port),
    '--backend', 'pytorch',
    '--tp_size', String(i.tp),
    '--pp_size', String(i.pp),
    ...(i.maxModelLen ? ['--max_seq_len', String(i.maxModelLen)] : []),
    '--config', i.configPath,
    ...(chat.toolCallParser ? ['--tool_parser', chat.toolCallParser] : []),
    ...(chat.reasoningParser ? ['--reasoning_parser', chat.reasoningParser] : []),
    ...(chat.chatTemplate ? ['--chat_template', chat.chatTemplate] : []),
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
    dialect: 'trtllm',
    files: [{ path: i.configPath, content: toYaml(trtllmConfig(i)) }],
  };
}
