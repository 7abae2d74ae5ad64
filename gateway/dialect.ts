// Engines disagree on a few endpoints; clients must always see the NIM/vLLM shapes. Each dialect
// turns a validated client request into the engine call(s) and the engine's answer back.
import type { EngineDialect } from '../core/engine.js';
import { PorticoError, redactEngineMessage } from '../core/errors.js';
import type { DetokenizeRequest, TokenizeRequest } from './schemas.js';
import type { Upstream } from './upstream.js';

export interface TokenizeResult {
  count: number;
  max_model_len: number;
  tokens: number[];
  token_strs: string[] | null;
}

/** One client request's engine calls: its abort signal and its id (forwarded as x-request-id). */
export interface EngineCall {
  signal: AbortSignal;
  requestId?: string | undefined;
}

export interface Dialect {
  tokenize(req: TokenizeRequest, call: EngineCall): Promise<TokenizeResult>;
  detokenize(req: DetokenizeRequest, call: EngineCall): Promise<{ prompt: string }>;
  /** Chat template rendering without inference; null when the engine has none. */
  renderChat(req: Record<string, unknown>, call: EngineCall): Promise<unknown>;
  renderCompletion(req: Record<string, unknown>, call: EngineCall): Promise<unknown>;
}

const JSON_HEADERS = { 'content-type': 'application/json' };

/** POST JSON to the engine and return its JSON; engine errors keep their status and message. */
export async function postJson(up: Upstream, path: string, body: unknown, call: EngineCall): Promise<unknown> {
  const headers = call.requestId ? { ...JSON_HEADERS, 'x-request-id': call.requestId } : JSON_HEADERS;
  const res = await up.request({ method: 'POST', path, headers, body: JSON.stringify(body), signal: call.signal });
  const text = await res.body.text();
  if (res.statusCode >= 400) throw engineError(res.statusCode, text);
  try {
    return JSON.parse(text);
  } catch {
    throw new PorticoError('engine_error', `invalid JSON from the engine on ${path}`);
  }
}

/**
 * Build the client-facing error from an engine's error body (OpenAI, vLLM or llama.cpp shape).
 * Status mapping (README "Errors"): 404 → 501 not_implemented; 401/403 (the engine refusing the
 * gateway itself) → 502; 413 → 413; 422 → 422; 429 → 429 + Retry-After; 503 → 503; 504 → 504;
 * other 5xx → 502; other 4xx keep their status as invalid_request. Messages are redacted
 * (first line, no URLs, addresses, paths or tracebacks).
 */
export function engineError(status: number, text: string): PorticoError {
  if (status === 404) return new PorticoError('not_implemented', 'This endpoint is not supported by the running engine');
  let message = text;
  let type: string | undefined;
  try {
    const j = JSON.parse(text) as { error?: { message?: unknown; type?: unknown } | string; message?: unknown; detail?: unknown };
    if (typeof j.error === 'object' && j.error !== null && typeof j.error.message === 'string') {
      message = j.error.message;
      if (typeof j.error.type === 'string') type = j.error.type;
    } else if (typeof j.error === 'string') message = j.error;
    else if (typeof j.message === 'string') message = j.message;
    else if (typeof j.detail === 'string') message = j.detail;
  } catch {
    /* not JSON: keep the text */
  }
  message = redactEngineMessage(message);
  // An engine 5xx becomes 502 (the engine failed, not the gateway), except "unavailable" and
  // "timeout", which keep their meaning; a 4xx is the client's to fix and keeps its status, so the
  // engine's own validation reads as the client's error. An engine refusing the gateway's
  // credentials is the operator's problem, never the client's 401.
  if (status === 503) return new PorticoError('engine_unavailable', message);
  if (status === 504) return new PorticoError('engine_timeout', message);
  if (status >= 500 || status === 401 || status === 403 || status < 400) return new PorticoError('engine_error', message);
  if (status === 429) return new PorticoError('too_many_requests', `The engine is at capacity: ${message}`, { headers: { 'retry-after': '1' } });
  const code = status === 413 ? 'payload_too_large' : status === 422 ? 'unprocessable_entity' : 'invalid_request';
  return new PorticoError(code, message, {
    status,
    type: type === undefined || type === 'engine_error' ? 'invalid_request_error' : type.slice(0, 64),
  });
}

/**
 * vLLM (v0.11.0) speaks the NIM tokenize shapes: pass through. It has no render routes (added to
 * vLLM after v0.11.0), so render is its /tokenize (which applies the chat template to `messages`)
 * followed by /detokenize of those ids: the same prompt text and ids a render route returns.
 */
export function openaiDialect(up: Upstream): Dialect {
  const tokenize = (req: TokenizeRequest | Record<string, unknown>, call: EngineCall) => postJson(up, '/tokenize', req, call) as Promise<TokenizeResult>;
  const render = async (req: Record<string, unknown>, call: EngineCall) => {
    const tok = await tokenize(req, call);
    const { prompt } = (await postJson(up, '/detokenize', { model: req.model, tokens: tok.tokens }, call)) as { prompt: string };
    return { prompt, prompt_token_ids: tok.tokens };
  };
  return {
    tokenize,
    detokenize: (req, call) => postJson(up, '/detokenize', req, call) as Promise<{ prompt: string }>,
    renderChat: render,
    renderCompletion: render,
  };
}

/** trtllm-serve 1.3.0rc3 has no /tokenize, /detokenize or render routes: say so, clearly. */
export function trtllmDialect(): Dialect {
  const missing = (what: string) => () =>
    Promise.reject(new PorticoError('not_implemented', `${what} is not available with the TensorRT-LLM engine (trtllm-serve 1.3.0rc3 has no such route)`));
  return {
    tokenize: missing('Tokenization'),
    detokenize: missing('Detokenization'),
    renderChat: missing('Prompt rendering'),
    renderCompletion: missing('Prompt rendering'),
  };
}

/** llama-server: `content` in, `{tokens}` / `{content}` out, and chat rendering via /apply-template. */
export function llamaCppDialect(up: Upstream, maxModelLen: () => number): Dialect {
  const applyTemplate = async (req: Record<string, unknown>, call: EngineCall): Promise<string> => {
    const r = (await postJson(up, '/apply-template', { messages: req.messages, ...(req.tools ? { tools: req.tools } : {}), add_generation_prompt: req.add_generation_prompt ?? true }, call)) as { prompt: string };
    return r.prompt;
  };
  return {
    async tokenize(req, call) {
      const chat = 'messages' in req;
      const content = chat ? await applyTemplate(req, call) : req.prompt;
      // A rendered chat prompt already holds its special tokens as text.
      const addSpecial = req.add_special_tokens ?? !chat;
      const r = (await postJson(up, '/tokenize', { content, add_special: addSpecial, parse_special: true }, call)) as { tokens: number[] };
      return { count: r.tokens.length, max_model_len: maxModelLen(), tokens: r.tokens, token_strs: null };
    },
    async detokenize(req, call) {
      const r = (await postJson(up, '/detokenize', { tokens: req.tokens }, call)) as { content: string };
      return { prompt: r.content };
    },
    async renderChat(req, call) {
      const prompt = await applyTemplate(req, call);
      const tok = await this.tokenize({ prompt, add_special_tokens: false }, call);
      return { prompt, prompt_token_ids: tok.tokens };
    },
    async renderCompletion(req, call) {
      const prompt = typeof req.prompt === 'string' ? req.prompt : JSON.stringify(req.prompt);
      const tok = await this.tokenize({ prompt }, call);
      return { prompt, prompt_token_ids: tok.tokens };
    },
  };
}

export function createDialect(kind: EngineDialect, up: Upstream, maxModelLen: () => number): Dialect {
  if (kind === 'llamacpp') return llamaCppDialect(up, maxModelLen);
  return kind === 'trtllm' ? trtllmDialect() : openaiDialect(up);
}
