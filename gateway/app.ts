// createApp(deps) → the Hono app. The route table below is the one place routes are declared:
// auth, admission and the tests' route × credential matrix all read it.
import { Hono, type Context } from 'hono';
import { pipeline, Readable } from 'node:stream';
import type { z } from 'zod';
import type { ServedModel } from '../core/engine.js';
import { readJson } from './body.js';
import { gatewayDefaults, type GatewayOptions } from './options.js';
import { engineError, type Dialect, type EngineCall } from './dialect.js';
import { PorticoError, reportError, toPorticoError } from '../core/errors.js';
import { authCheck, canUseModel, KeyStore, METRICS_PATHS, publicPaths, requireModelAccess } from './auth.js';
import { Admission, admissionObserver } from './admission.js';
import { RateLimiter, rateLimitObserver } from './rate-limit.js';
import { cors } from './cors.js';
import { headerCount } from './limits.js';
import {
  chatCompletionRequest,
  completionRequest,
  detokenizeRequest,
  embeddingRequest,
  parseBody,
  tokenizeRequest,
} from './schemas.js';
import type { Upstream } from './upstream.js';
import type { EngineDialect } from '../core/engine.js';
import { SSE_HEADERS } from './sse.js';
import { plainBody } from './plain-body.js';
import { planChat, toolCallCompletion, toolCallEvents } from './tools.js';
import { applyNvext } from './nvext.js';
import { mirrorReasoningJson, ReasoningSse } from './reasoning.js';
import type { Logger } from 'pino';
import { engineMetricsPath, Metrics, METRICS_CONTENT_TYPE } from './metrics.js';
import { accessLogObserver, metricsObserver } from './observe.js';
import { guard, lifecycle, type LifeObserver, type RequestLife } from './lifecycle.js';
import { createManagement, fallbackManagementInfo, type ManagementInfo } from './management.js';
import { buildOpenApi, docsHtml, DOCS_CSP } from './openapi.js';
import { playgroundPage } from './playground/page.js';
import { translatedRoutes } from './translate/routes.js';
import { anthropicError, isMessagesPath } from './translate/messages.js';
import type { TokenizeRequest } from './schemas.js';
import type { MediaNormalizer as FullMediaNormalizer, MediaTarget } from './media/normalize.js';
import { renameModelJson, renameModelSse, stripClientLora, type LoraModels } from './lora-models.js';
import { ModelRegistry, requireTask, type Readiness, type ServedEntry } from './models.js';

export type { Readiness } from './models.js';

export type MediaNormalizer = Pick<FullMediaNormalizer, 'normalize'>;

export interface AppDeps {
  /** The gateway's options (gateway/options.ts); absent ones take the settings' defaults (tests pass a few). */
  settings: Partial<GatewayOptions>;
  /**
   * The served models (gateway/models.ts), each with its engine, admission slots and readiness.
   * Absent: a registry of one, built from model / upstream / engine / readiness / admission.
   */
  registry?: ModelRegistry;
  model?: ServedModel;
  upstream?: Upstream;
  /**
   * Mutable: an engine found at NIM_ENGINE_URL tells its dialect once it answers; llama-server
   * tells its modalities (/props) once healthy. Absent modalities: unknown (media is forwarded).
   */
  engine?: { dialect: EngineDialect; kind?: MediaTarget['engine']; modalities?: MediaTarget['modalities'] };
  readiness?: Readiness;
  media?: MediaNormalizer;
  /** Unix seconds the model was loaded: /v1/models `created`. */
  createdAt?: number;
  /** API keys (reloadable); default: built from settings.apiKeys / apiKeysFile. */
  keys?: KeyStore;
  /** The single model's in-flight limit, shared so it can be observed; default: from settings. */
  admission?: Admission;
  rateLimiter?: RateLimiter;
  /** Prometheus registry and per-request series; default: a fresh one. */
  metrics?: Metrics;
  /** Access and error log; default: none. */
  log?: Logger;
  /** What /v1/metadata, /v1/license, /v1/manifest describe; default: derived from `model`. */
  management?: ManagementInfo;
  /**
   * LoRA adapters (gateway/lora-models.ts), one table per model that has some; a table not bound
   * to the registry yet is bound to the first model. Default: none.
   */
  loras?: readonly LoraModels[];
}

type Access = 'public' | 'protected';
const MESSAGES = ['messages'] as const;
const JSON_HEADERS = { 'content-type': 'application/json' } as const;
export interface RouteSpec {
  method: 'GET' | 'POST';
  path: string;
  /** public: never needs a key (health probes). */
  access: Access;
  /** Counts against the admission limit (runs inference on the engine). */
  inference: boolean;
  /**
   * Body fields holding messages whose content parts go through the part table
   * (gateway/media/parts.ts): every POST route declares it, [] for none (tests/media-routes.test.ts).
   */
  media?: readonly string[];
  handler: (c: Context) => Promise<Response> | Response;
}

export type AppVariables = { life: RequestLife };

/** What the engine answered: a complete JSON body, or the SSE body as it arrives. */
export type EngineAnswer = { json: Uint8Array<ArrayBuffer>; status: number } | { stream: ReadableStream<Uint8Array> };
export interface EngineCallOptions {
  /** Run the media guard: on a chat body (true), or through a function that lends it other parts. */
  media?: boolean | ((media: MediaNormalizer, signal: AbortSignal) => Promise<boolean>);
  /** A chat completions body: tool-choice enforcement and reasoning names (gateway/tools.ts, reasoning.ts). */
  chat?: boolean;
  /** Translate NIM's `nvext` for the engine (gateway/nvext.ts). */
  nvext?: boolean;
}

export function createApp(deps: AppDeps): { app: Hono<{ Variables: AppVariables }>; routes: RouteSpec[] } {
  const s: GatewayOptions = { ...gatewayDefaults(), ...deps.settings };
  const limit = s.maxRequestBytes;
  const keys =
    deps.keys ??
    (s.apiKeys.length || s.apiKeysFile ? new KeyStore({ keys: s.apiKeys, file: s.apiKeysFile, defaults: { rpm: s.rateLimitRpm, tpm: s.rateLimitTpm } }) : undefined);
  const registry = deps.registry ?? singleModel(deps, s);
  const first = registry.list()[0];
  if (!first) throw new Error('createApp: no model to serve');
  // LoRA adapters join the registry as models whose parent is their base model.
  for (const t of deps.loras ?? []) if (!t.bound) t.bind(registry, first);
  const limiter = deps.rateLimiter ?? new RateLimiter();
  const metrics = deps.metrics ?? new Metrics();
  const mgmt = createManagement(deps.management ?? fallbackManagementInfo(first.served), first.served);

  /** The model a request names (404 if none), once the key may use it (403 first: no probing). */
  const modelFor = (c: Context, name: unknown): ServedEntry => {
    requireModelAccess(c, name ?? registry.resolve(undefined).id);
    const entry = registry.resolve(name);
    // Metrics and the access log carry the model the request was for.
    c.get('life').model = entry.id;
    return entry;
  };
  const requireReady = (entry: ServedEntry): void => {
    if (!entry.readiness.isReady()) throw new PorticoError('engine_unavailable', registry.size > 1 ? `${entry.id}: ${entry.readiness.reason()}` : entry.readiness.reason());
  };
  const mediaTarget = (entry: ServedEntry) => {
    const e = entry.engine;
    return { model: entry.id, modalities: e.modalities, engine: e.kind ?? (e.dialect === 'trtllm' ? 'tensorrt_llm' : e.dialect), resizeMaxPixels: entry.served.resizeMaxPixels } as const;
  };

  /**
   * The media step: every content part of the body's message-carrying fields through the part table
   * (gateway/media/parts.ts). Fields: the route table's `media` by default; a translated chat body's
   * `messages` (true); or a function lending the guard other parts (native Responses pass-through).
   */
  const mediaStep = (c: Context, entry: ServedEntry, body: Record<string, unknown>, how: EngineCallOptions['media']): Promise<boolean> | false => {
    const m = deps.media;
    if (!m) return false;
    // Fetch slots are shared between keys in turn, then between a key's requests.
    const group = (c.get('apiKey') as { hash: string } | undefined)?.hash;
    const target = { ...mediaTarget(entry), group };
    const signal = c.req.raw.signal;
    if (typeof how === 'function') return how({ normalize: (b, s, o) => m.normalize(b, s, { ...target, ...o }) }, signal);
    // Every route with media sites is a POST on a literal path.
    const sites = how === true ? MESSAGES : c.req.method === 'POST' ? mediaSites.get(c.req.path) : undefined;
    if (!sites?.length) return false;
    return m.normalize(body, signal, { ...target, sites });
  };

  /**
   * Send a validated body to the engine (model access; the request's life accepts it: admission
   * slot and token charge; readiness, media, then the call): its JSON answer, or its SSE body as
   * the bytes arrive. `raw`: the client's own bytes, sent as they came when nothing changed them.
   * The translated APIs (Responses, Messages) call this with the chat body they built and
   * translate what comes back.
   */
  const callEngineAs = async (c: Context, path: string, body: Record<string, unknown>, raw: Uint8Array | undefined, opts: EngineCallOptions = {}): Promise<EngineAnswer> => {
    const entry = modelFor(c, body.model);
    requireTask(entry, path);
    const life = c.get('life');
    // The admission slot (the model's own) and the token charge are taken only now, with the whole
    // body read and valid.
    life.admission = entry.admission;
    const wait = life.accept(body);
    if (wait) await wait;
    // The model the metrics name: the entry's id (an alias or a LoRA adapter resolved).
    life.model = entry.id;
    requireReady(entry);
    const signal = c.req.raw.signal;
    const dialect = entry.engine.dialect;
    const nvext = opts.nvext ? applyNvext(body, dialect) : false;
    const media = await mediaStep(c, entry, body, opts.media);
    // An alias reaches the engine as the model's id (the name the engine serves).
    const renamed = body.model !== undefined && body.model !== entry.id;
    if (renamed) body.model = entry.id;
    const changed = media || nvext || renamed;
    // Tool calls the engine cannot force itself are enforced here (gateway/tools.ts).
    const plan = opts.chat ? planChat(body, dialect) : undefined;
    const res = await life.engine(() =>
      entry.upstream.request({
        method: 'POST',
        path,
        headers: { 'content-type': 'application/json', 'x-request-id': life.id },
        // Unchanged requests go out as the client's own bytes: no re-serialization.
        body: plan?.rewritten ? JSON.stringify(plan.engineBody) : changed || raw === undefined ? JSON.stringify(body) : raw,
        signal,
      }),
    );
    if (res.statusCode >= 400) throw engineError(res.statusCode, await life.engineFailure(res));
    if (plan?.enforced) {
      const answer = toolCallCompletion((await life.engine(() => res.body.json())) as Record<string, unknown>, plan.enforced);
      if (plan.enforced.stream) return { stream: life.stream(Readable.from([Buffer.from(toolCallEvents(answer, plan.enforced))])) };
      const out = new Uint8Array(Buffer.from(JSON.stringify(answer)));
      life.json(out);
      return { json: out, status: 200 };
    }
    if (body.stream === true) {
      // One stream carries everything that follows it (the request's life: metrics, admission slot
      // + idle guard, rate-limit settle). Nothing re-wraps it.
      // Chat deltas carry reasoning under both names (gateway/reasoning.ts); pipeline ties the
      // transform's teardown to the engine body's.
      const engineBody = res.body as unknown as Readable;
      return { stream: life.stream(opts.chat ? pipeline(engineBody, new ReasoningSse(), () => {}) : engineBody) };
    }
    // A Uint8Array (a view, no copy): node-server writes it in one call on its fast path.
    const engineBuf = new Uint8Array(await life.engine(() => res.body.arrayBuffer()));
    const buf = opts.chat ? mirrorReasoningJson(engineBuf) : engineBuf;
    life.json(buf);
    return { json: buf, status: res.statusCode };
  };

  /**
   * The same, for a model with LoRA adapters: the engine's way of selecting one (gateway/lora-models.ts).
   * (Which model is only looked up here; access, 404 and the rest are callEngineAs's.)
   */
  const callEngine = async (c: Context, path: string, body: Record<string, unknown>, raw: Uint8Array | undefined, opts: EngineCallOptions = {}): Promise<EngineAnswer> => {
    const entry = body.model === undefined ? registry.first() : typeof body.model === 'string' ? registry.find(body.model) : undefined;
    const table = entry && deps.loras?.find((t) => t.owns(entry));
    const lora = entry && (table ? table.prepare(body, entry) : { changed: stripClientLora(body, entry.engine.dialect) });
    const answer = await callEngineAs(c, path, body, lora?.changed ? undefined : raw, opts);
    if (!lora?.rename) return answer;
    const { from, to } = lora.rename;
    return 'stream' in answer ? { stream: renameModelSse(answer.stream, from, to) } : { ...answer, json: renameModelJson(answer.json, from, to) };
  };

  /** Validate, normalize media, forward; JSON back, or SSE bytes as they arrive. */
  const forward =
    (path: string, schema: z.ZodType, opts: EngineCallOptions = {}) =>
    async (c: Context): Promise<Response> => {
      const { raw, value } = await readJson(c, limit);
      const body = plainBody(schema, value) ?? (parseBody(schema, value) as Record<string, unknown>);
      const answer = await callEngine(c, path, body, raw, opts);
      const life = c.get('life');
      if ('stream' in answer) return life.reply(answer.stream, 200, SSE_HEADERS);
      return life.reply(answer.json, answer.status, JSON_HEADERS);
    };

  /** Endpoints the gateway answers through the engine dialect (shapes differ by engine). */
  const viaDialect =
    <T extends z.ZodType>(schema: T, call: (dialect: Dialect, req: z.infer<T>, engineCall: EngineCall) => Promise<unknown>, task?: string) =>
    async (c: Context): Promise<Response> => {
      const { value } = await readJson(c, limit);
      const req = parseBody(schema, value);
      const entry = modelFor(c, (req as { model?: unknown }).model);
      if (task) requireTask(entry, task);
      requireReady(entry);
      await mediaStep(c, entry, req as Record<string, unknown>, undefined);
      const life = c.get('life');
      const engineCall = { signal: c.req.raw.signal, requestId: life.id };
      return c.json(await life.engine(() => call(entry.dialect(), req, engineCall)));
    };

  // The browser pages share one rule: the playground is public exactly when /docs is.
  const pageAccess: Access = s.docsPublic ? 'public' : 'protected';
  const routes: RouteSpec[] = [
    { method: 'GET', path: '/v1/health/live', access: 'public', inference: false, handler: (c) => c.json({ object: 'health.response', message: 'Service is live.' }) },
    {
      method: 'GET',
      path: '/v1/health/ready',
      access: 'public',
      inference: false,
      handler: (c) => {
        const r = registry.readiness();
        if (!r.ready) throw new PorticoError('engine_unavailable', r.reason);
        return c.json({ object: 'health.response', message: 'Service is ready.' });
      },
    },
    {
      method: 'GET',
      path: '/v1/models',
      access: 'protected',
      inference: false,
      handler: (c) => c.json({ object: 'list', data: registry.list().filter((e) => canUseModel(c, e.id)).map(entryCard) }),
    },
    {
      // One model's card, with its readiness (ids hold slashes: portico/tiny-vlm).
      method: 'GET',
      path: '/v1/models/:id{.+}',
      access: 'protected',
      inference: false,
      handler: (c) => {
        const entry = modelFor(c, c.req.param('id'));
        return c.json({ ...entryCard(entry), ready: entry.readiness.isReady(), ...(entry.readiness.isReady() ? {} : { reason: entry.readiness.reason() }) });
      },
    },
    { method: 'POST', path: '/v1/chat/completions', access: 'protected', inference: true, media: MESSAGES, handler: forward('/v1/chat/completions', chatCompletionRequest, { chat: true, nvext: true }) },
    { method: 'POST', path: '/v1/completions', access: 'protected', inference: true, media: [], handler: forward('/v1/completions', completionRequest, { nvext: true }) },
    { method: 'POST', path: '/v1/embeddings', access: 'protected', inference: true, media: MESSAGES, handler: forward('/v1/embeddings', embeddingRequest) },
    { method: 'POST', path: '/tokenize', access: 'protected', inference: false, media: MESSAGES, handler: viaDialect(tokenizeRequest, (d, r, s) => d.tokenize(r, s)) },
    { method: 'POST', path: '/detokenize', access: 'protected', inference: false, media: MESSAGES, handler: viaDialect(detokenizeRequest, (d, r, s) => d.detokenize(r, s)) },
    {
      method: 'POST',
      path: '/v1/chat/completions/render',
      access: 'protected',
      inference: false,
      media: MESSAGES,
      handler: viaDialect(chatCompletionRequest, (d, r, s) => d.renderChat(r, s), '/v1/chat/completions'),
    },
    {
      method: 'POST',
      path: '/v1/completions/render',
      access: 'protected',
      inference: false,
      media: [],
      handler: viaDialect(completionRequest, (d, r, s) => d.renderCompletion(r, s), '/v1/completions'),
    },
    // The Responses and Messages APIs, over the same engine call as chat.
    ...translatedRoutes({
      readBody: (c) => readJson(c, limit),
      callEngine,
      // The named model's engine (an unknown name: the default's; callEngine answers the 404).
      dialect: (name) => (typeof name === 'string' ? registry.find(name) : undefined)?.engine.dialect ?? first.engine.dialect,
      countTokens: async (c, chat) => {
        const entry = modelFor(c, chat.model);
        requireTask(entry, '/v1/chat/completions');
        requireReady(entry);
        const signal = c.req.raw.signal;
        await mediaStep(c, entry, chat, true);
        const req = { ...chat, add_generation_prompt: true } as TokenizeRequest;
        const life = c.get('life');
        const r = await life.engine(() => entry.dialect().tokenize(req, { signal, requestId: life.id }));
        return r.count;
      },
    }),
    // NIM management endpoints. /metrics: the path vLLM and llama-server scrapers expect.
    { method: 'GET', path: '/v1/metadata', access: 'protected', inference: false, handler: (c) => c.json(metadata()) },
    { method: 'GET', path: '/v1/version', access: 'protected', inference: false, handler: (c) => c.json(mgmt.version()) },
    { method: 'GET', path: '/v1/license', access: 'protected', inference: false, handler: (c) => c.json(mgmt.license()) },
    { method: 'GET', path: '/v1/manifest', access: 'protected', inference: false, handler: (c) => c.json(mgmt.manifest()) },
    { method: 'GET', path: '/v1/metrics', access: 'protected', inference: false, handler: (c) => metricsResponse(c) },
    { method: 'GET', path: '/metrics', access: 'protected', inference: false, handler: (c) => metricsResponse(c) },
    { method: 'GET', path: '/openapi.json', access: 'protected', inference: false, handler: (c) => c.body(openapi().json, 200, { 'content-type': 'application/json' }) },
    { method: 'GET', path: '/docs', access: pageAccess, inference: false, handler: (c) => c.html(openapi().html, 200, { 'content-security-policy': DOCS_CSP }) },
    { method: 'GET', path: '/playground', access: pageAccess, inference: false, handler: playgroundPage(() => keys?.enabled ?? false, s) },
  ];
  const mediaSites = new Map(routes.filter((r) => r.method === 'POST').map((r) => [r.path, r.media]));
  const metricsResponse = async (c: Context): Promise<Response> =>
    c.body(
      await metrics.render({
        ...renderedModels(),
        ready: registry.readiness().ready,
        wait: (f) => c.get('life').waiting(f),
      }),
      200,
      { 'content-type': METRICS_CONTENT_TYPE },
    );
  /** One engine: its series appended as it names them (as before several models); several: merged, labelled by model. */
  const renderedModels = () => {
    const engines = registry.list().filter((e) => e.parent === null);
    if (engines.length === 1) return { model: engines[0]!.id, engine: engines[0]!.upstream, queue: engines[0]!.admission };
    return { models: engines.map((e) => ({ model: e.id, engine: e.upstream, queue: e.admission, metricsPath: engineMetricsPath(e.engine.kind) })) };
  };
  /** /v1/metadata: the deployment, then one modelInfo entry per served model. */
  const metadata = () => {
    const m = mgmt.metadata();
    const rest = registry.list().slice(1).map((e) => ({ modelUrl: e.served.root, shortName: e.id, servedModelName: e.id, maxModelLen: e.served.maxModelLen }));
    return rest.length ? { ...m, modelInfo: [...m.modelInfo, ...rest] } : m;
  };
  const entryCard = (e: ServedEntry) => modelCard(e.served, e.createdAt, e.parent);
  let doc: { json: string; html: string } | undefined;
  const openapi = () => {
    if (doc) return doc;
    const d = buildOpenApi(routes, { release: deps.management?.release ?? '0.0.0' });
    return (doc = { json: JSON.stringify(d), html: docsHtml(d) });
  };

  const app = new Hono<{ Variables: AppVariables }>();
  const open = publicPaths(routes, { metricsPublic: s.metricsPublic });
  // The default model (read per request: an external engine's model id is learnt after start).
  const firstModel = { get id() { return registry.first()?.id ?? ''; } };
  // What observes or limits a request, each subscribed once to every request's life
  // (gateway/lifecycle.ts): the in-flight limit on inference routes, per-key rate limits (health
  // and metrics exempt), metrics, the access log.
  const observers: LifeObserver[] = [
    admissionObserver({ streamIdleMs: s.streamIdleTimeoutMs }),
    rateLimitObserver(limiter, new Set([...open, ...METRICS_PATHS])),
    metricsObserver(metrics, routes),
  ];
  if (deps.log) observers.push(accessLogObserver(deps.log));
  // The request's life (request id, timing, x-portico-overhead-ms): outside everything else.
  // Security, in order: CORS (answers preflights before auth), then the guard: header count, API
  // key (default deny: all but the table's public routes, unknown paths included); then the caller
  // is known and the life's observers may refuse it (rate limits). Without CORS the guard runs in
  // the lifecycle's own layer.
  const checks = [headerCount(s.maxHeaders), ...(keys ? [authCheck(keys, open)] : [])];
  if (s.cors?.allowOrigins.length) {
    app.use(lifecycle({ observers, model: firstModel, routes }));
    app.use(cors(s.cors));
    app.use(guard(checks));
  } else app.use(lifecycle({ observers, model: firstModel, routes }, { checks, onError: (err, c) => errorResponse(c, err) }));
  for (const r of routes) app.on(r.method, r.path, r.handler);
  // A known path with another method is a 405, not a 404.
  const paths = new Map<string, string[]>();
  for (const r of routes) paths.set(r.path, [...(paths.get(r.path) ?? []), r.method]);
  for (const [path, methods] of paths) {
    app.all(path, (c) => {
      throw new PorticoError('method_not_allowed', `${c.req.method} is not allowed on ${path}; use ${methods.join(', ')}`, {
        headers: { allow: methods.join(', ') },
      });
    });
  }
  app.notFound((c) => errorResponse(c, new PorticoError('route_not_found', `${c.req.method} ${c.req.path}`)));
  app.onError((err, c) => errorResponse(c, err));
  return { app, routes };
}

export function errorResponse(c: Context, err: unknown): Response {
  // A client that went away mid-request is not a server failure, whatever was interrupted
  // (image fetch, engine call): record it as nginx's 499, nobody reads the answer.
  const e = c.req.raw.signal.aborted && !(err instanceof PorticoError) ? new PorticoError('client_closed', '', { cause: err }) : toPorticoError(err);
  reportError(e, 'response');
  for (const [k, v] of Object.entries(e.headers)) c.header(k, v);
  // Anthropic clients read errors in Anthropic's shape on its routes.
  return c.json(isMessagesPath(c.req.path) ? anthropicError(e) : e.toJSON(), e.status as 400);
}

/** A registry of the one model the deps describe (the single-model path). */
function singleModel(deps: AppDeps, s: GatewayOptions): ModelRegistry {
  const { model, upstream, engine, readiness } = deps;
  if (!model || !upstream || !engine || !readiness) throw new Error('createApp: give a registry, or model, upstream, engine and readiness');
  const registry = new ModelRegistry();
  const admit = deps.admission ?? new Admission({ maxConcurrent: s.maxConcurrentRequests, maxQueue: s.maxQueue, queueTimeoutMs: s.queueTimeoutMs });
  registry.add({ served: model, upstream, engine, readiness, admission: admit, createdAt: deps.createdAt });
  return registry;
}

/** The NIM /v1/models card (NIM's shape: max_model_len, permission[]). */
export function modelCard(model: ServedModel, created: number, parent: string | null = null) {
  return {
    id: model.id,
    object: 'model',
    created,
    owned_by: 'system',
    root: model.root,
    parent,
    max_model_len: model.maxModelLen,
    permission: [
      {
        id: `modelperm-${model.id.replace(/[^\w]/g, '').slice(0, 24)}`,
        object: 'model_permission',
        created,
        allow_create_engine: false,
        allow_sampling: true,
        allow_logprobs: true,
        allow_search_indices: false,
        allow_view: true,
        allow_fine_tuning: false,
        organization: '*',
        group: null,
        is_blocking: false,
      },
    ],
  };
}
