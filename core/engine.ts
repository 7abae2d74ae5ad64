// What every engine adapter produces: a pure description of the child process to spawn and how
// to tell when it is ready. The supervisor does the I/O.

export type EngineKind = 'vllm' | 'tensorrt_llm' | 'llamacpp';

/** What a served model answers: chat (chat, completions, Responses, Messages) or embeddings. */
export type ModelTask = 'chat' | 'embedding';

/**
 * Which HTTP dialect the gateway speaks to the engine: llama-server differs from vLLM, and
 * trtllm-serve (1.3.0rc3) has no /tokenize, /detokenize or render routes.
 */
export type EngineDialect = 'openai' | 'llamacpp' | 'trtllm';

export interface EngineCommand {
  kind: EngineKind;
  command: string;
  args: string[];
  /** Extra environment for the child (merged over the launcher's own). */
  env: Record<string, string>;
  host: string;
  port: number;
  /** Path polled for readiness: 200 means ready. */
  healthPath: string;
  dialect: EngineDialect;
  /** Files the engine reads (e.g. trtllm-serve's --config YAML): written before the spawn. */
  files?: { path: string; content: string }[] | undefined;
}

/** What the gateway tells clients about the served model (/v1/models, NIM metadata). */
export interface ServedModel {
  /** Client-facing model id (NIM_SERVED_MODEL_NAME or derived). */
  id: string;
  /** Where the weights come from (path or URI): /v1/models `root`. */
  root: string;
  maxModelLen: number;
  /** Media the model takes (manifest); absent: unknown, or asked of the engine (llama-server /props). */
  modalities?: { image: boolean; video: boolean; audio: boolean } | undefined;
  /** Downscale images above this many pixels (NIM_MEDIA_RESIZE_MAX_PIXELS, else the manifest's); absent: the media policy's. */
  resizeMaxPixels?: number | undefined;
}

/** Chat features an engine is started with: the model's declarations or NIM_* overrides. */
export interface ChatFeatures {
  /** The engine's tool-call parser name (vLLM --tool-call-parser, trtllm-serve --tool_parser). */
  toolCallParser?: string | undefined;
  /** The engine's reasoning parser name (vLLM --reasoning-parser, trtllm-serve --reasoning_parser). */
  reasoningParser?: string | undefined;
  /** A Jinja chat template file to use instead of the checkpoint's. */
  chatTemplate?: string | undefined;
}

/** What every GPU engine adapter (vLLM, TensorRT-LLM) takes. */
export interface GpuEngineInput {
  /** Executable (default: the engine's CLI, found on PATH by the supervisor). */
  command?: string | undefined;
  /** HF repo id or local checkpoint path. */
  model: string;
  servedName: string;
  port: number;
  tp: number;
  pp: number;
  maxModelLen?: number | undefined;
  chat?: ChatFeatures | undefined;
  /** The profile's engine-specific arguments. */
  profileArgs?: string[] | undefined;
  /** NIM_PASSTHROUGH_ARGS, already split; appended last so they win. */
  passthrough?: string[] | undefined;
  env?: Record<string, string> | undefined;
}
