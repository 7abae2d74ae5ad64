// OpenAPI 3.1 document of portico's own API, generated from the route table (every declared route
// appears) and the zod schemas the gateway validates requests with (z.toJSONSchema). Served at
// /openapi.json, with a self-contained browsable page at /docs (no CDN: the stack is self-hosted).
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ERRORS } from '../core/errors.js';
import { API_VERSION, licenseResponse, manifestResponse, metadataResponse, modelInfoEntry, versionResponse } from './management.js';
import { chatCompletionRequest, completionRequest, detokenizeRequest, embeddingRequest, tokenizeRequest } from './schemas.js';
import { countTokensRequest, messagesRequest } from './translate/messages.js';
import { responsesRequest } from './translate/responses.js';

export interface DocumentedRoute {
  method: string;
  path: string;
  access: 'public' | 'protected' | string;
}

// Response shapes clients see (documented, not validated: they come from the engine).
const errorEnvelope = z.object({
  error: z.object({
    message: z.string(),
    type: z.string(),
    param: z.string().nullable(),
    code: z.enum(Object.keys(ERRORS) as [keyof typeof ERRORS, ...(keyof typeof ERRORS)[]]).describe('Stable machine-readable error code.'),
  }),
});
const health = z.object({ object: z.string(), message: z.string() });
const usage = z.looseObject({ prompt_tokens: z.number().int(), completion_tokens: z.number().int().optional(), total_tokens: z.number().int() });
const modelCard = z.looseObject({
  id: z.string(),
  object: z.literal('model'),
  created: z.number().int(),
  owned_by: z.string(),
  root: z.string(),
  parent: z.string().nullable(),
  max_model_len: z.number().int(),
  permission: z.array(z.looseObject({ id: z.string(), object: z.literal('model_permission') })),
});
const modelList = z.object({ object: z.literal('list'), data: z.array(modelCard) });
const chatCompletion = z.looseObject({
  id: z.string(),
  object: z.literal('chat.completion'),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.looseObject({
      index: z.number().int(),
      message: z.looseObject({ role: z.string(), content: z.string().nullable() }),
      finish_reason: z.string().nullable(),
    }),
  ),
  usage: usage.optional(),
});
const completion = z.looseObject({
  id: z.string(),
  object: z.literal('text_completion'),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(z.looseObject({ index: z.number().int(), text: z.string(), finish_reason: z.string().nullable() })),
  usage: usage.optional(),
});
const embeddingList = z.looseObject({
  object: z.literal('list'),
  data: z.array(z.looseObject({ object: z.literal('embedding'), index: z.number().int(), embedding: z.union([z.array(z.number()), z.string()]) })),
  model: z.string(),
  usage: usage.optional(),
});
const tokenizeResult = z.object({ count: z.number().int(), max_model_len: z.number().int(), tokens: z.array(z.number().int()), token_strs: z.array(z.string()).nullable() });
const detokenizeResult = z.object({ prompt: z.string() });
const renderResult = z.looseObject({ prompt: z.string(), prompt_token_ids: z.array(z.number().int()) });
const responseObject = z.looseObject({
  id: z.string(),
  object: z.literal('response'),
  created_at: z.number().int(),
  status: z.enum(['completed', 'incomplete', 'failed', 'in_progress']),
  model: z.string(),
  output: z.array(z.looseObject({ type: z.enum(['message', 'function_call', 'reasoning']), id: z.string() })),
  incomplete_details: z.looseObject({ reason: z.string() }).nullable(),
  store: z.boolean(),
  usage: z.looseObject({ input_tokens: z.number().int(), output_tokens: z.number().int(), total_tokens: z.number().int() }).nullable(),
});
const anthropicMessage = z.looseObject({
  id: z.string(),
  type: z.literal('message'),
  role: z.literal('assistant'),
  model: z.string(),
  content: z.array(z.looseObject({ type: z.enum(['text', 'tool_use']) })),
  stop_reason: z.enum(['end_turn', 'max_tokens', 'stop_sequence', 'tool_use']).nullable(),
  stop_sequence: z.string().nullable(),
  usage: z.looseObject({ input_tokens: z.number().int(), output_tokens: z.number().int() }),
});
const tokenCount = z.object({ input_tokens: z.number().int() });
const anthropicError = z.object({ type: z.literal('error'), error: z.object({ type: z.string(), message: z.string() }) }).describe('Errors on the /v1/messages routes (Anthropic shape).');

/** Named schemas: each becomes components.schemas[name]; nested uses become $refs. */
const NAMED: [string, z.ZodType][] = [
  ['ChatCompletionRequest', chatCompletionRequest],
  ['CompletionRequest', completionRequest],
  ['EmbeddingRequest', embeddingRequest],
  ['TokenizeRequest', tokenizeRequest],
  ['DetokenizeRequest', detokenizeRequest],
  ['ChatCompletion', chatCompletion],
  ['Completion', completion],
  ['EmbeddingList', embeddingList],
  ['TokenizeResult', tokenizeResult],
  ['DetokenizeResult', detokenizeResult],
  ['RenderResult', renderResult],
  ['ResponsesRequest', responsesRequest],
  ['Response', responseObject],
  ['MessagesRequest', messagesRequest],
  ['CountTokensRequest', countTokensRequest],
  ['Message', anthropicMessage],
  ['TokenCount', tokenCount],
  ['AnthropicError', anthropicError],
  ['Usage', usage],
  ['ModelCard', modelCard],
  ['ModelList', modelList],
  ['Health', health],
  ['Error', errorEnvelope],
  ['License', licenseResponse],
  ['ModelInfo', modelInfoEntry],
  ['Metadata', metadataResponse],
  ['Version', versionResponse],
  ['Manifest', manifestResponse],
];

interface OperationDoc {
  summary: string;
  tag: string;
  request?: string;
  /** A named schema, or a media type for non-JSON bodies. */
  response?: string;
  mediaType?: string;
  /** Answers text/event-stream when the request has `stream: true`. */
  stream?: boolean;
  description?: string;
  /** Errors in Anthropic's shape. */
  anthropic?: boolean;
  /** What the SSE answer carries, when it is not chat-style `data:` chunks. */
  events?: string;
}

const OPERATIONS: Record<string, OperationDoc> = {
  'GET /v1/health/live': { summary: 'Liveness probe', tag: 'Health', response: 'Health', description: '200 while the gateway runs, even before the model is loaded.' },
  'GET /v1/health/ready': { summary: 'Readiness probe', tag: 'Health', response: 'Health', description: '200 once the engine answers its health check; 503 before that and while shutting down.' },
  'GET /v1/models': { summary: 'List models', tag: 'Models', response: 'ModelList' },
  'GET /v1/models/{id}': { summary: 'One model, with its readiness', tag: 'Models', description: 'The model card as in the list, plus `ready` (and `reason` when not ready). Ids may hold slashes (`portico/tiny-vlm`).' },
  'POST /v1/chat/completions': { summary: 'Create a chat completion', tag: 'Inference', request: 'ChatCompletionRequest', response: 'ChatCompletion', stream: true, description: 'OpenAI-compatible; image_url parts (https URLs or data: URIs) on vision models.' },
  'POST /v1/completions': { summary: 'Create a completion', tag: 'Inference', request: 'CompletionRequest', response: 'Completion', stream: true },
  'POST /v1/embeddings': { summary: 'Create embeddings', tag: 'Inference', request: 'EmbeddingRequest', response: 'EmbeddingList' },
  'POST /v1/responses': { summary: 'Create a response (OpenAI Responses API)', tag: 'Inference', request: 'ResponsesRequest', response: 'Response', stream: true, description: 'Passed through to engines that serve it (vLLM, trtllm-serve); translated over chat completions on llama.cpp. Stateless: previous_response_id is refused (400), store is answered false. Streams the Responses event sequence (`event:` named SSE).', events: 'SSE, named events: response.created, response.in_progress, response.output_item.added, response.content_part.added, response.output_text.delta…, response.output_text.done, response.content_part.done, response.output_item.done (function calls: response.function_call_arguments.delta…/.done), then response.completed | response.incomplete (or error + response.failed).' },
  'GET /v1/responses/{id}': { summary: 'Retrieve a stored response', tag: 'Inference', description: 'portico keeps no responses: always 404 `response_not_stored`.' },
  'POST /v1/messages': { summary: 'Create a message (Anthropic Messages API)', tag: 'Inference', request: 'MessagesRequest', response: 'Message', stream: true, anthropic: true, description: 'Translated over chat completions on every engine. The key may be sent as `x-api-key`. Streams message_start, content_block_*, message_delta, message_stop.', events: 'SSE, named events: message_start, ping, content_block_start, content_block_delta (text_delta | input_json_delta)…, content_block_stop, message_delta (stop_reason, usage), message_stop; an `error` event if the engine fails mid-stream.' },
  'POST /v1/messages/count_tokens': { summary: 'Count the input tokens of a Messages request', tag: 'Tokens', request: 'CountTokensRequest', response: 'TokenCount', anthropic: true },
  'POST /tokenize': { summary: 'Tokenize a prompt or chat messages', tag: 'Tokens', request: 'TokenizeRequest', response: 'TokenizeResult' },
  'POST /detokenize': { summary: 'Turn token ids back into text', tag: 'Tokens', request: 'DetokenizeRequest', response: 'DetokenizeResult' },
  'POST /v1/chat/completions/render': { summary: 'Render the chat template without inference', tag: 'Tokens', request: 'ChatCompletionRequest', response: 'RenderResult' },
  'POST /v1/completions/render': { summary: 'Render a completion prompt without inference', tag: 'Tokens', request: 'CompletionRequest', response: 'RenderResult' },
  'GET /v1/metadata': { summary: 'Deployment metadata: model, selected profile, license', tag: 'Management', response: 'Metadata' },
  'GET /v1/version': { summary: 'portico release and API version', tag: 'Management', response: 'Version' },
  'GET /v1/license': { summary: 'License of the served model', tag: 'Management', response: 'License' },
  'GET /v1/manifest': { summary: 'The model manifest (YAML text)', tag: 'Management', response: 'Manifest' },
  'GET /v1/metrics': { summary: 'Prometheus metrics (gateway, NIM LLM names, engine, GPU)', tag: 'Management', mediaType: 'text/plain; version=0.0.4' },
  'GET /openapi.json': { summary: 'This document', tag: 'Management', mediaType: 'application/json' },
  'GET /docs': { summary: 'Browsable API documentation', tag: 'Management', mediaType: 'text/html' },
  'GET /playground': { summary: 'Try the served models in the browser (text, images, video; streamed)', tag: 'Management', mediaType: 'text/html' },
};

const ERROR_STATUSES: Record<string, string> = {
  '400': 'Invalid request (the `param` names the field).',
  '401': 'Missing or invalid API key.',
  '403': 'The API key may not use this model.',
  '404': 'Unknown model or route.',
  '413': 'Payload too large.',
  '429': 'Overloaded or rate-limited (see Retry-After).',
  '503': 'The engine is not ready.',
};

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

let components: Record<string, unknown> | undefined;
function componentSchemas(): Record<string, unknown> {
  if (components) return components;
  const reg = z.registry<{ id: string }>();
  for (const [id, schema] of NAMED) reg.add(schema, { id });
  const { schemas } = z.toJSONSchema(reg, { uri: (id) => `#/components/schemas/${id}`, io: 'input', unrepresentable: 'any' });
  components = Object.fromEntries(
    Object.entries(schemas).map(([id, s]) => {
      const { $schema: _s, $id: _i, ...rest } = s as Record<string, unknown>;
      return [id, rest];
    }),
  );
  return components;
}

export interface OpenApiOptions {
  release: string;
}

/** The OpenAPI 3.1 document for these routes. */
export function buildOpenApi(routes: readonly DocumentedRoute[], opts: OpenApiOptions): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.path.replace(/:(\w+)(\{[^}]*\})?/g, '{$1}');
    const key = `${r.method} ${path}`;
    const doc: OperationDoc = OPERATIONS[key] ?? { summary: key, tag: 'Other' };
    const ok: Record<string, unknown> = {};
    if (doc.response) ok['application/json'] = { schema: ref(doc.response) };
    if (doc.mediaType) ok[doc.mediaType] = { schema: { type: 'string' } };
    if (doc.stream) ok['text/event-stream'] = { schema: { type: 'string', description: doc.events ?? 'SSE: `data:` JSON chunks, the last with `usage` when `stream_options.include_usage` is set, then `data: [DONE]`.' } };
    const responses: Record<string, unknown> = {
      '200': { description: 'OK', ...(Object.keys(ok).length ? { content: ok } : {}), headers: { 'x-request-id': { schema: { type: 'string' } }, 'x-portico-overhead-ms': { schema: { type: 'string' }, description: 'Time spent in the gateway, excluding the engine (ms).' } } },
    };
    for (const [status, description] of Object.entries(ERROR_STATUSES)) {
      if (status === '401' || status === '403') {
        if (r.access === 'public') continue;
      } else if (!doc.request && ['400', '413'].includes(status)) continue;
      responses[status] = { description, content: { 'application/json': { schema: ref(doc.anthropic ? 'AnthropicError' : 'Error') } } };
    }
    const op: Record<string, unknown> = {
      operationId: operationId(r.method, path),
      summary: doc.summary,
      ...(doc.description ? { description: doc.description } : {}),
      tags: [doc.tag],
      security: r.access === 'public' ? [] : [{ bearerAuth: [] }, { apiKeyHeader: [] }],
      ...(path.includes('{') ? { parameters: [...path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } })) } : {}),
      ...(doc.request ? { requestBody: { required: true, content: { 'application/json': { schema: ref(doc.request) } } } } : {}),
      responses,
    };
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'portico',
      version: API_VERSION,
      description: `portico ${opts.release}: the NVIDIA NIM API (OpenAI-compatible inference and NIM management endpoints) in front of vLLM, TensorRT-LLM or llama.cpp.`,
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: '/' }],
    security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
    tags: [...new Set(routes.map((r) => (OPERATIONS[`${r.method} ${r.path.replace(/:(\w+)(\{[^}]*\})?/g, '{$1}')}`] ?? { tag: 'Other' }).tag))].map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'One of NIM_API_KEYS, as `Authorization: Bearer <key>`.' },
        apiKeyHeader: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'The same key as `x-api-key` (what Anthropic clients send); Authorization wins when both are sent.' },
      },
      schemas: componentSchemas(),
    },
  };
}

function operationId(method: string, path: string): string {
  const words = path.split(/[^A-Za-z0-9]+/).filter((w) => w && w !== 'v1');
  return method.toLowerCase() + words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
}

// ---------------------------------------------------------------------------------------------
// /docs: one HTML page, the document embedded as data, rendered by a small inline script that
// the Content-Security-Policy allows by hash (nothing else may run or load).

const DOCS_SCRIPT = `
const spec = JSON.parse(document.getElementById('spec').textContent);
const el = (tag, attrs, ...kids) => { const e = document.createElement(tag); Object.assign(e, attrs || {}); for (const k of kids) e.append(k); return e; };
const show = (s) => JSON.stringify(s, null, 2);
const main = document.getElementById('main');
document.title = spec.info.title + ' API';
main.append(el('h1', {}, spec.info.title + ' API ', el('small', {}, spec.info.version)), el('p', {}, spec.info.description));
main.append(el('p', {}, el('a', { href: 'playground' }, 'Try a model in the playground'), ' (text, images and video, streamed).'));
const byTag = new Map();
for (const [path, ops] of Object.entries(spec.paths)) for (const [method, op] of Object.entries(ops)) {
  const t = op.tags[0]; if (!byTag.has(t)) byTag.set(t, []); byTag.get(t).push([method, path, op]);
}
for (const [tag, ops] of byTag) {
  main.append(el('h2', {}, tag));
  for (const [method, path, op] of ops) {
    const d = el('details', { className: 'op' }, el('summary', {}, el('span', { className: 'm ' + method }, method.toUpperCase()), el('code', {}, path), ' ' + op.summary + (op.security.length ? ' \\u{1F512}' : '')));
    if (op.description) d.append(el('p', {}, op.description));
    if (op.requestBody) { const s = op.requestBody.content['application/json'].schema; d.append(el('h4', {}, 'Request body'), link(s)); }
    d.append(el('h4', {}, 'Responses'));
    for (const [status, r] of Object.entries(op.responses)) {
      const types = Object.entries(r.content || {});
      d.append(el('div', {}, el('b', {}, status + ' '), r.description + ' ', ...types.map(([t, c]) => el('span', {}, ' ', el('code', {}, t), ' ', link(c.schema)))));
    }
    main.append(d);
  }
}
function link(s) { return s.$ref ? el('a', { href: '#schema-' + s.$ref.split('/').pop() }, s.$ref.split('/').pop()) : el('span', {}, s.type || ''); }
main.append(el('h2', {}, 'Schemas'));
for (const [name, s] of Object.entries(spec.components.schemas)) main.append(el('details', { id: 'schema-' + name }, el('summary', {}, el('code', {}, name)), el('pre', {}, show(s))));
main.append(el('p', {}, el('a', { href: 'openapi.json' }, 'openapi.json')));
`;

const DOCS_STYLE = `body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1 small{font-size:.5em;color:#777}code{font:13px ui-monospace,monospace}pre{background:#f6f6f6;padding:.6rem;overflow:auto;font-size:12px}
details.op{border:1px solid #ddd;border-radius:4px;margin:.3rem 0;padding:.3rem .6rem}summary{cursor:pointer}
.m{display:inline-block;width:3.5rem;font-weight:600;font-size:12px}.get{color:#0a6}.post{color:#06c}`;

const scriptHash = createHash('sha256').update(DOCS_SCRIPT).digest('base64');

export const DOCS_CSP = `default-src 'none'; script-src 'sha256-${scriptHash}'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

/** The /docs page with the document embedded (as inert JSON, `<` escaped). */
export function docsHtml(doc: Record<string, unknown>): string {
  const data = JSON.stringify(doc).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>portico API</title><style>${DOCS_STYLE}</style></head>
<body><main id="main"></main>
<script type="application/json" id="spec">${data}</script>
<script>${DOCS_SCRIPT}</script>
</body></html>
`;
}
