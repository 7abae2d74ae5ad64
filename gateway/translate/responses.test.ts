// The Responses translation: request → chat, chat answer → Response, chat chunks → the Responses
// event stream, checked by the openai SDK's own stream helpers (fed through a custom fetch).
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { PorticoError } from '../../core/errors.js';
import { translateChatStream } from './chat-stream.js';
import { chatToResponse, nativeImageView, responsesRequest, responsesToChat, ResponsesStream, type ResponsesRequest } from './responses.js';
import { chunk, parseEvents, readAll, sseBytes, streamOf, textChunks, toolChunks } from './test-chunks.js';
import type { ChatChunk } from './chat-stream.js';

const req = (r: Record<string, unknown>): ResponsesRequest => responsesRequest.parse({ model: 'm', ...r });
const refusal = (r: Record<string, unknown>): PorticoError => {
  try {
    responsesToChat(req(r));
  } catch (e) {
    return e as PorticoError;
  }
  throw new Error('not refused');
};

/** The translated event stream of these chat chunks, as text. */
const translate = (r: ResponsesRequest, chunks: (ChatChunk | string)[]) => readAll(streamOf(sseBytes(chunks)).pipeThrough(translateChatStream(new ResponsesStream(r))));

/** An openai client whose every request is answered by `answer` (and recorded). */
function sdk(answer: () => Response) {
  const seen: { url: string; body: Record<string, unknown> }[] = [];
  const client = new OpenAI({
    apiKey: 'k',
    baseURL: 'http://127.0.0.1:9/v1',
    maxRetries: 0,
    fetch: async (url, init) => {
      seen.push({ url: String(url), body: JSON.parse(String(init?.body)) as Record<string, unknown> });
      return answer();
    },
  });
  return { client, seen };
}
const sse = (r: ResponsesRequest, chunks: ChatChunk[]) => () =>
  new Response(streamOf(sseBytes(chunks)).pipeThrough(translateChatStream(new ResponsesStream(r))), { headers: { 'content-type': 'text/event-stream' } });

describe('request → chat', () => {
  it('a string input with instructions: a system and a user message; max_output_tokens → max_tokens', () => {
    expect(responsesToChat(req({ input: 'Hi', instructions: 'Be brief', max_output_tokens: 9, temperature: 0.5 }))).toEqual({
      model: 'm',
      messages: [
        { role: 'system', content: 'Be brief' },
        { role: 'user', content: 'Hi' },
      ],
      max_tokens: 9,
      temperature: 0.5,
    });
  });

  it('items: text and image parts, developer → system, function_call + output, assistant text', () => {
    const chat = responsesToChat(
      req({
        input: [
          { role: 'developer', content: 'rules' },
          { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'What is this?' }, { type: 'input_image', image_url: 'data:image/png;base64,AAA', detail: 'low' }] },
          { type: 'function_call', call_id: 'c1', name: 'look', arguments: '{"x":1}' },
          { type: 'function_call', call_id: 'c2', name: 'look', arguments: '{"x":2}' },
          { type: 'function_call_output', call_id: 'c1', output: 'a cat' },
          { type: 'function_call_output', call_id: 'c2', output: [{ type: 'input_text', text: 'a dog' }] },
          { type: 'reasoning', id: 'rs_1', summary: [] },
          { role: 'assistant', content: [{ type: 'output_text', text: 'A cat and a dog.' }] },
        ],
      }),
    );
    expect(chat.messages).toEqual([
      { role: 'system', content: 'rules' },
      { role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAA', detail: 'low' } }] },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'c1', type: 'function', function: { name: 'look', arguments: '{"x":1}' } },
          { id: 'c2', type: 'function', function: { name: 'look', arguments: '{"x":2}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'c1', content: 'a cat' },
      { role: 'tool', tool_call_id: 'c2', content: 'a dog' },
      { role: 'assistant', content: 'A cat and a dog.' },
    ]);
  });

  it('function tools, a forced tool, json_schema format, stream with usage', () => {
    const chat = responsesToChat(
      req({
        input: 'x',
        tools: [{ type: 'function', name: 'get_weather', description: 'd', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: true }],
        tool_choice: { type: 'function', name: 'get_weather' },
        parallel_tool_calls: false,
        text: { format: { type: 'json_schema', name: 'w', schema: { type: 'object' }, strict: true } },
        stream: true,
      }),
    );
    expect(chat).toMatchObject({
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'd', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: true } }],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
      response_format: { type: 'json_schema', json_schema: { name: 'w', schema: { type: 'object' }, strict: true } },
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(responsesToChat(req({ input: 'x', tool_choice: 'required' })).tool_choice).toBe('required');
  });

  it.each([
    [{ previous_response_id: 'resp_1' }, 'previous_response_id'],
    [{ conversation: 'conv_1' }, 'conversation'],
    [{ background: true }, 'background'],
    [{ input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'file_1' }] }] }, 'input[0].content[0].file_id'],
    [{ input: [{ role: 'user', content: [{ type: 'input_file', file_data: 'x' }] }] }, 'input[0].content[0].type'],
    [{ input: [{ type: 'item_reference', id: 'msg_1' }] }, 'input[0].type'],
    [{ input: [{ type: 'computer_call_output' }] }, 'input[0].type'],
    [{ input: 'x', tools: [{ type: 'web_search' }] }, 'tools[0].type'],
    [{ input: 'x', tool_choice: { type: 'file_search' } }, 'tool_choice'],
    [{ input: [] }, 'input'],
  ])('refuses %j with a 400 naming %s', (body, param) => {
    const e = refusal({ input: 'x', ...body });
    expect(e).toBeInstanceOf(PorticoError);
    expect(e.status).toBe(400);
    expect(e.toJSON().error).toMatchObject({ code: 'invalid_parameter', param, type: 'invalid_request_error' });
  });

  it('store: true is accepted; the answer says store: false (nothing is kept)', () => {
    const r = req({ input: 'x', store: true });
    expect(responsesToChat(r)).not.toHaveProperty('store');
    expect(chatToResponse({ choices: [{ message: { content: 'y' }, finish_reason: 'stop' }] }, r).store).toBe(false);
  });
});

describe('chat answer → Response', () => {
  it('text: one message item, usage, completed', () => {
    const r = chatToResponse({ choices: [{ message: { content: 'Hello' }, finish_reason: 'stop' }], usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } }, req({ input: 'x' }));
    expect(r).toMatchObject({ object: 'response', status: 'completed', model: 'm', incomplete_details: null, error: null });
    expect(r.id).toMatch(/^resp_[0-9a-f]{24}$/);
    expect(r.output).toEqual([{ type: 'message', id: expect.stringMatching(/^msg_/), status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Hello', annotations: [], logprobs: [] }] }]);
    expect(r.usage).toEqual({ input_tokens: 5, input_tokens_details: { cached_tokens: 0 }, output_tokens: 2, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 7 });
  });

  it('length → incomplete, reason max_output_tokens', () => {
    const r = chatToResponse({ choices: [{ message: { content: 'Hel' }, finish_reason: 'length' }] }, req({ input: 'x', max_output_tokens: 1 }));
    expect(r.status).toBe('incomplete');
    expect(r.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(r.max_output_tokens).toBe(1);
  });

  it('tool calls → function_call items', () => {
    const r = chatToResponse({ choices: [{ message: { content: null, tool_calls: [{ id: 'call_1', function: { name: 'f', arguments: '{"a":1}' } }] }, finish_reason: 'tool_calls' }] }, req({ input: 'x' }));
    expect(r.output).toEqual([{ type: 'function_call', id: expect.stringMatching(/^fc_/), call_id: 'call_1', name: 'f', arguments: '{"a":1}', status: 'completed' }]);
  });
});

describe('chat stream → Responses events', () => {
  it('text: the OpenAI event sequence, numbered, deltas as they come', async () => {
    const events = parseEvents(await translate(req({ input: 'x' }), textChunks(['He', 'llo', '!'])));
    expect(events.map((e) => e.event)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    events.forEach((e, i) => {
      expect(e.data.type).toBe(e.event);
      expect(e.data.sequence_number).toBe(i);
    });
    expect(events.filter((e) => e.event === 'response.output_text.delta').map((e) => e.data.delta)).toEqual(['He', 'llo', '!']);
    expect(events[7]!.data).toMatchObject({ text: 'Hello!', output_index: 0, content_index: 0 });
    const done = events.at(-1)!.data.response as { status: string; usage: { input_tokens: number; output_tokens: number }; output: unknown[] };
    expect(done.status).toBe('completed');
    expect(done.usage).toMatchObject({ input_tokens: 12, output_tokens: 3, total_tokens: 15 });
    expect(done.output).toHaveLength(1);
  });

  it('the first events go out before the engine sends anything (no buffering)', async () => {
    const t = translateChatStream(new ResponsesStream(req({ input: 'x' })));
    const reader = t.readable.getReader();
    const first = await reader.read();
    expect(parseEvents(new TextDecoder().decode(first.value)).map((e) => e.event)).toEqual(['response.created', 'response.in_progress']);
    // One chunk in (the stream still open): its delta comes out at once.
    const writer = t.writable.getWriter();
    void writer.write(new TextEncoder().encode(`data: ${JSON.stringify(chunk({ content: 'A' }))}\n\n`));
    const second = await reader.read();
    const evs = parseEvents(new TextDecoder().decode(second.value));
    expect(evs.map((e) => e.event)).toEqual(['response.output_item.added', 'response.content_part.added', 'response.output_text.delta']);
    expect(evs[2]!.data.delta).toBe('A');
    await reader.cancel();
  });

  it('a function call: output_item.added, arguments deltas, arguments.done, output_item.done', async () => {
    const events = parseEvents(await translate(req({ input: 'x' }), toolChunks('get_weather', ['{"city"', ':"Paris"}'])));
    expect(events.map((e) => e.event)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events[2]!.data.item).toMatchObject({ type: 'function_call', call_id: 'call_abc', name: 'get_weather', arguments: '' });
    expect(events[5]!.data).toMatchObject({ name: 'get_weather', arguments: '{"city":"Paris"}' });
  });

  it('cut by max tokens → response.incomplete', async () => {
    const events = parseEvents(await translate(req({ input: 'x', max_output_tokens: 2 }), textChunks(['a', 'b'], 'length')));
    expect(events.at(-1)!.event).toBe('response.incomplete');
    expect(events.at(-1)!.data.response).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } });
  });

  it('an error event mid-stream → response.failed with the message, nothing after it', async () => {
    const err = JSON.stringify({ error: { message: 'the engine stopped mid-stream', type: 'server_error', param: null, code: 'engine_unavailable' } });
    const events = parseEvents(await translate(req({ input: 'x' }), [chunk({ content: 'a' }), err, chunk({ content: 'late' })]));
    expect(events.slice(-2).map((e) => e.event)).toEqual(['error', 'response.failed']);
    expect(events.at(-2)!.data).toMatchObject({ code: 'engine_unavailable', message: 'the engine stopped mid-stream' });
    expect(events.at(-1)!.data.response).toMatchObject({ status: 'failed', error: { code: 'server_error', message: 'the engine stopped mid-stream' } });
    expect(events.filter((e) => e.event === 'response.output_text.delta')).toHaveLength(1);
  });
});

describe('the openai SDK reads the translated answers', () => {
  it('responses.stream(): finalResponse() and output_text from the translated events', async () => {
    const r = req({ input: 'Say hello', stream: true });
    const { client, seen } = sdk(sse(r, textChunks(['Hel', 'lo', ' there'])));
    const stream = client.responses.stream({ model: 'm', input: 'Say hello' });
    const deltas: string[] = [];
    stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
    const final = await stream.finalResponse();
    expect(seen[0]!.url).toBe('http://127.0.0.1:9/v1/responses');
    expect(seen[0]!.body.stream).toBe(true);
    expect(deltas).toEqual(['Hel', 'lo', ' there']);
    expect(final.status).toBe('completed');
    expect(final.output).toHaveLength(1);
    expect(final.output[0]).toMatchObject({ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Hello there' }] });
    expect(final.usage).toMatchObject({ input_tokens: 12, output_tokens: 3 });
  });

  it('responses.create({ stream: true }): typed events, a function call assembled', async () => {
    const r = req({ input: 'x', stream: true });
    const { client } = sdk(sse(r, toolChunks('get_weather', ['{"city":', '"Oslo"}'])));
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const e of await client.responses.create({ model: 'm', input: 'x', stream: true })) events.push(e);
    const done = events.find((e) => e.type === 'response.function_call_arguments.done');
    expect(done).toMatchObject({ arguments: '{"city":"Oslo"}' });
    const completed = events.at(-1);
    expect(completed?.type).toBe('response.completed');
    if (completed?.type !== 'response.completed') return;
    expect(completed.response.output[0]).toMatchObject({ type: 'function_call', name: 'get_weather', call_id: 'call_abc', arguments: '{"city":"Oslo"}' });
  });

  it('responses.create(): the translated JSON, with the SDK output_text', async () => {
    const r = req({ input: 'x' });
    const body = chatToResponse({ choices: [{ message: { content: 'Hi!' }, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } }, r);
    const { client } = sdk(() => Response.json(body));
    const res = await client.responses.create({ model: 'm', input: 'x' });
    expect(res.output_text).toBe('Hi!');
    expect(res.usage?.total_tokens).toBe(5);
  });

  it('a failed stream: the SDK stream helper rejects with the error event', async () => {
    const r = req({ input: 'x', stream: true });
    const err = JSON.stringify({ error: { message: 'boom', type: 'server_error', param: null, code: 'engine_error' } });
    const { client } = sdk(() => new Response(streamOf(sseBytes([chunk({ content: 'a' }), err])).pipeThrough(translateChatStream(new ResponsesStream(r)))));
    await expect(client.responses.stream({ model: 'm', input: 'x' }).finalResponse()).rejects.toMatchObject({ type: 'error', code: 'engine_error', message: 'boom' });
  });
});

describe('native pass-through: input_image URLs lent to the media guard', () => {
  it('finds input_image parts, and writes the checked data: URI back', () => {
    const body = { model: 'm', input: [{ role: 'user', content: [{ type: 'input_text', text: 'x' }, { type: 'input_image', image_url: 'https://example.com/a.png' }] }] };
    const v = nativeImageView(body)!;
    const parts = (v.view.messages as { content: { image_url: { url: string } }[] }[])[0]!.content;
    expect(parts).toEqual([{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }]);
    parts[0]!.image_url.url = 'data:image/png;base64,AAA';
    expect(v.apply()).toBe(true);
    expect(body.input[0]!.content[1]).toEqual({ type: 'input_image', image_url: 'data:image/png;base64,AAA' });
    expect(nativeImageView({ model: 'm', input: 'text only' })).toBeUndefined();
  });
});
