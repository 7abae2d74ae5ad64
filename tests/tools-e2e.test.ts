// Tools and structured output end to end on the CPU stack (real llama-server, the tiny model with
// its tools-capable template) through real clients: the openai SDK, LangChain's bindTools and the
// Vercel AI SDK. The tiny model has random weights: a forced tool call is valid only because the
// gateway constrains the engine's output to the tools' schema (gateway/tools.ts).
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { ChatOpenAI } from '@langchain/openai';
import { generateText, jsonSchema, tool } from 'ai';
import { Ajv } from 'ajv';
import OpenAI from 'openai';
import type { ChatCompletionTool } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './helpers/stack.js';

const MODEL = 'portico/tiny-vlm';
let stack: Stack;
let client: OpenAI;

beforeAll(async () => {
  stack = await startStack();
  client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
}, 90_000);
afterAll(async () => {
  await stack?.stop();
});

const WEATHER = {
  type: 'object',
  properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] }, days: { type: 'integer' } },
  required: ['city', 'unit'],
  additionalProperties: false,
} as const;
const TIME = { type: 'object', properties: { timezone: { type: 'string' } }, required: ['timezone'] } as const;
const TOOLS: ChatCompletionTool[] = [
  { type: 'function', function: { name: 'get_weather', description: 'Current weather in a city', parameters: WEATHER } },
  { type: 'function', function: { name: 'get_time', description: 'Current time in a timezone', parameters: TIME } },
];
const ajv = new Ajv({ strict: false });
const validates = (schema: object, args: unknown) => ajv.validate(schema, args) || ajv.errorsText();
const schemaOf = (name: string) => (name === 'get_weather' ? WEATHER : TIME);
const user = (content: string) => [{ role: 'user' as const, content }];

describe('openai SDK: tool_choice (enforced by the gateway on llama.cpp)', () => {
  it('"required": a tool call whose arguments are JSON valid against that tool’s schema, finish_reason tool_calls', async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages: user('Weather in Paris?'), tools: TOOLS, tool_choice: 'required', max_tokens: 160, temperature: 0 });
    const choice = r.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    const calls = choice.message.tool_calls!;
    expect(calls).toHaveLength(1);
    const call = calls[0]!;
    expect(call.type).toBe('function');
    if (call.type !== 'function') return;
    expect(call.id).toMatch(/^call_/);
    expect(['get_weather', 'get_time']).toContain(call.function.name);
    expect(validates(schemaOf(call.function.name), JSON.parse(call.function.arguments))).toBe(true);
  }, 60_000);

  it('a named function: that function, valid arguments; parallel_tool_calls false gives exactly one call', async () => {
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: user('What time is it in Tokyo?'),
      tools: TOOLS,
      tool_choice: { type: 'function', function: { name: 'get_time' } },
      parallel_tool_calls: false,
      max_tokens: 160, temperature: 0,
    });
    const call = r.choices[0]!.message.tool_calls![0]!;
    expect(r.choices[0]!.message.tool_calls).toHaveLength(1);
    expect(r.choices[0]!.finish_reason).toBe('tool_calls');
    if (call.type !== 'function') throw new Error('not a function call');
    expect(call.function.name).toBe('get_time');
    expect(validates(TIME, JSON.parse(call.function.arguments))).toBe(true);
    expect(r.usage!.completion_tokens).toBeGreaterThan(0);
  }, 60_000);

  it('streamed: tool-call deltas assemble into one valid call, then finish_reason tool_calls and usage', async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: user('Weather in Oslo?'),
      tools: TOOLS,
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 160, temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let name = '';
    let args = '';
    let id = '';
    let finish: string | null = null;
    let usage = 0;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage.total_tokens;
      const c = chunk.choices[0];
      if (!c) continue;
      for (const d of c.delta.tool_calls ?? []) {
        expect(d.index).toBe(0);
        id ||= d.id ?? '';
        name += d.function?.name ?? '';
        args += d.function?.arguments ?? '';
      }
      finish = c.finish_reason ?? finish;
    }
    expect([name, finish]).toEqual(['get_weather', 'tool_calls']);
    expect(id).toMatch(/^call_/);
    expect(validates(WEATHER, JSON.parse(args))).toBe(true);
    expect(usage).toBeGreaterThan(0);
  }, 60_000);

  it('"auto": the engine renders the tools into the prompt (more prompt tokens) and answers', async () => {
    const plain = await client.chat.completions.create({ model: MODEL, messages: user('Hi'), max_tokens: 8 });
    const withTools = await client.chat.completions.create({ model: MODEL, messages: user('Hi'), tools: TOOLS, tool_choice: 'auto', max_tokens: 8 });
    expect(withTools.usage!.prompt_tokens).toBeGreaterThan(plain.usage!.prompt_tokens + 100);
    expect(['stop', 'length', 'tool_calls']).toContain(withTools.choices[0]!.finish_reason);
  }, 60_000);

  it('a tool result (role tool, tool_call_id) round-trips into the next prompt', async () => {
    const first = await client.chat.completions.create({ model: MODEL, messages: user('Weather in Rome?'), tools: TOOLS, tool_choice: 'required', max_tokens: 160, temperature: 0 });
    const call = first.choices[0]!.message.tool_calls![0]!;
    const result = 'sunny, 24 degrees';
    const history = [...user('Weather in Rome?'), first.choices[0]!.message, { role: 'tool' as const, tool_call_id: call.id, content: result }];
    const next = await client.chat.completions.create({ model: MODEL, messages: history, tools: TOOLS, max_tokens: 8 });
    expect(['stop', 'length', 'tool_calls']).toContain(next.choices[0]!.finish_reason);
    // The rendered prompt carries the call and its result where the template puts them.
    const render = (await (await fetch(`${stack.url}/v1/chat/completions/render`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, messages: history }) })).json()) as { prompt: string };
    if (call.type !== 'function') throw new Error('not a function call');
    expect(render.prompt).toContain(`<tool_call>\n{"name": "${call.function.name}", "arguments": `);
    expect(render.prompt).toContain(`<|im_start|>user\n<tool_response>\n${result}\n</tool_response><|im_end|>\n<|im_start|>assistant\n`);
    // The next prompt is longer than the first by at least the result's characters.
    expect(next.usage!.prompt_tokens).toBeGreaterThan(first.usage!.prompt_tokens + result.length / 2);
  }, 90_000);

  it('bad tool requests: the OpenAI error envelope, naming the field', async () => {
    const bad = async (extra: Record<string, unknown>) => {
      const res = await fetch(`${stack.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, messages: user('x'), max_tokens: 4, ...extra }) });
      return [res.status, ((await res.json()) as { error: { param: string | null; code: string } }).error] as const;
    };
    expect(await bad({ tools: TOOLS, tool_choice: { type: 'function', function: { name: 'nope' } } })).toEqual([400, expect.objectContaining({ param: 'tool_choice.function.name', code: 'invalid_parameter' })]);
    expect(await bad({ tool_choice: 'required' })).toEqual([400, expect.objectContaining({ param: 'tools', code: 'invalid_parameter' })]);
    expect(await bad({ tools: TOOLS, tool_choice: { type: 'function' } })).toEqual([400, expect.objectContaining({ param: 'tool_choice', code: 'invalid_parameter' })]);
    expect(await bad({ tools: TOOLS, tool_choice: 'required', response_format: { type: 'json_object' } })).toEqual([400, expect.objectContaining({ param: 'response_format' })]);
  }, 30_000);
});

describe('openai SDK: response_format', () => {
  it('json_schema: the content is JSON valid against the schema', async () => {
    const schema = { type: 'object', properties: { answer: { type: 'string' }, score: { type: 'integer' }, tags: { type: 'array', items: { type: 'string' } } }, required: ['answer', 'score', 'tags'], additionalProperties: false };
    const r = await client.chat.completions.create({ model: MODEL, messages: user('Rate this'), response_format: { type: 'json_schema', json_schema: { name: 'rating', schema, strict: true } }, max_tokens: 128 });
    expect(r.choices[0]!.finish_reason).toBe('stop');
    expect(validates(schema, JSON.parse(r.choices[0]!.message.content!))).toBe(true);
  }, 60_000);

  it('json_object: the content is a JSON object', async () => {
    const r = await client.chat.completions.create({ model: MODEL, messages: user('JSON please'), response_format: { type: 'json_object' }, max_tokens: 160, temperature: 0 });
    const v = JSON.parse(r.choices[0]!.message.content!) as unknown;
    expect(typeof v === 'object' && v !== null && !Array.isArray(v)).toBe(true);
  }, 60_000);
});

describe('LangChain JS (@langchain/openai) bindTools', () => {
  it('tool_choice "any" (required) and a named tool: tool_calls with parsed, valid args', async () => {
    const llm = new ChatOpenAI({ model: MODEL, apiKey: 'unused', configuration: { baseURL: `${stack.url}/v1` }, maxTokens: 160, temperature: 0, maxRetries: 0 });
    const weather = { type: 'function' as const, function: { name: 'get_weather', description: 'Current weather in a city', parameters: WEATHER } };
    const time = { type: 'function' as const, function: { name: 'get_time', description: 'Current time in a timezone', parameters: TIME } };
    const anyCall = await llm.bindTools([weather, time], { tool_choice: 'any' }).invoke('Weather in Lima?');
    expect(anyCall.tool_calls).toHaveLength(1);
    const c = anyCall.tool_calls![0]!;
    expect(validates(schemaOf(c.name), c.args)).toBe(true);
    const named = await llm.bindTools([weather, time], { tool_choice: 'get_weather' }).invoke('Weather in Lima?');
    expect(named.tool_calls![0]!.name).toBe('get_weather');
    expect(validates(WEATHER, named.tool_calls![0]!.args)).toBe(true);
    expect(named.response_metadata.finish_reason).toBe('tool_calls');
  }, 90_000);
});

describe('Vercel AI SDK (ai + @ai-sdk/openai-compatible)', () => {
  it('toolChoice "required": a tool call with valid input, no AI_ToolChoiceViolationError', async () => {
    const provider = createOpenAICompatible({ name: 'portico', baseURL: `${stack.url}/v1`, apiKey: 'unused' });
    const result = await generateText({
      model: provider(MODEL),
      prompt: 'Weather in Cairo?',
      tools: {
        get_weather: tool({ description: 'Current weather in a city', inputSchema: jsonSchema<{ city: string; unit: string }>(WEATHER) }),
        get_time: tool({ description: 'Current time in a timezone', inputSchema: jsonSchema<{ timezone: string }>(TIME) }),
      },
      toolChoice: 'required',
      maxOutputTokens: 160,
      temperature: 0,
      maxRetries: 0,
    });
    expect(result.finishReason).toBe('tool-calls');
    expect(result.toolCalls).toHaveLength(1);
    const call = result.toolCalls[0]!;
    expect(validates(schemaOf(call.toolName), call.input)).toBe(true);
  }, 60_000);
});

describe('reasoning and nvext on the CPU stack', () => {
  // The tiny model's template marks reasoning DeepSeek-R1 style (<think>…</think>); a GBNF grammar
  // through nvext makes the random model think first, so llama.cpp splits the trace out.
  const THINK = { guided_grammar: 'root ::= "<think>" [a-z ]{1,12} "</think>" [a-z ]{1,12}' };
  const body = { model: MODEL, messages: user('Hi'), max_tokens: 60, temperature: 0, nvext: THINK };

  it('JSON: the trace as reasoning_content and reasoning, the answer as content', async () => {
    const r = (await (await fetch(`${stack.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json()) as { choices: { message: { content: string; reasoning_content: string; reasoning: string } }[] };
    const m = r.choices[0]!.message;
    expect(m.reasoning_content).toMatch(/^[a-z ]{1,12}$/);
    expect(m.reasoning).toBe(m.reasoning_content);
    expect(m.content).toMatch(/^[a-z ]{1,12}$/);
    expect(m.content).not.toContain('think');
  }, 60_000);

  it('streamed: every reasoning delta carries both names, and they add up to the JSON answer’s trace', async () => {
    const json = (await (await fetch(`${stack.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json()) as { choices: { message: { reasoning_content: string; content: string } }[] };
    const stream = await client.chat.completions.create({ ...body, stream: true } as unknown as OpenAI.ChatCompletionCreateParamsStreaming);
    let a = '';
    let b = '';
    let content = '';
    for await (const chunk of stream) {
      const d = chunk.choices[0]?.delta as { reasoning_content?: string; reasoning?: string; content?: string } | undefined;
      if (!d) continue;
      expect(d.reasoning).toBe(d.reasoning_content);
      a += d.reasoning_content ?? '';
      b += d.reasoning ?? '';
      content += d.content ?? '';
    }
    expect(a).toBe(json.choices[0]!.message.reasoning_content);
    expect(b).toBe(a);
    expect(content).toBe(json.choices[0]!.message.content);
  }, 60_000);

  it('nvext.guided_choice becomes a llama.cpp grammar: the answer is one of the choices', async () => {
    const res = await fetch(`${stack.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, messages: user('Pick'), max_tokens: 16, nvext: { guided_choice: ['red', 'green', 'blue'], top_k: 3 } }) });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    const r = JSON.parse(text) as { choices: { message: { content: string } }[] };
    expect(['red', 'green', 'blue']).toContain(r.choices[0]!.message.content);
  }, 60_000);
});
