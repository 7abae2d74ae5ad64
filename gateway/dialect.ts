// Engines disagree on a few endpoints; clients must always see the NIM/vLLM shapes. Each dialect
// turns a validated client request into the engine call(s) and the engine's answer back.
import type { EngineDialect } from '../launcher/engines/types.js';
import { PorticoError } from './errors.js';
import type { DetokenizeRequest, TokenizeRequest } from './schemas.js';
import type { Upstream } from './upstream.js';

export interface TokenizeResult {
  count: number;
  max_model_len: number;
  tokens: number[];
  token_strs: string[] | null;
}

export interface Dialect {
  tokenize(req: TokenizeRequest, signal: AbortSignal): Promise<TokenizeResult>;
  detokenize(req: DetokenizeRequest, signal: AbortSignal): Promise<{ prompt: string }>;
  /** Chat template rendering without inference; null when the engine has none. */
  renderChat(req: Record<string, unknown>, signal: AbortSignal): Promise<unknown>;
  renderCompletion(req: Record<string, unknown>, signal: AbortSignal): Promise<unknown>;
}

const JSON_HEADERS = { 'content-type': 'application/json' };

/** POST JSON to the engine and return its JSON; engine errors keep their status and message. */
export async function postJson(up: Upstream, path: string, body: unknown, signal: AbortSignal): Promise<unknown> {
  const res = await up.request({ method: 'POST', path, headers: JSON_HEADERS, body: JSON.stringify(body), signal });
  const text = await res.body.text();
  if (res.statusCode >= 400) throw engineError(res.statusCode, text);
  try {
    return JSON.parse(text);
  } catch {
    throw new PorticoError('engine_error', `invalid JSON from the engine on ${path}`);
  }
}

/** Build the client-facing error from an engine's error body (OpenAI, vLLM or llama.cpp shape). */
export function engineError(status: number, text: string): PorticoError {
  if (status === 404) return new PorticoError('not_implemented', 'This endpoint is not supported by the running engine');
  let message = text.slice(0, 500);
  let type = 'engine_error';
  try {
    const j = JSON.parse(text) as { error?: { message?: string; type?: string } | string; message?: string; detail?: string };
    if (typeof j.error === 'object' && j.error?.message) {
      message = j.error.message;
      type = j.error.type ?? type;
    } else if (typeof j.error === 'string') message = j.error;
    else if (j.message) message = j.message;
    else if (typeof j.detail === 'string') message = j.detail;
  } catch {
    /* not JSON: keep the text */
  }
  // An engine 5xx becomes 502 (the engine failed, not the gateway); a 4xx is the client's to fix
  // and keeps its status, so the engine's own validation reads as the client's error.
  if (status >= 500) return new PorticoError('engine_error', message);
  return new PorticoError(status === 413 ? 'payload_too_large' : 'invalid_request', message, {
    status,
    type: type === 'engine_error' ? 'invalid_request_error' : type,
  });
}

/** vLLM and trtllm-serve already speak the NIM shapes: pass through. */
export function openaiDialect(up: Upstream): Dialect {
  return {
    tokenize: (req, signal) => postJson(up, '/tokenize', req, signal) as Promise<TokenizeResult>,
    detokenize: (req, signal) => postJson(up, '/detokenize', req, signal) as Promise<{ prompt: string }>,
    renderChat: (req, signal) => postJson(up, '/v1/chat/completions/render', req, signal),
    renderCompletion: (req, signal) => postJson(up, '/v1/completions/render', req, signal),
  };
}

/** llama-server: `content` in, `{tokens}` / `{content}` out, and chat rendering via /apply-template. */
export function llamaCppDialect(up: Upstream, maxModelLen: () => number): Dialect {
  const applyTemplate = async (req: Record<string, unknown>, signal: AbortSignal): Promise<string> => {
    const r = (await postJson(up, '/apply-template', { messages: req.messages, add_generation_prompt: req.add_generation_prompt ?? true }, signal)) as { prompt: string };
    return r.prompt;
  };
  return {
    async tokenize(req, signal) {
      const chat = 'messages' in req;
      const content = chat ? await applyTemplate(req, signal) : req.prompt;
      // A rendered chat prompt already holds its special tokens as text.
      const addSpecial = req.add_special_tokens ?? !chat;
      const r = (await postJson(up, '/tokenize', { content, add_special: addSpecial, parse_special: true }, signal)) as { tokens: number[] };
      return { count: r.tokens.length, max_model_len: maxModelLen(), tokens: r.tokens, token_strs: null };
    },
    async detokenize(req, signal) {
      const r = (await postJson(up, '/detokenize', { tokens: req.tokens }, signal)) as { content: string };
      return { prompt: r.content };
    },
    async renderChat(req, signal) {
      const prompt = await applyTemplate(req, signal);
      const tok = await this.tokenize({ prompt, add_special_tokens: false }, signal);
      return { prompt, prompt_token_ids: tok.tokens };
    },
    async renderCompletion(req, signal) {
      const prompt = typeof req.prompt === 'string' ? req.prompt : JSON.stringify(req.prompt);
      const tok = await this.tokenize({ prompt }, signal);
      return { prompt, prompt_token_ids: tok.tokens };
    },
  };
}

export function createDialect(kind: EngineDialect, up: Upstream, maxModelLen: () => number): Dialect {
  return kind === 'llamacpp' ? llamaCppDialect(up, maxModelLen) : openaiDialect(up);
}
