// Settings are parsed once, here, from the environment. Every other module receives the parsed
// `Settings` object; nothing else reads process.env. NIM names are used wherever NIM has one.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { StartupError, type StartupCode } from './startup-errors.js';

const bool = z
  .enum(['0', '1', 'true', 'false', 'TRUE', 'FALSE', 'True', 'False', 'yes', 'no', ''])
  .transform((v) => ['1', 'true', 'yes'].includes(v.toLowerCase()));
const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(/^\s*\d+\s*$/, `expected a whole number from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
const list = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);
const logLevel = z
  .string()
  .transform((v) => v.toUpperCase())
  .pipe(z.enum(['TRACE', 'DEBUG', 'INFO', 'WARNING', 'WARN', 'ERROR', 'CRITICAL']));

/** Each entry: env var → schema. Defaults are applied to absent (or empty) variables. */
const ENV = {
  NIM_SERVER_PORT: int(1, 65535).default(8000),
  NIM_SERVER_HOST: z.string().min(1).default('0.0.0.0'),
  NIM_MODEL_PATH: z.string().optional(),
  NIM_MODEL_NAME: z.string().optional(),
  NIM_SERVED_MODEL_NAME: z.string().optional(),
  NIM_MODEL_PROFILE: z.string().optional(),
  NIM_MANIFEST_PATH: z.string().optional(),
  NIM_MANIFEST_ALLOW_UNSAFE: bool.default(false),
  // Several models behind one gateway (launcher/models-file.ts).
  NIM_MODELS_FILE: z.string().min(1).optional(),
  NIM_MODELS_RESTART: bool.default(false),
  NIM_PROFILE_PREFERENCE: z.enum(['latency', 'throughput']).default('latency'),
  NIM_MAX_MODEL_LEN: int(1).optional(),
  NIM_TENSOR_PARALLEL_SIZE: int(1, 1024).optional(),
  NIM_PIPELINE_PARALLEL_SIZE: int(1, 1024).optional(),
  NIM_PASSTHROUGH_ARGS: z.string().optional(),
  NIM_PEFT_SOURCE: z.string().optional(),
  // LoRA (NIM's names; defaults are NIM's): rescan period, and the limits vLLM takes as
  // --max-loras / --max-cpu-loras / --max-lora-rank (launcher/peft-scan.ts applies them on the others).
  NIM_PEFT_REFRESH_INTERVAL: int(1, 86_400).optional(),
  NIM_MAX_GPU_LORAS: int(1, 1024).default(8),
  NIM_MAX_CPU_LORAS: int(1, 4096).default(16),
  NIM_MAX_LORA_RANK: int(1, 1024).default(32),
  // Override the model's declarations (engine parser names; a Jinja template file).
  NIM_TOOL_CALL_PARSER: z.string().regex(/^[\w.-]+$/, 'expected a parser name like llama3_json or hermes').optional(),
  NIM_REASONING_PARSER: z.string().regex(/^[\w.-]+$/, 'expected a parser name like deepseek_r1').optional(),
  NIM_CHAT_TEMPLATE: z.string().min(1).optional(),
  NIM_CACHE_PATH: z.string().min(1).optional(),
  NIM_ENGINE_URL: z.url({ protocol: /^https?$/ }).optional(),
  NIM_ENGINE_START_TIMEOUT: int(1).default(3600),
  NIM_ENGINE_THREADS: int(1, 1024).optional(),
  NIM_LLAMA_SERVER_PATH: z.string().optional(),
  NIM_SHUTDOWN_TIMEOUT: int(0, 3600).default(30),
  NIM_LOG_LEVEL: logLevel.default('INFO'),
  NIM_JSONL_LOGGING: bool.default(false),
  NIM_API_KEYS: list.default([]),
  NIM_API_KEYS_FILE: z.string().optional(),
  NIM_METRICS_PUBLIC: bool.default(false),
  NIM_DOCS_PUBLIC: bool.default(false),
  NIM_MAX_CONCURRENT_REQUESTS: int(0).default(256),
  NIM_MAX_QUEUE: int(0).default(0),
  NIM_QUEUE_TIMEOUT_MS: int(1).default(30000),
  NIM_MAX_REQUEST_BYTES: int(1).default(32 * 1024 * 1024),
  NIM_REQUEST_TIMEOUT_MS: int(0).default(300_000),
  NIM_MEDIA_ALLOWED_DOMAINS: list.default([]),
  NIM_MEDIA_ALLOW_PRIVATE_NETWORKS: bool.default(false),
  NIM_MEDIA_MAX_BYTES: int(1).default(20 * 1024 * 1024),
  NIM_MEDIA_FETCH_TIMEOUT_MS: int(1).default(10000),
  NIM_MEDIA_MAX_PIXELS: int(1).default(40_000_000),
  // NIM's names for the per-prompt counts (→ vLLM --limit-mm-per-prompt); NIM_MEDIA_MAX_IMAGES is the older alias.
  NIM_MAX_IMAGES_PER_PROMPT: int(0).optional(),
  NIM_MEDIA_MAX_IMAGES: int(0).optional(),
  NIM_MAX_VIDEOS_PER_PROMPT: int(0).default(1),
  NIM_MAX_AUDIOS_PER_PROMPT: int(0).default(1),
  NIM_MEDIA_MAX_REDIRECTS: int(0, 20).default(3),
  NIM_MEDIA_CACHE_MB: int(0).default(256),
  NIM_MEDIA_MAX_VIDEO_BYTES: int(1).default(64 * 1024 * 1024),
  NIM_MEDIA_MAX_VIDEO_SECONDS: int(1).default(300),
  NIM_MEDIA_MAX_VIDEO_FRAMES: int(1).default(18_000),
  NIM_VIDEO_FRAMES: int(1, 256).default(8),
  NIM_MEDIA_RESIZE_MAX_PIXELS: int(1).optional(),
  NIM_MEDIA_MAX_AUDIO_BYTES: int(1).default(25 * 1024 * 1024),
  NIM_MEDIA_MAX_AUDIO_SECONDS: int(1).default(300),
  NIM_CORS_ALLOW_ORIGINS: list.default([]),
  NIM_CORS_ALLOW_METHODS: list.default(['GET', 'POST', 'OPTIONS']),
  NIM_CORS_ALLOW_HEADERS: list.default(['*']),
  NIM_CORS_EXPOSE_HEADERS: list.default(['X-Request-Id', 'X-Portico-Overhead-Ms', 'Retry-After']),
  NIM_CORS_MAX_AGE: int(0).default(600),
  NIM_SSL_MODE: z
    .string()
    .transform((v) => v.toUpperCase())
    .pipe(z.enum(['DISABLED', 'TLS', 'MTLS']))
    .default('DISABLED'),
  NIM_SSL_KEY_PATH: z.string().optional(),
  NIM_SSL_CERTS_PATH: z.string().optional(),
  NIM_SSL_CA_CERTS_PATH: z.string().optional(),
  CUDA_VISIBLE_DEVICES: z.string().optional(),
  NVIDIA_VISIBLE_DEVICES: z.string().optional(),
  NIM_RATE_LIMIT_RPM: int(0).default(0),
  NIM_RATE_LIMIT_TPM: int(0).default(0),
  NIM_HEADERS_TIMEOUT_MS: int(1).default(30_000),
  NIM_STREAM_IDLE_TIMEOUT_MS: int(0).default(300_000),
  NIM_MAX_HEADER_BYTES: int(1024, 1024 * 1024).default(16_384),
  NIM_MAX_HEADERS: int(1, 10_000).default(100),
  // Multi-node (`portico serve --ray-head | --ray-worker`, launcher/ray.ts).
  NIM_NUM_COMPUTE_NODES: int(1, 4096).optional(),
  LWS_GROUP_SIZE: int(1, 4096).optional(),
  NIM_GPUS_PER_NODE: int(1, 1024).optional(),
  NIM_RAY_PORT: int(1, 65535).default(6379),
  NIM_CLUSTER_START_TIMEOUT: int(1, 86_400).default(600),
} as const;

const schema = z.object(ENV);
type Raw = z.infer<typeof schema>;

/** A setting that cannot work; start-up stops with one line naming it (core/startup-errors.ts). */
export class ConfigError extends StartupError {
  constructor(message: string, code: StartupCode = 'invalid_setting') {
    super(code, message);
    this.name = 'ConfigError';
  }
}

/** Every setting, typed by the schema: what settingsFrom() makes of a parsed environment. */
export type Settings = ReturnType<typeof settingsFrom>;

const LOG_LEVELS = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARNING: 'warn',
  WARN: 'warn',
  ERROR: 'error',
  CRITICAL: 'fatal',
} as const;

/** The env vars portico reads, with their schema; README's settings table lists the same names. */
export const SETTING_NAMES = Object.keys(ENV) as (keyof typeof ENV)[];

/**
 * Parse settings from an environment. Throws ConfigError with one line naming the first bad
 * variable, e.g. `NIM_SERVER_PORT="abc": expected a whole number from 1 to 65535`.
 */
export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  // Empty strings mean "unset", as in shell `VAR= portico`.
  const input: Record<string, string> = {};
  for (const key of SETTING_NAMES) {
    const v = env[key];
    if (v !== undefined && v.trim() !== '') input[key] = v;
  }
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0]);
    throw new ConfigError(`${name}=${JSON.stringify(input[name] ?? '')}: ${issue.message}`);
  }
  const settings: Settings = settingsFrom(parsed.data);
  if (settings.ssl.mode !== 'DISABLED' && (!settings.ssl.keyPath || !settings.ssl.certsPath)) {
    throw new ConfigError(`NIM_SSL_MODE=${settings.ssl.mode}: needs NIM_SSL_KEY_PATH and NIM_SSL_CERTS_PATH`);
  }
  // vLLM refuses max_cpu_loras < max_loras at start; say so here, naming the variables.
  if (settings.peft.maxCpuLoras < settings.peft.maxGpuLoras) {
    throw new ConfigError(`NIM_MAX_CPU_LORAS=${settings.peft.maxCpuLoras}: must be at least NIM_MAX_GPU_LORAS (${settings.peft.maxGpuLoras})`);
  }
  if (settings.ssl.mode === 'MTLS' && !settings.ssl.caCertsPath) {
    throw new ConfigError('NIM_SSL_MODE=MTLS: needs NIM_SSL_CA_CERTS_PATH');
  }
  return settings;
}

/** The schema's output (defaults applied) in the shape the code reads; `Settings` is its type. */
function settingsFrom(r: Raw) {
  return {
    port: r.NIM_SERVER_PORT,
    host: r.NIM_SERVER_HOST,
    /** Local path or URI of the model weights (NIM_MODEL_PATH, or NIM_MODEL_NAME as NIM accepts). */
    modelPath: r.NIM_MODEL_PATH ?? r.NIM_MODEL_NAME,
    servedModelName: r.NIM_SERVED_MODEL_NAME,
    modelProfile: r.NIM_MODEL_PROFILE,
    manifestPath: r.NIM_MANIFEST_PATH,
    manifestAllowUnsafe: r.NIM_MANIFEST_ALLOW_UNSAFE,
    /** NIM_MODELS_FILE: several models, one engine each; undefined: one model from the settings above. */
    modelsFile: r.NIM_MODELS_FILE,
    /** NIM_MODELS_RESTART: an engine that dies is restarted in place (with backoff) instead of ending the process. */
    modelsRestart: r.NIM_MODELS_RESTART,
    profilePreference: r.NIM_PROFILE_PREFERENCE,
    maxModelLen: r.NIM_MAX_MODEL_LEN,
    tensorParallelSize: r.NIM_TENSOR_PARALLEL_SIZE,
    pipelineParallelSize: r.NIM_PIPELINE_PARALLEL_SIZE,
    passthroughArgs: r.NIM_PASSTHROUGH_ARGS,
    peftSource: r.NIM_PEFT_SOURCE,
    /** LoRA adapters under peftSource: rescan period (undefined: only at start) and limits. */
    peft: { refreshIntervalS: r.NIM_PEFT_REFRESH_INTERVAL, maxGpuLoras: r.NIM_MAX_GPU_LORAS, maxCpuLoras: r.NIM_MAX_CPU_LORAS, maxLoraRank: r.NIM_MAX_LORA_RANK },
    /** NIM_TOOL_CALL_PARSER / NIM_REASONING_PARSER / NIM_CHAT_TEMPLATE: over the manifest's. */
    chat: { toolCallParser: r.NIM_TOOL_CALL_PARSER, reasoningParser: r.NIM_REASONING_PARSER, chatTemplate: r.NIM_CHAT_TEMPLATE },
    cachePath: r.NIM_CACHE_PATH ?? join(homedir(), '.cache', 'portico'),
    engineUrl: r.NIM_ENGINE_URL?.replace(/\/+$/, ''),
    engineStartTimeoutS: r.NIM_ENGINE_START_TIMEOUT,
    engineThreads: r.NIM_ENGINE_THREADS,
    /** A prebuilt llama-server (NIM_LLAMA_SERVER_PATH; the CPU image ships one): used as is, never built. */
    llamaServerPath: r.NIM_LLAMA_SERVER_PATH,
    shutdownTimeoutS: r.NIM_SHUTDOWN_TIMEOUT,
    logLevel: LOG_LEVELS[r.NIM_LOG_LEVEL],
    jsonlLogging: r.NIM_JSONL_LOGGING,
    apiKeys: r.NIM_API_KEYS,
    apiKeysFile: r.NIM_API_KEYS_FILE,
    metricsPublic: r.NIM_METRICS_PUBLIC,
    /** /docs and /playground need no key (they hold no data; every API call they make still does). */
    docsPublic: r.NIM_DOCS_PUBLIC,
    maxConcurrentRequests: r.NIM_MAX_CONCURRENT_REQUESTS,
    maxQueue: r.NIM_MAX_QUEUE,
    queueTimeoutMs: r.NIM_QUEUE_TIMEOUT_MS,
    maxRequestBytes: r.NIM_MAX_REQUEST_BYTES,
    /** Time allowed to receive a whole request, headers and body (0 = none). */
    requestTimeoutMs: r.NIM_REQUEST_TIMEOUT_MS,
    media: {
      allowedDomains: r.NIM_MEDIA_ALLOWED_DOMAINS,
      allowPrivateNetworks: r.NIM_MEDIA_ALLOW_PRIVATE_NETWORKS,
      maxBytes: r.NIM_MEDIA_MAX_BYTES,
      fetchTimeoutMs: r.NIM_MEDIA_FETCH_TIMEOUT_MS,
      maxPixels: r.NIM_MEDIA_MAX_PIXELS,
      maxImages: r.NIM_MAX_IMAGES_PER_PROMPT ?? r.NIM_MEDIA_MAX_IMAGES ?? 16,
      maxVideos: r.NIM_MAX_VIDEOS_PER_PROMPT,
      maxAudios: r.NIM_MAX_AUDIOS_PER_PROMPT,
      maxRedirects: r.NIM_MEDIA_MAX_REDIRECTS,
      cacheBytes: r.NIM_MEDIA_CACHE_MB * 1024 * 1024,
      /** Video caps; duration and frames are read from the container before anything decodes. */
      maxVideoBytes: r.NIM_MEDIA_MAX_VIDEO_BYTES,
      maxVideoSeconds: r.NIM_MEDIA_MAX_VIDEO_SECONDS,
      maxVideoFrames: r.NIM_MEDIA_MAX_VIDEO_FRAMES,
      /** Frames sampled from a video for an engine that takes images but not video. */
      videoFrames: r.NIM_VIDEO_FRAMES,
      /** Images (and sampled frames) above this many pixels are shrunk, aspect kept; undefined: never. */
      resizeMaxPixels: r.NIM_MEDIA_RESIZE_MAX_PIXELS,
      maxAudioBytes: r.NIM_MEDIA_MAX_AUDIO_BYTES,
      maxAudioSeconds: r.NIM_MEDIA_MAX_AUDIO_SECONDS,
    },
    cors: {
      allowOrigins: r.NIM_CORS_ALLOW_ORIGINS,
      allowMethods: r.NIM_CORS_ALLOW_METHODS,
      allowHeaders: r.NIM_CORS_ALLOW_HEADERS,
      exposeHeaders: r.NIM_CORS_EXPOSE_HEADERS,
      maxAge: r.NIM_CORS_MAX_AGE,
    },
    ssl: {
      mode: r.NIM_SSL_MODE,
      keyPath: r.NIM_SSL_KEY_PATH,
      certsPath: r.NIM_SSL_CERTS_PATH,
      caCertsPath: r.NIM_SSL_CA_CERTS_PATH,
    },
    /** CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES as set (their rules differ: launcher/gpus.ts filterVisible). */
    visibleDevices: { cuda: r.CUDA_VISIBLE_DEVICES, nvidia: r.NVIDIA_VISIBLE_DEVICES },
    /** Per-key defaults (keys file lines may override); 0 = unlimited. */
    rateLimitRpm: r.NIM_RATE_LIMIT_RPM,
    rateLimitTpm: r.NIM_RATE_LIMIT_TPM,
    /** Time allowed to receive a request's headers. */
    headersTimeoutMs: r.NIM_HEADERS_TIMEOUT_MS,
    /** An SSE stream with no byte delivered for this long is ended (0 = never). */
    streamIdleTimeoutMs: r.NIM_STREAM_IDLE_TIMEOUT_MS,
    maxHeaderBytes: r.NIM_MAX_HEADER_BYTES,
    maxHeaders: r.NIM_MAX_HEADERS,
    /** Multi-node serving over Ray (launcher/ray.ts). */
    ray: {
      /** Nodes in the group, leader included: NIM_NUM_COMPUTE_NODES, else LWS_GROUP_SIZE (set by LeaderWorkerSet), else 1. */
      nodes: r.NIM_NUM_COMPUTE_NODES ?? r.LWS_GROUP_SIZE ?? 1,
      /** GPUs each node gives Ray (NIM_GPUS_PER_NODE); undefined: count this node's GPUs. */
      gpusPerNode: r.NIM_GPUS_PER_NODE,
      /** The head's GCS port (NIM_RAY_PORT, default 6379, Ray's own default). */
      port: r.NIM_RAY_PORT,
      /** Seconds to wait for every node to join (NIM_CLUSTER_START_TIMEOUT, default 600). */
      startTimeoutS: r.NIM_CLUSTER_START_TIMEOUT,
    },
  };
}

let defaults: Settings | undefined;
/** Every setting at its default (the schema's): what a part not given a value falls back to. */
export function settingDefaults(): Settings {
  return (defaults ??= loadSettings({}));
}
