// createApp(deps) → the Hono app. The route table below is the one place routes are declared:
// auth, admission and the tests' route × credential matrix all read it.
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import type { Readable } from 'node:stream';
import type { z } from 'zod';
import type { ServedModel } from '../launcher/engines/types.js';
import type { Settings } from '../launcher/config.js';
import { readJson } from './body.js';
import { createDialect, engineError, type Dialect } from './dialect.js';
import { PorticoError, toPorticoError } from './errors.js';
import {
  chatCompletionRequest,
  completionRequest,
  detokenizeRequest,
  embeddingRequest,
  parseBody,
  tokenizeRequest,
} from './schemas.js';
import type { Upstream } from './upstream.js';
import type { EngineDialect } from '../launcher/engines/types.js';
import { sseFromUpstream, SSE_HEADERS } from './sse.js';

export interface Readiness {
  isReady(): boolean;
  /** Why not ready (shown in the 503 message). */
  reason(): string;
}

export interface MediaNormalizer {
  normalize(body: Record<string, unknown>, signal?: AbortSignal): Promise<boolean>;
}

export interface AppDeps {
  settings: Pick<Settings, 'maxRequestBytes'>;
  model: ServedModel;
  upstream: Upstream;
  /** Mutable: an engine found at NIM_ENGINE_URL tells its dialect once it answers. */
  engine: { dialect: EngineDialect };
  readiness: Readiness;
  media?: MediaNormalizer;
  /** Unix seconds the model was loaded: /v1/models `created`. */
  createdAt?: number;
}

type Access = 'public' | 'protected';
export interface RouteSpec {
  method: 'GET' | 'POST';
  path: string;
  /** public: never needs a key (health probes). */
  access: Access;
  /** Counts against the admission limit (runs inference on the engine). */
  inference: boolean;
  handler: (c: Context) => Promise<Response> | Response;
}

export type AppVariables = { requestId: string };

export function createApp(deps: AppDeps): { app: Hono<{ Variables: AppVariables }>; routes: RouteSpec[] } {
  const { upstream, model, readiness } = deps;
  const limit = deps.settings.maxRequestBytes;
  const dialects = new Map<EngineDialect, Dialect>();
  const dialectNow = (): Dialect => {
    const kind = deps.engine.dialect;
    let d = dialects.get(kind);
    if (!d) dialects.set(kind, (d = createDialect(kind, upstream, () => model.maxModelLen)));
    return d;
  };
  const created = deps.createdAt ?? Math.floor(Date.now() / 1000);

  const checkModel = (name: unknown, param = 'model'): void => {
    if (name !== undefined && name !== model.id) {
      throw new PorticoError('model_not_found', String(name), { param });
    }
  };
  const requireReady = (): void => {
    if (!readiness.isReady()) throw new PorticoError('engine_unavailable', readiness.reason());
  };

  /** Validate, normalize media, forward; JSON back, or SSE bytes as they arrive. */
  const forward =
    (path: string, schema: z.ZodType, opts: { media?: boolean } = {}) =>
    async (c: Context): Promise<Response> => {
      const { raw, value } = await readJson(c, limit);
      const body = parseBody(schema, value) as Record<string, unknown>;
      checkModel(body.model);
      requireReady();
      const signal = c.req.raw.signal;
      const changed = opts.media && deps.media ? await deps.media.normalize(body, signal) : false;
      const res = await upstream.request({
        method: 'POST',
        path,
        headers: { 'content-type': 'application/json', 'x-request-id': c.get('requestId') },
        // Unchanged requests go out as the client's own bytes: no re-serialization.
        body: changed ? JSON.stringify(body) : raw,
        signal,
      });
      if (res.statusCode >= 400) throw engineError(res.statusCode, await res.body.text());
      if (body.stream === true) {
        return c.body(sseFromUpstream(res.body as unknown as Readable), 200, SSE_HEADERS);
      }
      const buf = await res.body.arrayBuffer();
      return c.body(buf, res.statusCode as 200, { 'content-type': 'application/json' });
    };

  /** Endpoints the gateway answers through the engine dialect (shapes differ by engine). */
  const viaDialect =
    <T extends z.ZodType>(schema: T, call: (req: z.infer<T>, signal: AbortSignal) => Promise<unknown>) =>
    async (c: Context): Promise<Response> => {
      const { value } = await readJson(c, limit);
      const req = parseBody(schema, value);
      checkModel((req as { model?: unknown }).model);
      requireReady();
      return c.json(await call(req, c.req.raw.signal));
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
      handler: (c) => c.json({ object: 'list', data: [modelCard(model, created)] }),
    },
    { method: 'POST', path: '/v1/chat/completions', access: 'protected', inference: true, handler: forward('/v1/chat/completions', chatCompletionRequest, { media: true }) },
    { method: 'POST', path: '/v1/completions', access: 'protected', inference: true, handler: forward('/v1/completions', completionRequest) },
    { method: 'POST', path: '/v1/embeddings', access: 'protected', inference: true, handler: forward('/v1/embeddings', embeddingRequest) },
    { method: 'POST', path: '/tokenize', access: 'protected', inference: false, handler: viaDialect(tokenizeRequest, (r, s) => dialectNow().tokenize(r, s)) },
    { method: 'POST', path: '/detokenize', access: 'protected', inference: false, handler: viaDialect(detokenizeRequest, (r, s) => dialectNow().detokenize(r, s)) },
    {
      method: 'POST',
      path: '/v1/chat/completions/render',
      access: 'protected',
      inference: false,
      handler: viaDialect(chatCompletionRequest, (r, s) => dialectNow().renderChat(r, s)),
    },
    {
      method: 'POST',
      path: '/v1/completions/render',
      access: 'protected',
      inference: false,
      handler: viaDialect(completionRequest, (r, s) => dialectNow().renderCompletion(r, s)),
    },
  ];

  const app = new Hono<{ Variables: AppVariables }>();
  app.use(requestId());
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
  const e = toPorticoError(err);
  for (const [k, v] of Object.entries(e.headers)) c.header(k, v);
  return c.json(e.toJSON(), e.status as 400);
}

/** Honour an incoming x-request-id (sanitized), else make one; echo it on the response. */
function requestId(): MiddlewareHandler<{ Variables: AppVariables }> {
  return async (c, next) => {
    const incoming = c.req.header('x-request-id');
    const id = incoming && /^[\w.:-]{1,128}$/.test(incoming) ? incoming : crypto.randomUUID();
    c.set('requestId', id);
    c.header('x-request-id', id);
    await next();
  };
}

/** The NIM /v1/models card (seed 000). */
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
