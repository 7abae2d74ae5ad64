// The Messages translation: request → chat, chat answer → Message, chat chunks → Anthropic's event
// stream, checked by @anthropic-ai/sdk's own stream helper (fed through a custom fetch).
import Anthropic from '@anthropic-ai/sdk';
import { describe, expect, it } from 'vitest';
import { PorticoError } from '../../core/errors.js';
import { translateChatStream, type ChatChunk } from './chat-stream.js';
import { anthropicError, chatToMessage, countTokensRequest, countTokensToChat, messagesRequest, messagesToChat, MessagesStream, type MessagesRequest } from './messages.js';
import { chunk, parseEvents, readAll, sseBytes, streamOf, textChunks, toolChunks } from './test-chunks.js';

const req = (r: Record<string, unknown>): MessagesRequest => messagesRequest.parse({ model: 'm', max_tokens: 32, messages: [{ role: 'user', content: 'Hi' }], ...r });
const refusal = (r: Record<string, unknown>): PorticoError => {
  try {
    messagesToChat(req(r));
  } catch (e) {
    return e as PorticoError;
  }
  throw new Error('not refused');
};
const translate = (r: MessagesRequest, chunks: (ChatChunk | string)[]) => readAll(streamOf(sseBytes(chunks)).pipeThrough(translateChatStream(new MessagesStream(r))));

function sdk(answer: () => Response) {
  const seen: { url: string; headers: Headers; body: Record<string, unknown> }[] = [];
  const client = new Anthropic({
    apiKey: 'sk-test',
    baseURL: 'http://127.0.0.1:9',
    maxRetries: 0,
    fetch: async (url, init) => {
      seen.push({ url: String(url), headers: new Headers(init?.headers), body: JSON.parse(String(init?.body)) as Record<string, unknown> });
      return answer();
    },
  });
  return { client, seen };
}
const sse = (r: MessagesRequest, chunks: (ChatChunk | string)[]) => () =>
  new Response(streamOf(sseBytes(chunks)).pipeThrough(translateChatStream(new MessagesStream(r))), { headers: { 'content-type': 'text/event-stream' } });

describe('request → chat', () => {
  it('system, text, base64 and url images, stop_sequences, sampling, user', () => {
    const chat = messagesToChat(
      req({
        system: [{ type: 'text', text: 'Be brief.' }],
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } },
              { type: 'image', source: { type: 'url', url: 'https://example.com/cat.png' } },
              { type: 'text', text: 'What are these?' },
            ],
          },
        ],
        stop_sequences: ['\n\nHuman:'],
        temperature: 0.2,
        top_k: 5,
        metadata: { user_id: 'u1' },
      }),
    );
    expect(chat).toEqual({
      model: 'm',
      max_tokens: 32,
      messages: [
        { role: 'system', content: 'Be brief.' },
        {
          role: 'user',
          content: [
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } },
            { type: 'text', text: 'What are these?' },
          ],
        },
      ],
      stop: ['\n\nHuman:'],
      temperature: 0.2,
      top_k: 5,
      user: 'u1',
    });
  });

  it('tool_use → assistant tool_calls, tool_result → tool messages before the user text', () => {
    const chat = messagesToChat(
      req({
        messages: [
          { role: 'user', content: 'Weather in Paris?' },
          { role: 'assistant', content: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: '18C' }] }, { type: 'text', text: 'And tomorrow?' }] },
          { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: {} }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_2', content: 'no data', is_error: true }] },
        ],
        tools: [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
        tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true },
      }),
    );
    expect(chat.messages).toEqual([
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: 'Checking.', tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'toolu_1', content: '18C' },
      { role: 'user', content: 'And tomorrow?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'toolu_2', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'toolu_2', content: 'Error: no data' },
    ]);
    expect(chat.tools).toEqual([{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }]);
    expect(chat.tool_choice).toEqual({ type: 'function', function: { name: 'get_weather' } });
    expect(chat.parallel_tool_calls).toBe(false);
    expect(messagesToChat(req({ tool_choice: { type: 'any' } })).tool_choice).toBe('required');
    expect(messagesToChat(req({ stream: true }))).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    const schema = { type: 'object', properties: { a: { type: 'string' } } };
    expect(messagesToChat(req({ output_config: { effort: 'low', format: { type: 'json_schema', schema } } })).response_format).toEqual({ type: 'json_schema', json_schema: { name: 'output', schema } });
  });

  it('count_tokens: the same messages and tools, no max_tokens needed', () => {
    const r = countTokensRequest.parse({ model: 'm', system: 'S', messages: [{ role: 'user', content: 'Hi' }], tools: [{ name: 't', input_schema: { type: 'object' } }] });
    expect(countTokensToChat(r)).toEqual({
      model: 'm',
      messages: [
        { role: 'system', content: 'S' },
        { role: 'user', content: 'Hi' },
      ],
      tools: [{ type: 'function', function: { name: 't', parameters: { type: 'object' } } }],
    });
  });

  it.each([
    [{ messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'text', data: 'x' } }] }] }, 'messages[0].content[0].type'],
    [{ messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file', file_id: 'f' } }] }] }, 'messages[0].content[0].source.type'],
    [{ messages: [{ role: 'assistant', content: [{ type: 'image', source: { type: 'url', url: 'https://x/a.png' } }] }] }, 'messages[0].content[0].type'],
    [{ messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'image', source: {} }] }] }] }, 'messages[0].content[0].content[0].type'],
    [{ tools: [{ name: 'web_search', type: 'web_search_20250305' }] }, 'tools[0].type'],
    [{ tool_choice: { type: 'tool' } }, 'tool_choice.name'],
  ])('refuses %j with a 400 naming %s', (body, param) => {
    const e = refusal(body);
    expect(e.status).toBe(400);
    expect(e.toJSON().error).toMatchObject({ code: 'invalid_parameter', param });
  });

  it('max_tokens is required (as in Anthropic\'s API)', () => {
    expect(messagesRequest.safeParse({ model: 'm', messages: [{ role: 'user', content: 'x' }] }).success).toBe(false);
  });
});

describe('chat answer → Message', () => {
  it('text, usage, end_turn', () => {
    const m = chatToMessage({ choices: [{ message: { content: 'Hello' }, finish_reason: 'stop' }], usage: { prompt_tokens: 7, completion_tokens: 2 } }, req({}));
    expect(m).toEqual({ id: expect.stringMatching(/^msg_[0-9a-f]{24}$/), type: 'message', role: 'assistant', model: 'm', content: [{ type: 'text', text: 'Hello' }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 7, output_tokens: 2 } });
  });

  it('length → max_tokens; a stop sequence named by the engine (vLLM stop_reason) → stop_sequence', () => {
    expect(chatToMessage({ choices: [{ message: { content: 'a' }, finish_reason: 'length' }] }, req({})).stop_reason).toBe('max_tokens');
    const m = chatToMessage({ choices: [{ message: { content: 'a' }, finish_reason: 'stop', stop_reason: 'END' }] }, req({ stop_sequences: ['END'] }));
    expect([m.stop_reason, m.stop_sequence]).toEqual(['stop_sequence', 'END']);
  });

  it('tool calls → tool_use blocks with parsed input', () => {
    const m = chatToMessage({ choices: [{ message: { content: null, tool_calls: [{ id: 'call_1', function: { name: 'f', arguments: '{"a":[1]}' } }] }, finish_reason: 'tool_calls' }] }, req({}));
    expect(m.content).toEqual([{ type: 'tool_use', id: 'call_1', name: 'f', input: { a: [1] } }]);
    expect(m.stop_reason).toBe('tool_use');
  });
});

describe('chat stream → Anthropic events', () => {
  it('text: message_start, ping, one text block, message_delta with usage, message_stop', async () => {
    const events = parseEvents(await translate(req({}), textChunks(['He', 'llo'], 'stop', [9, 2])));
    expect(events.map((e) => e.event)).toEqual(['message_start', 'ping', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    for (const e of events) expect(e.data.type).toBe(e.event);
    expect(events[2]!.data).toEqual({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
    expect(events[3]!.data).toEqual({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'He' } });
    expect(events[6]!.data).toEqual({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { input_tokens: 9, output_tokens: 2 } });
  });

  it('a tool call: a tool_use block with input_json_delta events, stop_reason tool_use', async () => {
    const events = parseEvents(await translate(req({}), toolChunks('get_weather', ['{"city":', '"Oslo"}'])));
    expect(events.map((e) => e.event)).toEqual(['message_start', 'ping', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    expect(events[2]!.data.content_block).toEqual({ type: 'tool_use', id: 'call_abc', name: 'get_weather', input: {} });
    expect(events[3]!.data.delta).toEqual({ type: 'input_json_delta', partial_json: '{"city":' });
    expect((events[6]!.data.delta as { stop_reason: string }).stop_reason).toBe('tool_use');
  });

  it('an engine failure mid-stream ends with an Anthropic error event', async () => {
    const err = JSON.stringify({ error: { message: 'the engine stopped mid-stream', type: 'server_error', param: null, code: 'engine_unavailable' } });
    const events = parseEvents(await translate(req({}), [chunk({ content: 'a' }), err]));
    expect(events.at(-1)).toEqual({ event: 'error', data: { type: 'error', error: { type: 'overloaded_error', message: 'the engine stopped mid-stream' } } });
    expect(events.map((e) => e.event)).not.toContain('message_stop');
  });
});

describe('the Anthropic SDK reads the translated answers', () => {
  it('messages.stream(): text events and finalMessage() with usage', async () => {
    const r = req({ stream: true });
    const { client, seen } = sdk(sse(r, textChunks(['Hel', 'lo', ' there'], 'stop', [11, 3])));
    const stream = client.messages.stream({ model: 'm', max_tokens: 32, messages: [{ role: 'user', content: 'Hi' }] });
    const texts: string[] = [];
    stream.on('text', (t) => texts.push(t));
    const final = await stream.finalMessage();
    expect(seen[0]!.url).toBe('http://127.0.0.1:9/v1/messages');
    // SDK 1.x sends the key as a bearer token (0.x and curl examples send x-api-key: the e2e tests cover both).
    expect(seen[0]!.headers.get('authorization')).toBe('Bearer sk-test');
    expect(texts).toEqual(['Hel', 'lo', ' there']);
    expect(final.content).toEqual([{ type: 'text', text: 'Hello there' }]);
    expect(final.stop_reason).toBe('end_turn');
    expect(final.usage).toMatchObject({ input_tokens: 11, output_tokens: 3 });
  });

  it('messages.stream(): a tool_use block assembled from input_json_delta', async () => {
    const r = req({ stream: true });
    const { client } = sdk(sse(r, toolChunks('get_weather', ['{"ci', 'ty":"Oslo"}'])));
    const final = await client.messages.stream({ model: 'm', max_tokens: 32, messages: [{ role: 'user', content: 'Hi' }] }).finalMessage();
    expect(final.content).toEqual([{ type: 'tool_use', id: 'call_abc', name: 'get_weather', input: { city: 'Oslo' } }]);
    expect(final.stop_reason).toBe('tool_use');
  });

  it('messages.create({ stream: true }) throws the error event as an APIError', async () => {
    const r = req({ stream: true });
    const err = JSON.stringify({ error: { message: 'boom', type: 'server_error', param: null, code: 'engine_error' } });
    const { client } = sdk(sse(r, [chunk({ content: 'a' }), err]));
    const run = async () => {
      for await (const _ of await client.messages.create({ model: 'm', max_tokens: 32, messages: [{ role: 'user', content: 'Hi' }], stream: true })) void _;
    };
    await expect(run()).rejects.toBeInstanceOf(Anthropic.APIError);
    await expect(run()).rejects.toMatchObject({ type: 'api_error' });
  });

  it('messages.create(): the translated JSON', async () => {
    const body = chatToMessage({ choices: [{ message: { content: 'Hi!' }, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 2 } }, req({}));
    const { client } = sdk(() => Response.json(body));
    const m = await client.messages.create({ model: 'm', max_tokens: 32, messages: [{ role: 'user', content: 'Hi' }] });
    expect(m.content[0]).toEqual({ type: 'text', text: 'Hi!' });
    expect(m.usage.output_tokens).toBe(2);
  });

  it('an error answer in Anthropic shape becomes the SDK typed error', async () => {
    const e = new PorticoError('invalid_api_key');
    const { client } = sdk(() => Response.json(anthropicError(e), { status: 401 }));
    const p = client.messages.create({ model: 'm', max_tokens: 32, messages: [{ role: 'user', content: 'Hi' }] });
    await expect(p).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
    await expect(p).rejects.toMatchObject({ status: 401, error: { type: 'error', error: { type: 'authentication_error', message: 'Invalid API key' } } });
  });
});
