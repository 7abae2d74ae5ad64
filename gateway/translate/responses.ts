// The OpenAI Responses API (POST /v1/responses) over chat completions, for engines that do not
// serve it (llama.cpp): the request becomes a chat request, the chat answer (JSON or SSE chunks)
// becomes a Response object or the Responses event stream. Pure code: no I/O.
//
// portico keeps no state: `previous_response_id`, `conversation`, `background` and item
// references are refused with a 400 naming the field; `store: true` is accepted and answered with
// `store: false` (nothing is kept), and GET /v1/responses/{id} answers 404 `response_not_stored`.
import { z } from 'zod';
import { PorticoError } from '../../core/errors.js';
import { sseEvent, type ChatChunk, type ChatUsage, type EventTranslator, type StreamFailure } from './chat-stream.js';
import { newId } from './ids.js';

const item = z.looseObject({ type: z.string().optional(), role: z.string().optional() });

export const responsesRequest = z.looseObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(item)]),
  instructions: z.string().nullish(),
  max_output_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  stream: z.boolean().nullish(),
  tools: z.array(z.looseObject({ type: z.string() })).nullish(),
  tool_choice: z.union([z.enum(['auto', 'none', 'required']), z.looseObject({ type: z.string() })]).nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  store: z.boolean().nullish(),
  previous_response_id: z.string().nullish(),
  text: z.looseObject({ format: z.looseObject({ type: z.enum(['text', 'json_object', 'json_schema']) }).optional() }).nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  user: z.string().nullish(),
});
export type ResponsesRequest = z.infer<typeof responsesRequest>;

const bad = (param: string, message: string) => new PorticoError('invalid_parameter', `${param}: ${message}`, { param });
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Fields that need state portico does not keep: refused before anything runs (both dialects). */
export function refuseStateful(req: Record<string, unknown>): void {
  if (req.previous_response_id != null) throw bad('previous_response_id', 'portico keeps no responses (stateless): send the whole conversation in `input`');
  if (req.conversation != null) throw bad('conversation', 'portico keeps no conversations (stateless): send the whole conversation in `input`');
  if (req.background === true) throw bad('background', 'background responses need stored state, which portico does not keep');
  if (req.prompt != null) throw bad('prompt', 'stored prompt templates are not supported');
}

type ChatPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string; detail?: string } };
type ChatMessage = Record<string, unknown> & { role: string };

/** input_text / input_image / output_text parts → chat parts (an unknown part type is refused). */
function parts(content: unknown, param: string, role: string): string | ChatPart[] {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw bad(param, 'must be a string or an array of content parts');
  return content.map((p: unknown, j): ChatPart => {
    const at = `${param}[${j}]`;
    if (!isObj(p)) throw bad(at, 'must be a content part object');
    switch (p.type) {
      case 'input_text':
      case 'output_text':
      case 'text':
        if (typeof p.text !== 'string') throw bad(`${at}.text`, 'is required and must be a string');
        return { type: 'text', text: p.text };
      case 'refusal':
        if (typeof p.refusal !== 'string') throw bad(`${at}.refusal`, 'must be a string');
        return { type: 'text', text: p.refusal };
      case 'input_image': {
        if (role === 'assistant') throw bad(`${at}.type`, 'an assistant message cannot hold an image');
        if (p.file_id != null) throw bad(`${at}.file_id`, 'portico keeps no files: send `image_url` (an https URL or a data: URI)');
        if (typeof p.image_url !== 'string' || p.image_url === '') throw bad(`${at}.image_url`, 'must hold an image URL or data: URI');
        const detail = typeof p.detail === 'string' && p.detail !== 'auto' ? p.detail : undefined;
        return { type: 'image_url', image_url: detail ? { url: p.image_url, detail } : { url: p.image_url } };
      }
      default:
        throw bad(`${at}.type`, `content part type ${JSON.stringify(String(p.type)).slice(0, 60)} is not supported (input_text, input_image, output_text)`);
    }
  });
}

const textOf = (c: string | ChatPart[]): string => (typeof c === 'string' ? c : c.map((p) => (p.type === 'text' ? p.text : '')).join(''));

/** `input` (a string or an item list) and `instructions` → chat messages. */
function messagesOf(req: ResponsesRequest): ChatMessage[] {
  const out: ChatMessage[] = [];
  if (req.instructions) out.push({ role: 'system', content: req.instructions });
  if (typeof req.input === 'string') {
    out.push({ role: 'user', content: req.input });
    return out;
  }
  req.input.forEach((raw, i) => {
    const it = raw as Record<string, unknown>;
    const at = `input[${i}]`;
    const type = it.type ?? 'message';
    switch (type) {
      case 'message': {
        const role = it.role === 'developer' ? 'system' : it.role;
        if (role !== 'user' && role !== 'assistant' && role !== 'system') throw bad(`${at}.role`, 'must be user, assistant, system or developer');
        const content = parts(it.content, `${at}.content`, role);
        // Chat templates take assistant and system turns as plain text.
        out.push({ role, content: role === 'user' ? content : textOf(content) });
        break;
      }
      case 'function_call': {
        if (typeof it.call_id !== 'string' || typeof it.name !== 'string') throw bad(at, 'a function_call item needs `call_id` and `name`');
        const call = { id: it.call_id, type: 'function', function: { name: it.name, arguments: typeof it.arguments === 'string' ? it.arguments : '{}' } };
        // Consecutive calls are one assistant turn with several tool_calls, as chat expects.
        const last = out.at(-1);
        if (last?.role === 'assistant' && (Array.isArray(last.tool_calls) || last.content === '' || last.content == null)) {
          last.tool_calls = [...((last.tool_calls as unknown[]) ?? []), call];
        } else out.push({ role: 'assistant', content: null, tool_calls: [call] });
        break;
      }
      case 'function_call_output': {
        if (typeof it.call_id !== 'string') throw bad(`${at}.call_id`, 'is required');
        const output = typeof it.output === 'string' ? it.output : textOf(parts(it.output, `${at}.output`, 'tool'));
        out.push({ role: 'tool', tool_call_id: it.call_id, content: output });
        break;
      }
      case 'reasoning':
        break; // earlier reasoning the client echoes back: chat templates do not take it
      case 'item_reference':
        throw bad(`${at}.type`, 'item references need stored state, which portico does not keep: send the item itself');
      default:
        throw bad(`${at}.type`, `input item type ${JSON.stringify(String(type)).slice(0, 60)} is not supported (message, function_call, function_call_output)`);
    }
  });
  if (out.length === 0 || out.every((m) => m.role === 'system')) throw bad('input', 'needs at least one message');
  return out;
}

/** A Responses request → the chat completions request that answers it. */
export function responsesToChat(req: ResponsesRequest): Record<string, unknown> {
  refuseStateful(req);
  const chat: Record<string, unknown> = { model: req.model, messages: messagesOf(req) };
  if (req.max_output_tokens != null) chat.max_tokens = req.max_output_tokens;
  if (req.temperature != null) chat.temperature = req.temperature;
  if (req.top_p != null) chat.top_p = req.top_p;
  if (req.user != null) chat.user = req.user;
  if (req.parallel_tool_calls != null) chat.parallel_tool_calls = req.parallel_tool_calls;
  if (req.tools?.length) {
    chat.tools = req.tools.map((t, i) => {
      if (t.type !== 'function') throw bad(`tools[${i}].type`, `only function tools are supported (not ${JSON.stringify(t.type).slice(0, 40)})`);
      if (typeof t.name !== 'string' || t.name === '') throw bad(`tools[${i}].name`, 'is required');
      const fn: Record<string, unknown> = { name: t.name };
      if (typeof t.description === 'string') fn.description = t.description;
      if (isObj(t.parameters)) fn.parameters = t.parameters;
      if (typeof t.strict === 'boolean') fn.strict = t.strict;
      return { type: 'function', function: fn };
    });
  }
  const tc = req.tool_choice;
  if (typeof tc === 'string') chat.tool_choice = tc;
  else if (tc) {
    if (tc.type !== 'function' || typeof tc.name !== 'string') throw bad('tool_choice', 'must be auto, none, required or {"type":"function","name":...}');
    chat.tool_choice = { type: 'function', function: { name: tc.name } };
  }
  const format = req.text?.format as Record<string, unknown> | undefined;
  if (format?.type === 'json_object') chat.response_format = { type: 'json_object' };
  else if (format?.type === 'json_schema') {
    chat.response_format = { type: 'json_schema', json_schema: { name: format.name ?? 'response', schema: format.schema ?? {}, ...(typeof format.strict === 'boolean' ? { strict: format.strict } : {}) } };
  }
  if (req.stream) {
    chat.stream = true;
    chat.stream_options = { include_usage: true };
  }
  return chat;
}

// ---------------------------------------------------------------------------------------------
// Answers

export interface ResponseUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export type OutputItem =
  | { type: 'message'; id: string; status: string; role: 'assistant'; content: { type: 'output_text'; text: string; annotations: []; logprobs: [] }[] }
  | { type: 'function_call'; id: string; call_id: string; name: string; arguments: string; status: string }
  | { type: 'reasoning'; id: string; summary: []; content: { type: 'reasoning_text'; text: string }[]; status: string };

export interface ResponseObject {
  id: string;
  object: 'response';
  created_at: number;
  status: 'in_progress' | 'completed' | 'incomplete' | 'failed';
  error: { code: string; message: string } | null;
  incomplete_details: { reason: 'max_output_tokens' } | null;
  instructions: string | null;
  max_output_tokens: number | null;
  model: string;
  output: OutputItem[];
  parallel_tool_calls: boolean;
  previous_response_id: null;
  reasoning: { effort: null; summary: null };
  store: false;
  temperature: number | null;
  text: unknown;
  tool_choice: unknown;
  tools: unknown[];
  top_p: number | null;
  truncation: 'disabled';
  usage: ResponseUsage | null;
  user: string | null;
  metadata: Record<string, string>;
}

function usageOf(u: ChatUsage | null | undefined): ResponseUsage | null {
  if (!u) return null;
  const input = u.prompt_tokens ?? 0;
  const output = u.completion_tokens ?? 0;
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: u.prompt_tokens_details?.cached_tokens ?? 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: u.total_tokens ?? input + output,
  };
}

/** The Response object before any output (what `response.created` carries). */
export function emptyResponse(req: ResponsesRequest, id = newId('resp'), createdAt = Math.floor(Date.now() / 1000)): ResponseObject {
  return {
    id,
    object: 'response',
    created_at: createdAt,
    status: 'in_progress',
    error: null,
    incomplete_details: null,
    instructions: req.instructions ?? null,
    max_output_tokens: req.max_output_tokens ?? null,
    model: req.model,
    output: [],
    parallel_tool_calls: req.parallel_tool_calls ?? true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: req.temperature ?? null,
    text: req.text ?? { format: { type: 'text' } },
    tool_choice: req.tool_choice ?? 'auto',
    tools: req.tools ?? [],
    top_p: req.top_p ?? null,
    truncation: 'disabled',
    usage: null,
    user: req.user ?? null,
    metadata: req.metadata ?? {},
  };
}

/** Status from the chat finish_reason: `length` means max_output_tokens cut the answer. */
function settle(r: ResponseObject, finish: string | null | undefined, usage: ChatUsage | null | undefined): ResponseObject {
  r.status = finish === 'length' ? 'incomplete' : 'completed';
  r.incomplete_details = finish === 'length' ? { reason: 'max_output_tokens' } : null;
  r.usage = usageOf(usage);
  return r;
}

interface ChatAnswer {
  choices?: {
    message?: { content?: string | null; reasoning_content?: string | null; tool_calls?: { id?: string; function?: { name?: string; arguments?: string } }[] };
    finish_reason?: string | null;
  }[];
  usage?: ChatUsage | null;
}

/** A chat completion → the Response object. */
export function chatToResponse(chat: ChatAnswer, req: ResponsesRequest): ResponseObject {
  const r = emptyResponse(req);
  const choice = chat.choices?.[0];
  const msg = choice?.message ?? {};
  if (msg.reasoning_content) r.output.push({ type: 'reasoning', id: newId('rs'), summary: [], content: [{ type: 'reasoning_text', text: msg.reasoning_content }], status: 'completed' });
  const calls = msg.tool_calls ?? [];
  if (msg.content || calls.length === 0) {
    r.output.push({ type: 'message', id: newId('msg'), status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: msg.content ?? '', annotations: [], logprobs: [] }] });
  }
  for (const call of calls) {
    r.output.push({ type: 'function_call', id: newId('fc'), call_id: call.id ?? newId('call'), name: call.function?.name ?? '', arguments: call.function?.arguments ?? '', status: 'completed' });
  }
  return settle(r, choice?.finish_reason, chat.usage);
}

/**
 * Chat chunks → the Responses event stream, as OpenAI sends it: response.created,
 * response.in_progress, then per output item output_item.added, (content_part.added,
 * output_text.delta…, output_text.done, content_part.done | function_call_arguments.delta…,
 * function_call_arguments.done), output_item.done; last response.completed (or .incomplete when
 * max_output_tokens cut it; `error` and response.failed when the engine failed mid-stream).
 */
export class ResponsesStream implements EventTranslator {
  private seq = 0;
  private readonly r: ResponseObject;
  /** The open message or reasoning item (text deltas go there); function calls stay open to the end. */
  private open: { index: number; item: Extract<OutputItem, { type: 'message' | 'reasoning' }> } | undefined;
  private readonly calls = new Map<number, { index: number; item: Extract<OutputItem, { type: 'function_call' }> }>();
  private finish: string | null | undefined;
  private usage: ChatUsage | null | undefined;

  constructor(req: ResponsesRequest) {
    this.r = emptyResponse(req);
  }

  private ev(type: string, fields: Record<string, unknown>): string {
    return sseEvent(type, { type, sequence_number: this.seq++, ...fields });
  }
  private snapshot(): ResponseObject {
    return structuredClone(this.r);
  }

  start(): string {
    return this.ev('response.created', { response: this.snapshot() }) + this.ev('response.in_progress', { response: this.snapshot() });
  }

  chunk(c: ChatChunk): string {
    let out = '';
    if (c.usage) this.usage = c.usage;
    const choice = c.choices?.[0];
    if (!choice) return out;
    const d = choice.delta ?? {};
    if (d.reasoning_content) out += this.text('reasoning', d.reasoning_content);
    if (d.content) out += this.text('message', d.content);
    for (const tc of d.tool_calls ?? []) out += this.toolCall(tc);
    if (choice.finish_reason) this.finish = choice.finish_reason;
    return out;
  }

  private text(kind: 'message' | 'reasoning', delta: string): string {
    let out = '';
    if (this.open?.item.type !== kind) {
      out += this.closeOpen();
      const index = this.r.output.length;
      const item: Extract<OutputItem, { type: 'message' | 'reasoning' }> =
        kind === 'message'
          ? { type: 'message', id: newId('msg'), status: 'in_progress', role: 'assistant', content: [] }
          : { type: 'reasoning', id: newId('rs'), summary: [], content: [], status: 'in_progress' };
      this.r.output.push(item);
      this.open = { index, item };
      out += this.ev('response.output_item.added', { output_index: index, item: structuredClone(item) });
      const part = kind === 'message' ? { type: 'output_text', text: '', annotations: [], logprobs: [] } : { type: 'reasoning_text', text: '' };
      out += this.ev('response.content_part.added', { item_id: item.id, output_index: index, content_index: 0, part });
      (item.content as { text: string }[]).push(structuredClone(part) as never);
    }
    const { index, item } = this.open!;
    (item.content[0] as { text: string }).text += delta;
    const name = kind === 'message' ? 'response.output_text.delta' : 'response.reasoning_text.delta';
    return out + this.ev(name, { item_id: item.id, output_index: index, content_index: 0, delta, ...(kind === 'message' ? { logprobs: [] } : {}) });
  }

  private closeOpen(): string {
    const o = this.open;
    if (!o) return '';
    this.open = undefined;
    const { index, item } = o;
    const part = item.content[0]!;
    item.status = 'completed';
    const base = { item_id: item.id, output_index: index, content_index: 0 };
    const done = item.type === 'message' ? this.ev('response.output_text.done', { ...base, text: part.text, logprobs: [] }) : this.ev('response.reasoning_text.done', { ...base, text: part.text });
    return done + this.ev('response.content_part.done', { ...base, part: structuredClone(part) }) + this.ev('response.output_item.done', { output_index: index, item: structuredClone(item) });
  }

  private toolCall(tc: NonNullable<NonNullable<NonNullable<ChatChunk['choices']>[number]['delta']>['tool_calls']>[number]): string {
    let out = '';
    const key = tc.index ?? 0;
    let call = this.calls.get(key);
    if (!call) {
      out += this.closeOpen();
      const index = this.r.output.length;
      const item = { type: 'function_call' as const, id: newId('fc'), call_id: tc.id ?? newId('call'), name: tc.function?.name ?? '', arguments: '', status: 'in_progress' };
      this.r.output.push(item);
      this.calls.set(key, (call = { index, item }));
      out += this.ev('response.output_item.added', { output_index: index, item: structuredClone(item) });
    } else if (tc.function?.name && !call.item.name) call.item.name = tc.function.name;
    const delta = tc.function?.arguments;
    if (delta) {
      call.item.arguments += delta;
      out += this.ev('response.function_call_arguments.delta', { item_id: call.item.id, output_index: call.index, delta });
    }
    return out;
  }

  end(): string {
    let out = this.closeOpen();
    for (const { index, item } of this.calls.values()) {
      item.status = 'completed';
      out += this.ev('response.function_call_arguments.done', { item_id: item.id, output_index: index, name: item.name, arguments: item.arguments });
      out += this.ev('response.output_item.done', { output_index: index, item: structuredClone(item) });
    }
    settle(this.r, this.finish, this.usage);
    const type = this.r.status === 'incomplete' ? 'response.incomplete' : 'response.completed';
    return out + this.ev(type, { response: this.snapshot() });
  }

  /**
   * An `error` event (the openai SDK's stream helpers reject with it), then `response.failed`, the
   * final state, for clients that read the events themselves.
   */
  fail(err: StreamFailure): string {
    this.r.status = 'failed';
    this.r.error = { code: 'server_error', message: err.message };
    this.r.usage = usageOf(this.usage);
    return this.ev('error', { code: err.code ?? 'server_error', message: err.message, param: null }) + this.ev('response.failed', { response: this.snapshot() });
  }
}

/**
 * input_image URLs of a Responses request the engine serves natively (vLLM, trtllm): the media
 * guard works on chat `image_url` parts, so each input_image is lent to it as one and the checked
 * data: URI written back. Returns a chat-shaped view and a function that applies its result.
 */
export function nativeImageView(body: Record<string, unknown>): { view: Record<string, unknown>; apply(): boolean } | undefined {
  const found: { part: Record<string, unknown>; chat: { type: 'image_url'; image_url: { url: string } } }[] = [];
  const input = body.input;
  if (!Array.isArray(input)) return undefined;
  for (const it of input) {
    const content = isObj(it) ? it.content : undefined;
    if (!Array.isArray(content)) continue;
    for (const p of content) {
      if (isObj(p) && p.type === 'input_image' && typeof p.image_url === 'string') found.push({ part: p, chat: { type: 'image_url', image_url: { url: p.image_url } } });
    }
  }
  if (found.length === 0) return undefined;
  return {
    view: { messages: [{ role: 'user', content: found.map((f) => f.chat) }] },
    apply() {
      let changed = false;
      for (const f of found) {
        if (f.part.image_url !== f.chat.image_url.url) {
          f.part.image_url = f.chat.image_url.url;
          changed = true;
        }
      }
      return changed;
    },
  };
}
