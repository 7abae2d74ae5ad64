// Forced tool calls and structured output where the engine cannot honour them itself.
//
// llama-server (this build, --jinja) renders `tools` into the prompt and parses tool calls the
// model chooses to make, but `tool_choice: "required"` or a named function is not enforced (the
// answer may be plain text), and a named function object is ignored. So, for such a request, the
// gateway asks the engine for output constrained to the tools' JSON schema — `response_format`
// json_schema, which llama.cpp compiles to a grammar — with `tool_choice: "none"` (the tools are
// still rendered into the prompt), and answers with `tool_calls` and `finish_reason: "tool_calls"`,
// as JSON or as tool-call deltas when the client streams. One call per answer: that satisfies
// `parallel_tool_calls` true (may call several) and false (at most one).
//
// Grammar-constrained decoding cannot end inside a string: a model that never closes one runs to
// max_tokens and the JSON is cut. Unbounded strings and arrays therefore get a bound that fits the
// token budget (the output still validates against the caller's schema, which had none).
//
// vLLM v0.11.0 enforces "required" and named functions itself (structured outputs), so this runs
// for the llama.cpp dialect only. The Responses/Messages routes reuse it by going through the chat
// pipeline (planChat → engine body → finish).
import { randomBytes } from 'node:crypto';
import type { EngineDialect } from '../core/engine.js';
import { PorticoError } from '../core/errors.js';

type Json = Record<string, unknown>;
interface Tool {
  type: 'function';
  function: { name: string; description?: string; parameters?: Json };
}

/** What the chat route does with one request. */
export interface ChatPlan {
  /** The body to send to the engine (the client's when `rewritten` is false). */
  engineBody: Json;
  rewritten: boolean;
  /** Set when the gateway enforces a tool call: turn the engine's JSON answer into the client's. */
  enforced?: { stream: boolean; includeUsage: boolean; names: string[] } | undefined;
}

const DEFAULT_BUDGET = 512;
const MAX_ITEMS = 4;

/** Validate tool fields (any engine) and, on llama.cpp, rewrite what the engine cannot honour. */
export function planChat(body: Json, dialect: EngineDialect): ChatPlan {
  const tools = (Array.isArray(body.tools) ? body.tools : []) as Tool[];
  const choice = body.tool_choice;
  let named: string | undefined;
  if (choice !== undefined && choice !== null && typeof choice === 'object') {
    const fn = (choice as { type?: unknown; function?: { name?: unknown } }).function;
    if ((choice as { type?: unknown }).type !== 'function' || typeof fn?.name !== 'string') {
      throw new PorticoError('invalid_parameter', 'tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}', { param: 'tool_choice' });
    }
    named = fn.name;
    if (!tools.some((t) => t.function.name === named)) throw new PorticoError('invalid_parameter', `tool_choice names function "${named}", which is not in tools`, { param: 'tool_choice.function.name' });
  }
  if ((choice === 'required' || named) && !tools.length) throw new PorticoError('invalid_parameter', `tool_choice ${named ? 'names a function' : '"required"'} but no tools were given`, { param: 'tools' });
  const forced = choice === 'required' || named !== undefined;
  if (forced && body.response_format && (body.response_format as Json).type !== 'text') {
    throw new PorticoError('invalid_parameter', 'response_format cannot be combined with a forced tool call (tool_choice "required" or a named function)', { param: 'response_format' });
  }
  if (dialect !== 'llamacpp') return { engineBody: body, rewritten: false };

  const budget = tokenBudget(body);
  if (forced) {
    const chosen = named ? tools.filter((t) => t.function.name === named) : tools;
    const schema = bound(chosen.length === 1 ? callSchema(chosen[0]!) : { anyOf: chosen.map(callSchema) }, budget);
    const engineBody: Json = { ...body, tool_choice: 'none', stream: false, response_format: { type: 'json_schema', json_schema: { name: 'tool_call', strict: true, schema } } };
    delete engineBody.stream_options;
    delete engineBody.parallel_tool_calls;
    const so = body.stream_options as { include_usage?: unknown } | undefined;
    return { engineBody, rewritten: true, enforced: { stream: body.stream === true, includeUsage: so?.include_usage === true, names: chosen.map((t) => t.function.name) } };
  }
  // Client structured output on llama.cpp: the same bound, so the grammar can finish in budget.
  const rf = body.response_format as { type?: unknown; json_schema?: { schema?: unknown } } | undefined;
  if (rf?.type === 'json_schema' && rf.json_schema && isObject(rf.json_schema.schema)) {
    return { engineBody: { ...body, response_format: { ...rf, json_schema: { ...rf.json_schema, schema: bound(rf.json_schema.schema, budget) } } }, rewritten: true };
  }
  return { engineBody: body, rewritten: false };
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function tokenBudget(body: Json): number {
  const n = body.max_completion_tokens ?? body.max_tokens;
  return typeof n === 'number' && n > 0 ? n : DEFAULT_BUDGET;
}

/** One call: {"name": <this function>, "arguments": <its parameters>}. */
function callSchema(t: Tool): Json {
  const params = isObject(t.function.parameters) && Object.keys(t.function.parameters).length ? t.function.parameters : { type: 'object', properties: {} };
  return { type: 'object', properties: { name: { const: t.function.name }, arguments: params }, required: ['name', 'arguments'], additionalProperties: false };
}

/**
 * A copy of `schema` where every unbounded string gets maxLength and every unbounded array
 * maxItems, sized so that all of them together stay within an eighth of the token budget: a
 * constrained character costs at most one token, and the rest is for keys, punctuation and the
 * whitespace llama.cpp's JSON grammar allows between tokens (up to 22 characters per separator;
 * the tiny random model used ~40-70 tokens of it on a one- to three-field call).
 */
export function bound(schema: Json, budget: number): Json {
  const slots = countStrings(schema, 1);
  const cap = Math.max(1, Math.floor(budget / 8 / Math.max(1, slots)));
  return apply(schema, cap) as Json;
}

function unboundedString(s: Json): boolean {
  return s.type === 'string' && s.maxLength === undefined && s.enum === undefined && s.const === undefined && s.pattern === undefined && s.format === undefined;
}

function countStrings(s: unknown, mult: number): number {
  if (Array.isArray(s)) return s.reduce((n: number, x) => n + countStrings(x, mult), 0);
  if (!isObject(s)) return 0;
  let n = unboundedString(s) ? mult : 0;
  for (const [k, v] of Object.entries(s)) {
    if (k === 'items') n += countStrings(v, mult * (typeof s.maxItems === 'number' ? s.maxItems : MAX_ITEMS));
    else if (k === 'properties' && isObject(v)) n += Object.values(v).reduce((m: number, x) => m + countStrings(x, mult), 0);
    else if (k === 'anyOf' || k === 'oneOf') n += Array.isArray(v) ? Math.max(0, ...v.map((x) => countStrings(x, mult))) : 0;
    else if (k === 'allOf' || k === 'additionalProperties' || k === 'prefixItems') n += countStrings(v, mult);
  }
  return n;
}

function apply(s: unknown, cap: number): unknown {
  if (Array.isArray(s)) return s.map((x) => apply(x, cap));
  if (!isObject(s)) return s;
  const out: Json = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === 'properties' && isObject(v)) out[k] = Object.fromEntries(Object.entries(v).map(([p, x]) => [p, apply(x, cap)]));
    else if (['items', 'anyOf', 'oneOf', 'allOf', 'additionalProperties', 'prefixItems'].includes(k)) out[k] = apply(v, cap);
    else out[k] = v;
  }
  if (unboundedString(s)) out.maxLength = Math.max(cap, typeof s.minLength === 'number' ? s.minLength : 0);
  if (s.type === 'array' && s.maxItems === undefined) out.maxItems = Math.max(MAX_ITEMS, typeof s.minItems === 'number' ? s.minItems : 0);
  return out;
}

// ---------------------------------------------------------------------------------------------
// the answer

interface EngineChoice {
  index?: number;
  finish_reason?: string | null;
  message?: { content?: string | null; reasoning_content?: string | null };
}

const callId = () => `call_${randomBytes(12).toString('base64url')}`;

/** The engine's constrained JSON answer → the client's chat.completion with tool_calls. */
export function toolCallCompletion(engine: Json, plan: NonNullable<ChatPlan['enforced']>): Json {
  const choices = ((engine.choices as EngineChoice[] | undefined) ?? []).map((c, i) => {
    const text = c.message?.content ?? '';
    let call: { name?: unknown; arguments?: unknown };
    try {
      call = JSON.parse(text) as typeof call;
    } catch {
      const why = c.finish_reason === 'length' ? 'ran out of max_tokens before completing it; raise max_tokens' : 'did not produce valid JSON';
      throw new PorticoError('engine_error', `the model was asked for a tool call and ${why}`);
    }
    if (typeof call.name !== 'string' || !plan.names.includes(call.name) || !isObject(call.arguments)) {
      throw new PorticoError('engine_error', 'the model was asked for a tool call and answered outside the tools\' schema');
    }
    const message: Json = {
      role: 'assistant',
      content: null,
      tool_calls: [{ id: callId(), type: 'function', function: { name: call.name, arguments: JSON.stringify(call.arguments) } }],
    };
    if (c.message?.reasoning_content) message.reasoning_content = message.reasoning = c.message.reasoning_content;
    return { index: c.index ?? i, message, logprobs: null, finish_reason: 'tool_calls' };
  });
  return { ...engine, object: 'chat.completion', choices };
}

/** The same answer as SSE events: role, the call (name, then arguments), finish, usage, [DONE]. */
export function toolCallEvents(completion: Json, plan: NonNullable<ChatPlan['enforced']>): string {
  const base = { id: completion.id, object: 'chat.completion.chunk', created: completion.created, model: completion.model, system_fingerprint: completion.system_fingerprint };
  const events: unknown[] = [];
  for (const c of completion.choices as { index: number; message: { tool_calls: { id: string; function: { name: string; arguments: string } }[] } }[]) {
    const tc = c.message.tool_calls[0]!;
    events.push({ ...base, choices: [{ index: c.index, delta: { role: 'assistant', content: null }, logprobs: null, finish_reason: null }] });
    events.push({ ...base, choices: [{ index: c.index, delta: { tool_calls: [{ index: 0, id: tc.id, type: 'function', function: { name: tc.function.name, arguments: '' } }] }, logprobs: null, finish_reason: null }] });
    events.push({ ...base, choices: [{ index: c.index, delta: { tool_calls: [{ index: 0, function: { arguments: tc.function.arguments } }] }, logprobs: null, finish_reason: null }] });
    events.push({ ...base, choices: [{ index: c.index, delta: {}, logprobs: null, finish_reason: 'tool_calls' }] });
  }
  if (plan.includeUsage && completion.usage) events.push({ ...base, choices: [], usage: completion.usage });
  return `${events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('')}data: [DONE]\n\n`;
}
