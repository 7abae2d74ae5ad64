// The served models: what `model` in a request names, and where it goes. Each entry carries its
// own engine connection (upstream Pool), admission slots, readiness and dialect, so requests for
// one model never queue behind another's. One process serving one model is a registry of one.
//
// Entries may be added and removed while serving (LoRA adapters are models whose `parent` is the
// base model: they share the parent's upstream, admission and readiness objects and differ in id).
import type { EngineDialect, ModelTask, ServedModel } from '../core/engine.js';
import { PorticoError } from '../core/errors.js';
import type { Admission } from './admission.js';
import { createDialect, type Dialect } from './dialect.js';
import type { MediaTarget } from './media/normalize.js';
import type { Upstream } from './upstream.js';

export interface Readiness {
  isReady(): boolean;
  /** Why not ready (shown in the 503 message). */
  reason(): string;
}

/**
 * What a model serves. `chat`: chat/completions, completions, Responses, Messages, render.
 * `embedding`: /v1/embeddings. Absent: unknown, every route is forwarded (a single model from the
 * NIM_* settings, as before several models existed).
 */
export type { ModelTask } from '../core/engine.js';

/** Mutable: an engine found at a URL tells its dialect once it answers; llama-server its modalities (/props). */
export interface EngineInfo {
  dialect: EngineDialect;
  kind?: MediaTarget['engine'];
  modalities?: MediaTarget['modalities'];
}

export interface ModelSpec {
  /** id (read live: an external engine's id is learnt after start), root, context length, media. */
  served: ServedModel;
  /** Other names requests may use; the engine is always sent `served.id`. */
  aliases?: readonly string[] | undefined;
  task?: ModelTask | undefined;
  upstream: Upstream;
  engine: EngineInfo;
  admission: Admission;
  readiness: Readiness;
  /** The model this one is derived from (a LoRA adapter's base model): /v1/models `parent`. */
  parent?: string | null | undefined;
  /** Unix seconds the model was loaded: /v1/models `created`. */
  createdAt?: number | undefined;
}

export interface ServedEntry extends ModelSpec {
  readonly id: string;
  readonly task: ModelTask | undefined;
  readonly parent: string | null;
  readonly createdAt: number;
  /** The tokenize / detokenize / render calls for this model's engine (follows engine.dialect). */
  dialect(): Dialect;
}

/** Routes by the task they need (engine paths as callEngine sends them). */
const EMBEDDING_PATHS = new Set(['/v1/embeddings']);

export class ModelRegistry {
  private readonly entries = new Map<ServedEntry, true>();

  /** Add a model; its id and aliases must be free (ids are read live, so checked on every lookup too). */
  add(spec: ModelSpec): ServedEntry {
    for (const name of [spec.served.id, ...(spec.aliases ?? [])]) {
      if (this.find(name)) throw new Error(`model name "${name}" is already served`);
    }
    const dialects = new Map<EngineDialect, Dialect>();
    const entry: ServedEntry = {
      ...spec,
      get id() {
        return spec.served.id;
      },
      task: spec.task,
      parent: spec.parent ?? null,
      createdAt: spec.createdAt ?? Math.floor(Date.now() / 1000),
      dialect: () => {
        const kind = spec.engine.dialect;
        let d = dialects.get(kind);
        if (!d) dialects.set(kind, (d = createDialect(kind, spec.upstream, () => spec.served.maxModelLen)));
        return d;
      },
    };
    this.entries.set(entry, true);
    return entry;
  }

  /** Remove a model by id; returns it (undefined when not served). In-flight requests finish. */
  remove(id: string): ServedEntry | undefined {
    const e = [...this.entries.keys()].find((x) => x.id === id);
    if (e) this.entries.delete(e);
    return e;
  }

  /** The first model added (the default for a request without `model`), without building a list. */
  first(): ServedEntry | undefined {
    return this.entries.keys().next().value;
  }

  /** Every served model, in the order added. */
  list(): ServedEntry[] {
    return [...this.entries.keys()];
  }

  get size(): number {
    return this.entries.size;
  }

  /** The model a name (id or alias) names. */
  find(name: string): ServedEntry | undefined {
    for (const e of this.entries.keys()) if (e.id === name) return e;
    for (const e of this.entries.keys()) if (e.aliases?.includes(name)) return e;
    return undefined;
  }

  /**
   * The model a request names, or 404 model_not_found. A request without `model` goes to the
   * first model added (the only one, when one is served).
   */
  resolve(name: unknown, param = 'model'): ServedEntry {
    if (name === undefined) {
      const first = this.entries.keys().next();
      if (!first.done) return first.value;
      throw new PorticoError('model_not_found', '', { param });
    }
    const e = typeof name === 'string' ? this.find(name) : undefined;
    if (!e) throw new PorticoError('model_not_found', String(name), { param });
    return e;
  }

  /** Every model ready; else the reasons of those that are not. */
  readiness(): { ready: boolean; reason: string } {
    const waiting = this.list().filter((e) => !e.readiness.isReady());
    if (!waiting.length) return { ready: this.size > 0, reason: this.size ? '' : 'no model is served' };
    // One model: its own reason, as before several models existed.
    if (this.size === 1) return { ready: false, reason: waiting[0]!.readiness.reason() };
    return { ready: false, reason: waiting.map((e) => `${e.id}: ${e.readiness.reason()}`).join('; ') };
  }
}

/** 400 when the model does not serve the engine path (chat to an embedding model and back). */
export function requireTask(entry: ServedEntry, enginePath: string): void {
  if (entry.task === undefined) return;
  const needs: ModelTask = EMBEDDING_PATHS.has(enginePath) ? 'embedding' : 'chat';
  if (entry.task === needs) return;
  const hint = entry.task === 'embedding' ? 'it serves /v1/embeddings only' : 'send embeddings to an embedding model';
  throw new PorticoError('model_route_mismatch', `model \`${entry.id}\` is ${entry.task === 'embedding' ? 'an embedding' : 'a chat'} model and does not serve ${enginePath}: ${hint}`, { param: 'model' });
}
