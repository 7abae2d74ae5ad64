// createApp(deps) → the Hono app. The route table below is the one place routes are declared:
// auth, admission and the tests' route × credential matrix all read it.
import { Hono, type Context } from 'hono';
import { pipeline, Readable } from 'node:stream';
import type { z } from 'zod';
import type { ServedModel } from '../core/engine.js';
import { readJson } from './body.js';
import { gatewayDefaults, type GatewayOptions } from './options.js';
import { createDialect, engineError, type Dialect, type EngineCall } from './dialect.js';
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
import { Metrics, METRICS_CONTENT_TYPE } from './metrics.js';
import { accessLogObserver, metricsObserver } from './observe.js';
import { guard, lifecycle, type LifeObserver, type RequestLife } from './lifecycle.js';
import { createManagement, fallbackManagementInfo, type ManagementInfo } from './management.js';
import { buildOpenApi, docsHtml, DOCS_CSP } from './openapi.js';
import { translatedRoutes } from './translate/routes.js';
import { anthropicError, isMessagesPath } from './translate/messages.js';
import type { TokenizeRequest } from './schemas.js';
import type { MediaNormalizer as FullMediaNormalizer, MediaTarget } from './media/normalize.js';

export interface Readiness {
  isReady(): boolean;
  /** Why not ready (shown in the 503 message). */
  reason(): string;
}

export type MediaNormalizer = Pick<FullMediaNormalizer, 'normalize'>;

export interface AppDeps {
  /** The gateway's options (gateway/options.ts); absent ones take the settings' defaults (tests pass a few). */
  settings: Partial<GatewayOptions>;
  model: ServedModel;
  upstream: Upstream;
  /**
   * Mutable: an engine found at NIM_ENGINE_URL tells its dialect once it answers; llama-server
   * tells its modalities (/props) once healthy. Absent modalities: unknown (media is forwarded).
   */
  engine: { dialect: EngineDialect; kind?: MediaTarget['engine']; modalities?: MediaTarget['modalities'] };
  readiness: Readiness;
  media?: MediaNormalizer;
  /** Unix seconds the model was loaded: /v1/models `created`. */
  createdAt?: number;
  /** API keys (reloadable); default: built from settings.apiKeys / apiKeysFile. */
  keys?: KeyStore;
  /** The in-flight limit, shared so it can be observed; default: from settings. */
  admission?: Admission;
  rateLimiter?: RateLimiter;
  /** Prometheus registry and per-request series; default: a fresh one. */
  metrics?: Metrics;
  /** Access and error log; default: none. */
  log?: Logger;
  /** What /v1/metadata, /v1/license, /v1/manifest describe; default: derived from `model`. */
  management?: ManagementInfo;
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
  const { upstream, model, readiness } = deps;
  const s: GatewayOptions = { ...gatewayDefaults(), ...deps.settings };
  const limit = s.maxRequestBytes;
  const dialects = new Map<EngineDialect, Dialect>();
  const dialectNow = (): Dialect => {
    const kind = deps.engine.dialect;
    let d = dialects.get(kind);
    if (!d) dialects.set(kind, (d = createDialect(kind, upstream, () => model.maxModelLen)));
    return d;
  };
  const created = deps.createdAt ?? Math.floor(Date.now() / 1000);
  const keys =
    deps.keys ??
    (s.apiKeys.length || s.apiKeysFile ? new KeyStore({ keys: s.apiKeys, file: s.apiKeysFile, defaults: { rpm: s.rateLimitRpm, tpm: s.rateLimitTpm } }) : undefined);
  const admit =
    deps.admission ?? new Admission({ maxConcurrent: s.maxConcurrentRequests, maxQueue: s.maxQueue, queueTimeoutMs: s.queueTimeoutMs });
  const limiter = deps.rateLimiter ?? new RateLimiter();
  const metrics = deps.metrics ?? new Metrics();
  const mgmt = createManagement(deps.management ?? fallbackManagementInfo(model), model);

  const checkModel = (name: unknown, param = 'model'): void => {
    if (name !== undefined && name !== model.id) {
      throw new PorticoError('model_not_found', String(name), { param });
    }
  };
  const requireReady = (): void => {
    if (!readiness.isReady()) throw new PorticoError('engine_unavailable', readiness.reason());
  };

  /**
   * The media step: every content part of the body's message-carrying fields through the part table
   * (gateway/media/parts.ts). Fields: the route table's `media` by default; a translated chat body's
   * `messages` (true); or a function lending the guard other parts (native Responses pass-through).
   */
  const mediaStep = (c: Context, body: Record<string, unknown>, how: EngineCallOptions['media']): Promise<boolean> | false => {
    const m = deps.media;
    if (!m) return false;
    const e = deps.engine;
    const target = { model: model.id, modalities: e.modalities, engine: e.kind ?? (e.dialect === 'trtllm' ? 'tensorrt_llm' : e.dialect), resizeMaxPixels: model.resizeMaxPixels };
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
  const callEngine = async (c: Context, path: string, body: Record<string, unknown>, raw: Uint8Array | undefined, opts: EngineCallOptions = {}): Promise<EngineAnswer> => {
    requireModelAccess(c, body.model ?? model.id);
    checkModel(body.model);
    const life = c.get('life');
    // The admission slot and the token charge are taken only now, with the whole body read and valid.
    const wait = life.accept(body);
    if (wait) await wait;
    requireReady();
    const signal = c.req.raw.signal;
    const nvext = opts.nvext ? applyNvext(body, deps.engine.dialect) : false;
    const media = await mediaStep(c, body, opts.media);
    const changed = media || nvext;
    // Tool calls the engine cannot force itself are enforced here (gateway/tools.ts).
    const plan = opts.chat ? planChat(body, deps.engine.dialect) : undefined;
    const res = await life.engine(() =>
      upstream.request({
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
    <T extends z.ZodType>(schema: T, call: (req: z.infer<T>, engineCall: EngineCall) => Promise<unknown>) =>
    async (c: Context): Promise<Response> => {
      const { value } = await readJson(c, limit);
      const req = parseBody(schema, value);
      requireModelAccess(c, (req as { model?: unknown }).model ?? model.id);
      checkModel((req as { model?: unknown }).model);
      requireReady();
      await mediaStep(c, req as Record<string, unknown>, undefined);
      const life = c.get('life');
      const engineCall = { signal: c.req.raw.signal, requestId: life.id };
      return c.json(await life.engine(() => call(req, engineCall)));
    };

  const routes: RouteSpec[] = [
    { method: 'GET', path: '/v1/health/live', access: 'public', inference: false, handler: (c) => c.json({ object: 'health.response', message: 'Service is live.' }) },
    {
      method: 'GET',
      path: '/v1/health/ready',
      access: 'public',
      inference: false,
      handler: (c) => {
        requireReady();
        return c.json({ object: 'health.response', message: 'Service is ready.' });
      },
    },
    {
      method: 'GET',
      path: '/v1/models',
      access: 'protected',
      inference: false,
      handler: (c) => c.json({ object: 'list', data: canUseModel(c, model.id) ? [modelCard(model, created)] : [] }),
    },
    { method: 'POST', path: '/v1/chat/completions', access: 'protected', inference: true, media: MESSAGES, handler: forward('/v1/chat/completions', chatCompletionRequest, { chat: true, nvext: true }) },
    { method: 'POST', path: '/v1/completions', access: 'protected', inference: true, media: [], handler: forward('/v1/completions', completionRequest, { nvext: true }) },
    { method: 'POST', path: '/v1/embeddings', access: 'protected', inference: true, media: MESSAGES, handler: forward('/v1/embeddings', embeddingRequest) },
    { method: 'POST', path: '/tokenize', access: 'protected', inference: false, media: MESSAGES, handler: viaDialect(tokenizeRequest, (r, s) => dialectNow().tokenize(r, s)) },
    { method: 'POST', path: '/detokenize', access: 'protected', inference: false, media: MESSAGES, handler: viaDialect(detokenizeRequest, (r, s) => dialectNow().detokenize(r, s)) },
    {
      method: 'POST',
      path: '/v1/chat/completions/render',
      access: 'protected',
      inference: false,
      media: MESSAGES,
      handler: viaDialect(chatCompletionRequest, (r, s) => dialectNow().renderChat(r, s)),
    },
    {
      method: 'POST',
      path: '/v1/completions/render',
      access: 'protected',
      inference: false,
      media: [],
      handler: viaDialect(completionRequest, (r, s) => dialectNow().renderCompletion(r, s)),
    },
    // The Responses and Messages APIs, over the same engine call as chat.
    ...translatedRoutes({
      readBody: (c) => readJson(c, limit),
      callEngine,
      dialect: () => deps.engine.dialect,
      countTokens: async (c, chat) => {
        requireModelAccess(c, chat.model ?? model.id);
        checkModel(chat.model);
        requireReady();
        const signal = c.req.raw.signal;
        await mediaStep(c, chat, true);
        const req = { ...chat, add_generation_prompt: true } as TokenizeRequest;
        const life = c.get('life');
        const r = await life.engine(() => dialectNow().tokenize(req, { signal, requestId: life.id }));
        return r.count;
      },
    }),
    // NIM management endpoints. /metrics: the path vLLM and llama-server scrapers expect.
    { method: 'GET', path: '/v1/metadata', access: 'protected', inference: false, handler: (c) => c.json(mgmt.metadata()) },
    { method: 'GET', path: '/v1/version', access: 'protected', inference: false, handler: (c) => c.json(mgmt.version()) },
    { method: 'GET', path: '/v1/license', access: 'protected', inference: false, handler: (c) => c.json(mgmt.license()) },
    { method: 'GET', path: '/v1/manifest', access: 'protected', inference: false, handler: (c) => c.json(mgmt.manifest()) },
    { method: 'GET', path: '/v1/metrics', access: 'protected', inference: false, handler: (c) => metricsResponse(c) },
    { method: 'GET', path: '/metrics', access: 'protected', inference: false, handler: (c) => metricsResponse(c) },
    { method: 'GET', path: '/openapi.json', access: 'protected', inference: false, handler: (c) => c.body(openapi().json, 200, { 'content-type': 'application/json' }) },
    { method: 'GET', path: '/docs', access: 'protected', inference: false, handler: (c) => c.html(openapi().html, 200, { 'content-security-policy': DOCS_CSP }) },
  ];
  const mediaSites = new Map(routes.filter((r) => r.method === 'POST').map((r) => [r.path, r.media]));
  const metricsResponse = async (c: Context): Promise<Response> =>
    c.body(await metrics.render({ engine: upstream, model: model.id, ready: readiness.isReady(), queue: admit, wait: (f) => c.get('life').waiting(f) }), 200, {
      'content-type': METRICS_CONTENT_TYPE,
    });
  let doc: { json: string; html: string } | undefined;
  const openapi = () => {
    if (doc) return doc;
    const d = buildOpenApi(routes, { release: deps.management?.release ?? '0.0.0' });
    return (doc = { json: JSON.stringify(d), html: docsHtml(d) });
  };

  const app = new Hono<{ Variables: AppVariables }>();
  const open = publicPaths(routes, { metricsPublic: s.metricsPublic });
  // What observes or limits a request, each subscribed once to every request's life
  // (gateway/lifecycle.ts): the in-flight limit on inference routes, per-key rate limits (health
  // and metrics exempt), metrics, the access log.
  const observers: LifeObserver[] = [
    admissionObserver(admit, { streamIdleMs: s.streamIdleTimeoutMs }),
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
    app.use(lifecycle({ observers, model, routes }));
    app.use(cors(s.cors));
    app.use(guard(checks));
  } else app.use(lifecycle({ observers, model, routes }, { checks, onError: (err, c) => errorResponse(c, err) }));
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

/** The NIM /v1/models card (NIM's shape: max_model_len, permission[]). */
export function modelCard(model: ServedModel, created: number) {
  return {
    id: model.id,
    object: 'model',
    created,
    owned_by: 'system',
    root: model.root,
    parent: null,
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
