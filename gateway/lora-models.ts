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
import type { EngineDialect } from '../core/engine.js';

export interface LoraModel {
  /** The model name requests use (the adapter's folder name). */
  id: string;
  /** The adapter's folder: /v1/models `root`. */
  root: string;
}

export interface LoraRequestPlan {
  /** The body was changed (send it re-serialized, not the client's bytes). */
  changed: boolean;
  /** The engine answers under the base model's name: rename `model` in its answer to this. */
  renameTo?: string | undefined;
}

export class LoraModels {
  private list: readonly LoraModel[] = [];
  private byId = new Map<string, number>();
  // TensorRT-LLM caches adapters by lora_int_id: one id per (name, folder), never reused.
  private readonly trtllmIds = new Map<string, number>();
  private nextTrtllmId = 1;

  /** The adapters served now, in the engine's order (llama.cpp ids are positions in it). */
  set(adapters: readonly LoraModel[]): void {
    this.list = [...adapters];
    this.byId = new Map(this.list.map((a, i) => [a.id, i]));
  }

  all(): readonly LoraModel[] {
    return this.list;
  }

  has(id: unknown): boolean {
    return typeof id === 'string' && this.byId.has(id);
  }

  /**
   * Adapt a validated body whose `model` is the base model or one of the adapters (the caller has
   * refused any other name) to the engine's dialect. Mutates `body`.
   */
  prepare(body: Record<string, unknown>, dialect: EngineDialect): LoraRequestPlan {
    const selected = typeof body.model === 'string' && this.byId.has(body.model) ? body.model : undefined;
    switch (dialect) {
      case 'llamacpp': {
        if (!this.list.length) return { changed: false };
        body.lora = this.list.map((a, id) => ({ id, scale: a.id === selected ? 1 : 0 }));
        return { changed: true, renameTo: selected };
      }
      case 'trtllm': {
        const had = 'lora_request' in body;
        delete body.lora_request;
        if (selected === undefined) return { changed: had };
        const a = this.list[this.byId.get(selected)!]!;
        body.lora_request = { lora_name: a.id, lora_int_id: this.trtllmId(a), lora_path: a.root, lora_ckpt_source: 'hf' };
        return { changed: true };
      }
      case 'openai':
        return { changed: false };
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
