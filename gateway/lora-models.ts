// LoRA adapters as models: the names the gateway accepts besides the base model, what
// /v1/models lists for them, and how a request naming one reaches the engine.
//
// - vLLM routes by `model` itself (an adapter is a model there): nothing changes.
// - llama-server selects adapters per request with `lora: [{id, scale}]`, ids being positions in
//   the list it was started with. Every request gets the whole vector: the chosen adapter at 1,
//   the others at 0, all 0 for the base model. A request without it reuses a slot's KV cache
//   computed under another adapter (proven in tests/lora-engine.test.ts). Its answers name its
//   alias (the base model) as `model`; they are renamed to the adapter, as vLLM answers.
// - trtllm-serve takes `lora_request: {lora_name, lora_int_id, lora_path}` per request; the
//   gateway builds it from the folder, and a client's own `lora_request` (any path on this
//   machine) is never forwarded.
import type { ModelRegistry, ServedEntry } from './models.js';

export interface LoraModel {
  /** The model name requests use (the adapter's folder name). */
  id: string;
  /** The adapter's folder: /v1/models `root`. */
  root: string;
}

export interface LoraRequestPlan {
  /** The body was changed (send it re-serialized, not the client's bytes). */
  changed: boolean;
  /** The engine answers under the base model's name: rename `model` in its answer. */
  rename?: { from: string; to: string } | undefined;
}

/**
 * The adapters of one base model. Bound to the registry, each is a model entry whose parent is
 * the base: same engine connection, admission slots and readiness, its own name (so routing,
 * per-key `models=`, 404 and the model_name metrics treat it as any model).
 */
export class LoraModels {
  private list: readonly LoraModel[] = [];
  private byId = new Map<string, number>();
  private registry: ModelRegistry | undefined;
  private base: ServedEntry | undefined;
  // TensorRT-LLM caches adapters by lora_int_id: one id per (name, folder), never reused.
  private readonly trtllmIds = new Map<string, number>();
  private nextTrtllmId = 1;

  /** Attach to the registry: the adapters become models whose parent is `base`. */
  bind(registry: ModelRegistry, base: ServedEntry): void {
    this.registry = registry;
    this.base = base;
    this.sync();
  }

  get bound(): boolean {
    return this.base !== undefined;
  }

  /** The request for `entry` is this table's business: its base model or one of its adapters. */
  owns(entry: ServedEntry): boolean {
    const base = this.base;
    return base !== undefined && (entry === base || (entry.parent === base.id && this.byId.has(entry.id)));
  }

  /**
   * The adapters served now, in the engine's order (llama.cpp ids are positions in it). Returns
   * the names not served as models because another model already has that name.
   */
  set(adapters: readonly LoraModel[]): string[] {
    this.list = [...adapters];
    this.byId = new Map(this.list.map((a, i) => [a.id, i]));
    return this.sync();
  }

  all(): readonly LoraModel[] {
    return this.list;
  }

  private sync(): string[] {
    const { registry, base } = this;
    if (!registry || !base) return [];
    const want = new Map(this.list.map((a) => [a.id, a]));
    for (const e of registry.list()) {
      if (e.parent === base.id && want.get(e.id)?.root !== e.served.root) registry.remove(e.id);
    }
    const taken: string[] = [];
    for (const a of this.list) {
      const e = registry.find(a.id);
      if (e?.parent === base.id) continue;
      if (e) taken.push(a.id);
      else registry.add({ ...base, served: { ...base.served, id: a.id, root: a.root }, aliases: [], parent: base.id });
    }
    return taken;
  }

  /**
   * Adapt a validated body for `entry` (this table's base model or one of its adapters: owns()) to
   * the engine's dialect. Mutates `body`.
   */
  prepare(body: Record<string, unknown>, entry: ServedEntry): LoraRequestPlan {
    const stripped = stripClientLora(body, entry.engine.dialect);
    const base = this.base;
    if (!base || !this.owns(entry)) return { changed: stripped };
    const selected = entry === base ? undefined : entry.id;
    switch (base.engine.dialect) {
      case 'llamacpp': {
        if (!this.list.length) return { changed: stripped };
        body.lora = this.list.map((a, id) => ({ id, scale: a.id === selected ? 1 : 0 }));
        return { changed: true, ...(selected ? { rename: { from: base.id, to: selected } } : {}) };
      }
      case 'trtllm': {
        if (selected === undefined) return { changed: stripped };
        const a = this.list[this.byId.get(selected)!]!;
        body.lora_request = { lora_name: a.id, lora_int_id: this.trtllmId(a), lora_path: a.root, lora_ckpt_source: 'hf' };
        return { changed: true };
      }
      case 'openai':
        return { changed: stripped };
    }
  }

  private trtllmId(a: LoraModel): number {
    const key = `${a.id}\n${a.root}`;
    let id = this.trtllmIds.get(key);
    if (id === undefined) this.trtllmIds.set(key, (id = this.nextTrtllmId++));
    return id;
  }
}

/**
 * A client's own `lora_request` names any path on this machine (trtllm-serve loads it): never
 * forwarded, whichever model the request is for. Returns whether the body changed.
 */
export function stripClientLora(body: Record<string, unknown>, dialect: string): boolean {
  if (dialect !== 'trtllm' || !('lora_request' in body)) return false;
  delete body.lora_request;
  return true;
}

/**
 * `"model":"<from>"` → `"model":"<to>"` in an engine answer (a JSON body, or SSE data lines). The
 * pattern, with its unescaped quotes, can only be a key/value pair: inside a JSON string the
 * quotes would be escaped. Compact JSON (llama-server's nlohmann dump) has no spaces around `:`.
 */
export function modelRenamer(from: string, to: string): (text: string) => string {
  const pattern = `"model":${JSON.stringify(from)}`;
  const replacement = `"model":${JSON.stringify(to)}`;
  return (text) => text.split(pattern).join(replacement);
}

export function renameModelJson(buf: Uint8Array<ArrayBuffer>, from: string, to: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(modelRenamer(from, to)(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('utf8'))));
}

/** The same SSE stream with the model renamed; rewrites whole lines only (chunks may split anywhere). */
export function renameModelSse(stream: ReadableStream<Uint8Array>, from: string, to: string): ReadableStream<Uint8Array> {
  const rename = modelRenamer(from, to);
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let pending = '';
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctrl) {
        const text = pending + decoder.decode(chunk, { stream: true });
        const cut = text.lastIndexOf('\n') + 1;
        pending = text.slice(cut);
        if (cut > 0) ctrl.enqueue(encoder.encode(rename(text.slice(0, cut))));
      },
      flush(ctrl) {
        const rest = pending + decoder.decode();
        if (rest) ctrl.enqueue(encoder.encode(rename(rest)));
      },
    }),
  );
}
