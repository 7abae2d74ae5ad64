// The routes of the translated APIs: POST /v1/responses (passed through where the engine serves
// it, translated over chat completions where it does not), GET /v1/responses/{id}, POST
// /v1/messages and /v1/messages/count_tokens. Each runs through the app's own chat call
// (callEngine), so auth, admission, rate limits, the media guard, metrics, the access log and the
// overhead header apply exactly as on /v1/chat/completions.
import type { Context } from 'hono';
import type { EngineDialect } from '../../core/engine.js';
import type { EngineAnswer, EngineCallOptions, RouteSpec } from '../app.js';
import { PorticoError } from '../../core/errors.js';
import { parseBody } from '../schemas.js';
import { SSE_HEADERS } from '../sse.js';
import { translateChatStream, type EventTranslator } from './chat-stream.js';
import { chatToMessage, countTokensRequest, countTokensToChat, messagesRequest, messagesToChat, MessagesStream } from './messages.js';
import { chatToResponse, nativeImageView, refuseStateful, responsesRequest, responsesToChat, ResponsesStream } from './responses.js';

export interface TranslateDeps {
  readBody(c: Context): Promise<{ raw: Uint8Array; value: unknown }>;
  callEngine(c: Context, path: string, body: Record<string, unknown>, raw: Uint8Array | undefined, opts?: EngineCallOptions): Promise<EngineAnswer>;
  /** The dialect of the named model's engine: vLLM (`openai`) and trtllm-serve serve /v1/responses natively. */
  dialect(model: unknown): EngineDialect;
  /** Tokens of the rendered chat prompt (model access, readiness and the media guard included). */
  countTokens(c: Context, chat: Record<string, unknown>): Promise<number>;
}

const CHAT = '/v1/chat/completions';

const parseAnswer = (bytes: Uint8Array): Record<string, unknown> => {
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new PorticoError('engine_error', 'invalid JSON from the engine');
  }
};

/** A translated answer: the stream re-emitted event by event, or the JSON translated whole. */
function reply(c: Context, answer: EngineAnswer, translator: () => EventTranslator, json: (chat: Record<string, unknown>) => unknown): Response {
  if ('stream' in answer) return c.body(answer.stream.pipeThrough(translateChatStream(translator())), 200, SSE_HEADERS);
  return c.json(json(parseAnswer(answer.json)));
}

// `media: []` on these routes: their own bodies are not chat messages; the chat body they are
// translated into goes through the media step in callEngine (`media: true`), and the native
// Responses pass-through lends it the `input_image` parts.
export function translatedRoutes(d: TranslateDeps): RouteSpec[] {
  const responses = async (c: Context): Promise<Response> => {
    const { raw, value } = await d.readBody(c);
    const req = parseBody(responsesRequest, value);
    refuseStateful(req);
    if (d.dialect(req.model) !== 'llamacpp') {
      // Served natively: passed through, input_image URLs checked and inlined by the media guard.
      const body = req as Record<string, unknown>;
      const images = nativeImageView(body);
      const media = images ? async (m: { normalize: (b: Record<string, unknown>, s?: AbortSignal) => Promise<boolean> }, signal: AbortSignal) => (await m.normalize(images.view, signal), images.apply()) : undefined;
      const answer = await d.callEngine(c, '/v1/responses', body, raw, { media });
      if ('stream' in answer) return c.body(answer.stream, 200, SSE_HEADERS);
      return c.body(answer.json, answer.status as 200, { 'content-type': 'application/json' });
    }
    const answer = await d.callEngine(c, CHAT, responsesToChat(req), undefined, { media: true, chat: true });
    return reply(c, answer, () => new ResponsesStream(req), (chat) => chatToResponse(chat, req));
  };

  const messages = async (c: Context): Promise<Response> => {
    const { value } = await d.readBody(c);
    const req = parseBody(messagesRequest, value);
    const answer = await d.callEngine(c, CHAT, messagesToChat(req), undefined, { media: true, chat: true });
    return reply(c, answer, () => new MessagesStream(req), (chat) => chatToMessage(chat, req));
  };

  const countTokens = async (c: Context): Promise<Response> => {
    const { value } = await d.readBody(c);
    const req = parseBody(countTokensRequest, value);
    return c.json({ input_tokens: await d.countTokens(c, countTokensToChat(req)) });
  };

  return [
    { method: 'POST', path: '/v1/responses', access: 'protected', inference: true, media: [], handler: responses },
    {
      method: 'GET',
      path: '/v1/responses/:id',
      access: 'protected',
      inference: false,
      handler: (c) => {
        throw new PorticoError('response_not_stored', String(c.req.param('id')).slice(0, 100));
      },
    },
    { method: 'POST', path: '/v1/messages', access: 'protected', inference: true, media: [], handler: messages },
    { method: 'POST', path: '/v1/messages/count_tokens', access: 'protected', inference: false, media: [], handler: countTokens },
  ];
}
