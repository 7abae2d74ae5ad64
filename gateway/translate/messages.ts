// The Anthropic Messages API (POST /v1/messages, /v1/messages/count_tokens) over chat completions:
// no engine portico runs serves it behind the chat pipeline, so every engine gets this
// translation. The request becomes a chat request; the chat answer (JSON or SSE chunks) becomes a
// Message or Anthropic's event stream. Errors on these routes use Anthropic's shape. Pure code.
import { z } from 'zod';
import { PorticoError } from '../../core/errors.js';
import { sseEvent, type ChatChunk, type ChatUsage, type EventTranslator, type StreamFailure } from './chat-stream.js';
import { newId } from './ids.js';

const block = z.looseObject({ type: z.string() });
const message = z.looseObject({ role: z.enum(['user', 'assistant']), content: z.union([z.string(), z.array(block)]) });

const common = {
  model: z.string().min(1),
  messages: z.array(message).min(1),
  system: z.union([z.string(), z.array(z.looseObject({ type: z.literal('text'), text: z.string() }))]).optional(),
  tools: z.array(z.looseObject({ name: z.string().min(1), type: z.string().nullish(), description: z.string().optional(), input_schema: z.record(z.string(), z.unknown()).optional() })).optional(),
  tool_choice: z.looseObject({ type: z.enum(['auto', 'any', 'tool', 'none']), name: z.string().optional(), disable_parallel_tool_use: z.boolean().optional() }).optional(),
};

export const messagesRequest = z.looseObject({
  ...common,
  max_tokens: z.number().int().min(1),
  stop_sequences: z.array(z.string()).max(16).optional(),
  stream: z.boolean().optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.number().int().min(0).optional(),
  metadata: z.looseObject({ user_id: z.string().nullish() }).optional(),
  // Structured output (Anthropic API 2026-10-21): effort is ignored, a JSON schema is enforced.
  output_config: z.looseObject({ format: z.looseObject({ type: z.literal('json_schema'), schema: z.record(z.string(), z.unknown()) }).nullish() }).optional(),
});
export const countTokensRequest = z.looseObject(common);
export type MessagesRequest = z.infer<typeof messagesRequest>;
export type CountTokensRequest = z.infer<typeof countTokensRequest>;

const bad = (param: string, message: string) => new PorticoError('invalid_parameter', `${param}: ${message}`, { param });
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

type ChatPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };
type ChatMessage = Record<string, unknown> & { role: string };

/** An Anthropic image source → the chat image_url the media guard checks. */
function imageUrl(b: Record<string, unknown>, at: string): ChatPart {
  const s = b.source;
  if (!isObj(s)) throw bad(`${at}.source`, 'is required');
  if (s.type === 'base64') {
    if (typeof s.media_type !== 'string' || typeof s.data !== 'string' || s.data === '') throw bad(`${at}.source`, 'a base64 source needs `media_type` and `data`');
    return { type: 'image_url', image_url: { url: `data:${s.media_type};base64,${s.data}` } };
  }
  if (s.type === 'url') {
    if (typeof s.url !== 'string' || s.url === '') throw bad(`${at}.source.url`, 'is required');
    return { type: 'image_url', image_url: { url: s.url } };
  }
  throw bad(`${at}.source.type`, 'must be base64 or url (portico keeps no files)');
}

/** Text of a tool_result's content (a string or text blocks). */
function toolResultText(content: unknown, at: string): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw bad(`${at}.content`, 'must be a string or an array of text blocks');
  return content
    .map((b: unknown, k) => {
      if (isObj(b) && b.type === 'text' && typeof b.text === 'string') return b.text;
      throw bad(`${at}.content[${k}].type`, 'only text blocks are supported inside a tool_result');
    })
    .join('');
}

function messagesOf(req: CountTokensRequest): ChatMessage[] {
  const out: ChatMessage[] = [];
  const system = typeof req.system === 'string' ? req.system : req.system?.map((b) => b.text).join('\n');
  if (system) out.push({ role: 'system', content: system });
  req.messages.forEach((m, i) => {
    const at = `messages[${i}]`;
    if (typeof m.content === 'string') {
      out.push({ role: m.role, content: m.content });
      return;
    }
    const parts: ChatPart[] = [];
    const calls: unknown[] = [];
    m.content.forEach((raw, j) => {
      const b = raw as Record<string, unknown>;
      const bat = `${at}.content[${j}]`;
      switch (b.type) {
        case 'text':
          if (typeof b.text !== 'string') throw bad(`${bat}.text`, 'is required and must be a string');
          parts.push({ type: 'text', text: b.text });
          break;
        case 'image':
          if (m.role !== 'user') throw bad(`${bat}.type`, 'images belong in user messages');
          parts.push(imageUrl(b, bat));
          break;
        case 'tool_use':
          if (m.role !== 'assistant') throw bad(`${bat}.type`, 'tool_use blocks belong in assistant messages');
          if (typeof b.id !== 'string' || typeof b.name !== 'string') throw bad(bat, 'a tool_use block needs `id` and `name`');
          calls.push({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } });
          break;
        case 'tool_result': {
          if (m.role !== 'user') throw bad(`${bat}.type`, 'tool_result blocks belong in user messages');
          if (typeof b.tool_use_id !== 'string') throw bad(`${bat}.tool_use_id`, 'is required');
          const text = toolResultText(b.content, bat);
          // Chat wants each result as a tool message right after the assistant's calls.
          out.push({ role: 'tool', tool_call_id: b.tool_use_id, content: b.is_error === true ? `Error: ${text}` : text });
          break;
        }
        case 'thinking':
        case 'redacted_thinking':
          break; // earlier reasoning sent back by the client: chat templates do not take it
        default:
          throw bad(`${bat}.type`, `content block type ${JSON.stringify(String(b.type)).slice(0, 60)} is not supported (text, image, tool_use, tool_result)`);
      }
    });
    if (m.role === 'assistant') {
      const text = parts.map((p) => (p.type === 'text' ? p.text : '')).join('');
      if (text || calls.length === 0) out.push({ role: 'assistant', content: text, ...(calls.length ? { tool_calls: calls } : {}) });
      else out.push({ role: 'assistant', content: null, tool_calls: calls });
    } else if (parts.length > 0) out.push({ role: 'user', content: parts.every((p) => p.type === 'text') ? parts.map((p) => (p as { text: string }).text).join('') : parts });
  });
  return out;
}

function toolsOf(req: CountTokensRequest, chat: Record<string, unknown>): void {
  if (req.tools?.length) {
    chat.tools = req.tools.map((t, i) => {
      if (t.type != null && t.type !== 'custom') throw bad(`tools[${i}].type`, `only client tools are supported (not ${JSON.stringify(t.type).slice(0, 40)})`);
      return { type: 'function', function: { name: t.name, ...(t.description ? { description: t.description } : {}), parameters: t.input_schema ?? { type: 'object' } } };
    });
  }
  const tc = req.tool_choice;
  if (tc) {
    if (tc.type === 'tool') {
      if (!tc.name) throw bad('tool_choice.name', 'is required when type is tool');
      chat.tool_choice = { type: 'function', function: { name: tc.name } };
    } else chat.tool_choice = { auto: 'auto', any: 'required', none: 'none' }[tc.type];
    if (tc.disable_parallel_tool_use) chat.parallel_tool_calls = false;
  }
}

/** A Messages request → the chat completions request that answers it. */
export function messagesToChat(req: MessagesRequest): Record<string, unknown> {
  const chat: Record<string, unknown> = { model: req.model, messages: messagesOf(req), max_tokens: req.max_tokens };
  if (req.temperature !== undefined) chat.temperature = req.temperature;
  if (req.top_p !== undefined) chat.top_p = req.top_p;
  if (req.top_k !== undefined) chat.top_k = req.top_k; // vLLM and llama.cpp both read it
  if (req.stop_sequences?.length) chat.stop = req.stop_sequences;
  if (req.metadata?.user_id) chat.user = req.metadata.user_id;
  const format = req.output_config?.format;
  if (format) chat.response_format = { type: 'json_schema', json_schema: { name: 'output', schema: format.schema } };
  toolsOf(req, chat);
  if (req.stream) {
    chat.stream = true;
    chat.stream_options = { include_usage: true };
  }
  return chat;
}

/** count_tokens → the chat messages (and tools) whose rendered prompt is counted. */
export function countTokensToChat(req: CountTokensRequest): Record<string, unknown> {
  const chat: Record<string, unknown> = { model: req.model, messages: messagesOf(req) };
  toolsOf(req, chat);
  return chat;
}

// ---------------------------------------------------------------------------------------------
// Answers

export type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use';
export type ContentBlock = { type: 'text'; text: string } | { type: 'tool_use'; id: string; name: string; input: unknown };

export interface AnthropicMessage {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: ContentBlock[];
  stop_reason: StopReason | null;
  stop_sequence: string | null;
  usage: { input_tokens: number; output_tokens: number };
}

/**
 * finish_reason → stop_reason. A stop sequence is named only when the engine says which one ended
 * the answer (vLLM's `stop_reason`); llama.cpp's chat answer does not, so it reads as end_turn.
 */
function stopOf(finish: string | null | undefined, engineStop: unknown, req: { stop_sequences?: string[] | undefined }): { reason: StopReason; sequence: string | null } {
  if (finish === 'length') return { reason: 'max_tokens', sequence: null };
  if (finish === 'tool_calls') return { reason: 'tool_use', sequence: null };
  if (typeof engineStop === 'string' && req.stop_sequences?.includes(engineStop)) return { reason: 'stop_sequence', sequence: engineStop };
  return { reason: 'end_turn', sequence: null };
}

const parseInput = (args: string | undefined): unknown => {
  if (!args) return {};
  try {
    return JSON.parse(args);
  } catch {
    return {}; // a model's malformed arguments: an empty input rather than a failed answer
  }
};

interface ChatAnswer {
  choices?: {
    message?: { content?: string | null; tool_calls?: { id?: string; function?: { name?: string; arguments?: string } }[] };
    finish_reason?: string | null;
    stop_reason?: unknown;
  }[];
  usage?: ChatUsage | null;
}

/** A chat completion → the Anthropic Message. */
export function chatToMessage(chat: ChatAnswer, req: MessagesRequest): AnthropicMessage {
  const choice = chat.choices?.[0];
  const msg = choice?.message ?? {};
  const calls = msg.tool_calls ?? [];
  const content: ContentBlock[] = [];
  if (msg.content || calls.length === 0) content.push({ type: 'text', text: msg.content ?? '' });
  for (const c of calls) content.push({ type: 'tool_use', id: c.id ?? newId('toolu'), name: c.function?.name ?? '', input: parseInput(c.function?.arguments) });
  const stop = stopOf(calls.length ? 'tool_calls' : choice?.finish_reason, choice?.stop_reason, req);
  return {
    id: newId('msg'),
    type: 'message',
    role: 'assistant',
    model: req.model,
    content,
    stop_reason: stop.reason,
    stop_sequence: stop.sequence,
    usage: { input_tokens: chat.usage?.prompt_tokens ?? 0, output_tokens: chat.usage?.completion_tokens ?? 0 },
  };
}

/**
 * Chat chunks → Anthropic's event stream: message_start, ping, then per block content_block_start,
 * content_block_delta (text_delta | input_json_delta)…, content_block_stop; message_delta (stop
 * reason, usage) and message_stop. Input tokens are known only at the end of a chat stream: they
 * are 0 in message_start and given in message_delta's usage (the SDK takes them from there).
 */
export class MessagesStream implements EventTranslator {
  private index = -1;
  private open: 'text' | 'tool_use' | undefined;
  private readonly toolBlocks = new Map<number, number>();
  private finish: string | null | undefined;
  private engineStop: unknown;
  private usage: ChatUsage | null | undefined;
  private readonly id = newId('msg');

  constructor(private readonly req: MessagesRequest) {}

  start(): string {
    const message = { id: this.id, type: 'message', role: 'assistant', model: this.req.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 0, output_tokens: 0 } };
    return sseEvent('message_start', { type: 'message_start', message }) + sseEvent('ping', { type: 'ping' });
  }

  private startBlock(kind: 'text' | 'tool_use', block: ContentBlock): string {
    const out = this.stopBlock();
    this.index++;
    this.open = kind;
    return out + sseEvent('content_block_start', { type: 'content_block_start', index: this.index, content_block: block });
  }
  private stopBlock(): string {
    if (!this.open) return '';
    this.open = undefined;
    return sseEvent('content_block_stop', { type: 'content_block_stop', index: this.index });
  }

  chunk(c: ChatChunk): string {
    let out = '';
    if (c.usage) this.usage = c.usage;
    const choice = c.choices?.[0];
    if (!choice) return out;
    const d = choice.delta ?? {};
    if (d.content) {
      if (this.open !== 'text') out += this.startBlock('text', { type: 'text', text: '' });
      out += sseEvent('content_block_delta', { type: 'content_block_delta', index: this.index, delta: { type: 'text_delta', text: d.content } });
    }
    for (const tc of d.tool_calls ?? []) {
      const key = tc.index ?? 0;
      if (!this.toolBlocks.has(key)) {
        out += this.startBlock('tool_use', { type: 'tool_use', id: tc.id ?? newId('toolu'), name: tc.function?.name ?? '', input: {} });
        this.toolBlocks.set(key, this.index);
      }
      const args = tc.function?.arguments;
      // Deltas of a call whose block is no longer the open one (interleaved calls) still name their block.
      if (args) out += sseEvent('content_block_delta', { type: 'content_block_delta', index: this.toolBlocks.get(key), delta: { type: 'input_json_delta', partial_json: args } });
    }
    if (choice.finish_reason) this.finish = choice.finish_reason;
    const extra = (choice as { stop_reason?: unknown }).stop_reason;
    if (extra !== undefined && extra !== null) this.engineStop = extra;
    return out;
  }

  end(): string {
    const stop = stopOf(this.toolBlocks.size ? 'tool_calls' : this.finish, this.engineStop, this.req);
    const usage = { input_tokens: this.usage?.prompt_tokens ?? 0, output_tokens: this.usage?.completion_tokens ?? 0 };
    return (
      this.stopBlock() +
      sseEvent('message_delta', { type: 'message_delta', delta: { stop_reason: stop.reason, stop_sequence: stop.sequence }, usage }) +
      sseEvent('message_stop', { type: 'message_stop' })
    );
  }

  fail(err: StreamFailure): string {
    const type = err.code === 'engine_unavailable' || err.code === 'too_many_requests' ? 'overloaded_error' : err.code === 'engine_timeout' ? 'timeout_error' : 'api_error';
    return sseEvent('error', { type: 'error', error: { type, message: err.message } });
  }
}

// ---------------------------------------------------------------------------------------------
// Errors on the Messages routes: `{"type":"error","error":{"type","message"}}`.

/** Anthropic's error type for a portico error (by its HTTP status). */
export function anthropicErrorType(e: PorticoError): string {
  switch (e.status) {
    case 400:
    case 405:
    case 408:
    case 415:
    case 422:
    case 431:
    case 499:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 503:
      return 'overloaded_error';
    case 504:
      return 'timeout_error';
    default:
      return 'api_error';
  }
}

export function anthropicError(e: PorticoError): { type: 'error'; error: { type: string; message: string } } {
  return { type: 'error', error: { type: anthropicErrorType(e), message: e.message } };
}

/** The routes whose errors take Anthropic's shape. */
export const isMessagesPath = (path: string): boolean => path === '/v1/messages' || path.startsWith('/v1/messages/');
