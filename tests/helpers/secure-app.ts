// The app (createApp) in front of a fake engine that answers every engine route, for the auth,
// limits and fuzz tests: in-process requests with app.request(), or over a socket with listen().
import type { ServerResponse } from 'node:http';
import { createApp, type AppDeps } from '../../gateway/app.js';
import { Upstream } from '../../gateway/upstream.js';
import { chunk, completion, fakeEngine, type FakeEngine, type Received } from './fake-engine.js';

export const MODEL = { id: 'test-model', root: '/models/test', maxModelLen: 4096 };

export interface Rig {
  engine: FakeEngine;
  upstream: Upstream;
  make(over?: Partial<AppDeps> & { settings?: AppDeps['settings'] }): ReturnType<typeof createApp>;
  close(): Promise<void>;
}

const json = (res: ServerResponse, body: unknown, status = 200) =>
  void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

/** Answers like an OpenAI-compatible engine: JSON, or SSE with a usage chunk when stream=true. */
export function answerAll(engine: FakeEngine): void {
  const parse = (q: Received): Record<string, unknown> => {
    try {
      return JSON.parse(q.body) as Record<string, unknown>;
    } catch {
      return {};
    }
  };
  const gen = (q: Received, res: ServerResponse) => {
    const body = parse(q);
    if (body.stream === true) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk('a'));
      res.write(chunk('b', 'stop'));
      res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } })}\n\n`);
      res.end('data: [DONE]\n\n');
      return;
    }
    json(res, completion('hi'));
  };
  engine.on('/v1/chat/completions', gen);
  engine.on('/v1/completions', gen);
  engine.on('/v1/embeddings', (_q, res) =>
    json(res, { object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }], model: 'test-model', usage: { prompt_tokens: 2, total_tokens: 2 } }),
  );
  engine.on('/tokenize', (_q, res) => json(res, { count: 2, max_model_len: 4096, tokens: [1, 2], token_strs: null }));
  engine.on('/detokenize', (_q, res) => json(res, { prompt: 'ab' }));
  // vLLM serves the Responses API natively (the openai dialect passes it through).
  engine.on('/v1/responses', (_q, res) => json(res, { id: 'resp_1', object: 'response', status: 'completed', output: [] }));
  engine.on('/v1/chat/completions/render', (_q, res) => json(res, { prompt: 'x', prompt_token_ids: [1] }));
  engine.on('/v1/completions/render', (_q, res) => json(res, { prompt: 'x', prompt_token_ids: [1] }));
}

export async function rig(): Promise<Rig> {
  const engine = await fakeEngine();
  answerAll(engine);
  const upstream = new Upstream(engine.url);
  return {
    engine,
    upstream,
    make: (over = {}) =>
      createApp({
        model: MODEL,
        upstream,
        engine: { dialect: 'openai' },
        readiness: { isReady: () => true, reason: () => '' },
        ...over,
        settings: { maxRequestBytes: 64 * 1024, ...over.settings },
      }),
    async close() {
      await upstream.close();
      await engine.close();
    },
  };
}

/** A plausible valid body for a POST route (unknown routes get a bare model). */
export function sampleBody(path: string, model = MODEL.id): Record<string, unknown> {
  const chat = { model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 };
  switch (path) {
    case '/v1/chat/completions':
    case '/v1/chat/completions/render':
    case '/v1/messages':
    case '/v1/messages/count_tokens':
      return chat;
    case '/v1/responses':
      return { model, input: 'hi', max_output_tokens: 4 };
    case '/v1/completions':
    case '/v1/completions/render':
      return { model, prompt: 'hi', max_tokens: 4 };
    case '/v1/embeddings':
      return { model, input: 'hi' };
    case '/tokenize':
      return { model, prompt: 'hi' };
    case '/detokenize':
      return { model, tokens: [1, 2] };
    default:
      return { model };
  }
}

/** Read a whole response body as text (SSE included). */
export const text = (res: Response) => res.text();

export function isEnvelope(v: unknown): boolean {
  const e = (v as { error?: Record<string, unknown> } | null)?.error;
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof e.message === 'string' &&
    typeof e.type === 'string' &&
    typeof e.code === 'string' &&
    (e.param === null || typeof e.param === 'string')
  );
}
