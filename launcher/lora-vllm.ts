// vLLM (v0.11.0) LoRA adapters while running: a small client for its runtime endpoints and the
// pure reconcile step a NIM_PEFT_REFRESH_INTERVAL loop needs. Facts from
// ../shared/data/engines/vllm-v0.11.0.json (lora_runtime, env, models_response):
//
// - The endpoints exist only when the engine starts with VLLM_ALLOW_RUNTIME_LORA_UPDATING = '1' or
//   'true' (read when the API server is imported) and --enable-lora.
// - POST /v1/load_lora_adapter   {"lora_name", "lora_path"}  → 200 text/plain "Success: ...";
//   400 for missing fields, an adapter already loaded, or a failed add_lora; 404 "No adapter found".
// - POST /v1/unload_lora_adapter {"lora_name"} ("lora_int_id" optional) → 200 text/plain; 404 when
//   not loaded, 400 without lora_name.
// - GET /v1/models lists the base model card(s) first (parent null), then one card per adapter:
//   id = lora_name, root = its path, parent = the base model's name.
// - A request selects an adapter by sending its lora_name as `model`; an unknown one → 404.
// --max-loras (adapters in one batch, default 1), --max-cpu-loras (adapters cached on the CPU)
// and --max-lora-rank (default 16) are what NIM_MAX_GPU_LORAS / NIM_MAX_CPU_LORAS / the maximum
// rank map to; beyond --max-cpu-loras vLLM evicts least recently used adapters itself.
import { request } from 'undici';

/** The engine environment that registers the load/unload endpoints. */
export const VLLM_RUNTIME_LORA_ENV = { VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True' } as const;
export const VLLM_LOAD_LORA_PATH = '/v1/load_lora_adapter';
export const VLLM_UNLOAD_LORA_PATH = '/v1/unload_lora_adapter';

/**
 * One `--lora-modules` item in its JSON form: the `name=path` form splits on `=` and treats any
 * `,` as JSON, so a path holding either would break it (cli_args.py LoRAParserAction).
 */
export function vllmLoraModule(m: { name: string; path: string }): string {
  return JSON.stringify({ name: m.name, path: m.path });
}

export interface VllmLoraLimits {
  maxLoras?: number | undefined;
  maxCpuLoras?: number | undefined;
  maxLoraRank?: number | undefined;
}

/** The ranks vLLM v0.11.0 accepts for --max-lora-rank (LoRAConfig.__post_init__, config/lora.py:104-109). */
export const VLLM_LORA_RANKS = [8, 16, 32, 64, 128, 256, 320, 512] as const;

/** NIM_MAX_LORA_RANK as vLLM takes it: the smallest rank it accepts that is not smaller (at most 512). */
export function vllmMaxLoraRank(rank: number): number {
  return VLLM_LORA_RANKS.find((r) => r >= rank) ?? VLLM_LORA_RANKS[VLLM_LORA_RANKS.length - 1]!;
}

/** vLLM arguments for LoRA serving: the limits plus static adapters known at start. */
export function vllmLoraArgs(limits: VllmLoraLimits, modules: readonly { name: string; path: string }[] = []): string[] {
  return [
    '--enable-lora',
    ...(limits.maxLoras !== undefined ? ['--max-loras', String(limits.maxLoras)] : []),
    ...(limits.maxCpuLoras !== undefined ? ['--max-cpu-loras', String(limits.maxCpuLoras)] : []),
    ...(limits.maxLoraRank !== undefined ? ['--max-lora-rank', String(vllmMaxLoraRank(limits.maxLoraRank))] : []),
    ...(modules.length ? ['--lora-modules', ...modules.map(vllmLoraModule)] : []),
  ];
}

export type LoraCallResult = { ok: true; message: string } | { ok: false; status: number; message: string };

export interface LoadedAdapter {
  name: string;
  path: string;
  parent: string;
}

export class VllmLoraClient {
  constructor(
    private readonly baseUrl: string,
    private readonly opts: { timeoutMs?: number; headers?: Record<string, string> } = {},
  ) {}

  private async call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; text: string }> {
    const timeout = this.opts.timeoutMs ?? 30_000;
    const res = await request(`${this.baseUrl}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...this.opts.headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
    return { status: res.statusCode, text: await res.body.text() };
  }

  private static result(r: { status: number; text: string }): LoraCallResult {
    if (r.status === 200) return { ok: true, message: r.text };
    return { ok: false, status: r.status, message: errorMessage(r.text) };
  }

  /** Load an adapter folder under `name` (the model name requests will use). */
  async load(name: string, path: string): Promise<LoraCallResult> {
    return VllmLoraClient.result(await this.call('POST', VLLM_LOAD_LORA_PATH, { lora_name: name, lora_path: path }));
  }

  async unload(name: string): Promise<LoraCallResult> {
    return VllmLoraClient.result(await this.call('POST', VLLM_UNLOAD_LORA_PATH, { lora_name: name }));
  }

  /** Adapters the engine serves now: the /v1/models cards that have a parent. */
  async list(): Promise<LoadedAdapter[]> {
    const r = await this.call('GET', '/v1/models');
    if (r.status !== 200) throw new Error(`GET /v1/models: ${r.status} ${errorMessage(r.text)}`);
    const body = JSON.parse(r.text) as { data?: { id: string; root?: string | null; parent?: string | null }[] };
    return (body.data ?? []).filter((m) => typeof m.parent === 'string' && m.parent).map((m) => ({ name: m.id, path: m.root ?? '', parent: m.parent! }));
  }
}

/** vLLM's error body (either `{"error":{"message"}}` or `{"message"}`), else the text itself. */
function errorMessage(text: string): string {
  try {
    const j = JSON.parse(text) as { error?: { message?: unknown }; message?: unknown };
    const m = j.error?.message ?? j.message;
    if (typeof m === 'string') return m;
  } catch {
    /* plain text */
  }
  return text.slice(0, 500);
}

export interface LoraChanges {
  load: { name: string; path: string }[];
  unload: string[];
}

/**
 * What to change so the engine serves exactly `wanted` (a rescan of NIM_PEFT_SOURCE): unload the
 * adapters no longer there or whose folder moved, load the new ones. Unloads come first so that a
 * reload under the same name never meets "already loaded".
 */
export function reconcileLoras(wanted: readonly { name: string; path: string }[], loaded: readonly LoadedAdapter[]): LoraChanges {
  const want = new Map(wanted.map((w) => [w.name, w.path]));
  const have = new Map(loaded.map((l) => [l.name, l.path]));
  const unload = [...have].filter(([name, path]) => want.get(name) !== path).map(([name]) => name);
  const load = [...want].filter(([name, path]) => have.get(name) !== path).map(([name, path]) => ({ name, path }));
  return { load, unload };
}

/** Apply the changes in order; a failed call is reported and the rest still run. */
export async function applyLoraChanges(client: VllmLoraClient, changes: LoraChanges): Promise<{ name: string; action: 'load' | 'unload'; result: LoraCallResult }[]> {
  const out: { name: string; action: 'load' | 'unload'; result: LoraCallResult }[] = [];
  for (const name of changes.unload) out.push({ name, action: 'unload', result: await client.unload(name) });
  for (const { name, path } of changes.load) out.push({ name, action: 'load', result: await client.load(name, path) });
  return out;
}
