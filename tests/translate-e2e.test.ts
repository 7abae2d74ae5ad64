// The Responses and Messages APIs on the CPU stack (`portico serve`: launcher, gateway and the real
// llama-server with the generated tiny VLM), called with the official openai and Anthropic SDKs.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataUri, png } from '../gateway/media/test-images.js';
import { startServer } from '../gateway/media/test-server.js';
import { DEMO_MODEL_NAME } from '../launcher/plan.js';
import { TINY_IMAGE_PROMPT_TOKEN_DELTA } from '../launcher/prepare/tiny-model.js';
import { startStack, type Stack } from './helpers/stack.js';

const MODEL = DEMO_MODEL_NAME;
const KEY = 'sk-portico-e2e-translate';
let stack: Stack;
let openai: OpenAI;
let anthropic: Anthropic;
/** An Anthropic client that sends the key as `x-api-key` (as SDK 0.x, curl examples and agents do). */
let anthropicXKey: Anthropic;

beforeAll(async () => {
  // Private networks allowed: the image server below lives on 127.0.0.1 (the default refuses it).
  stack = await startStack({ NIM_API_KEYS: KEY, NIM_MEDIA_ALLOW_PRIVATE_NETWORKS: '1' });
  openai = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: KEY, maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: stack.url, apiKey: KEY, maxRetries: 0 });
  anthropicXKey = new Anthropic({ baseURL: stack.url, apiKey: null, authToken: null, defaultHeaders: { 'x-api-key': KEY }, maxRetries: 0 });
});
afterAll(async () => {
  const code = await stack?.stop();
  expect(code).toBe(0);
});

// SDK 1.x dropped the sampling parameters from its types (Anthropic API 2026-10-21); older clients
// send them and portico honours them: greedy decoding keeps the forced-tool JSON within budget.
const GREEDY = { temperature: 0 };
const weatherTool = { type: 'object' as const, properties: { city: { type: 'string' } }, required: ['city'] };

async function metric(line: RegExp): Promise<number> {
  const text = await (await fetch(`${stack.url}/v1/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text();
  const m = text.split('\n').find((l) => line.test(l));
  return m ? Number(m.split(' ').at(-1)) : 0;
}

describe('openai SDK: client.responses', () => {
  it('text: a completed (or max_output_tokens-incomplete) Response with output_text and usage', async () => {
    const r = await openai.responses.create({ model: MODEL, input: 'What is GPU computing?', instructions: 'Answer briefly.', max_output_tokens: 48 });
    expect(r.object).toBe('response');
    expect(r.id).toMatch(/^resp_/);
    expect(r.model).toBe(MODEL);
    expect(['completed', 'incomplete']).toContain(r.status);
    expect(r.output[0]?.type).toBe('message');
    expect(r.output_text.length).toBeGreaterThan(0);
    expect(r.usage!.input_tokens).toBeGreaterThan(0);
    expect(r.usage!.output_tokens).toBeGreaterThan(0);
    expect(r.usage!.output_tokens).toBeLessThanOrEqual(48);
    expect(r.usage!.total_tokens).toBe(r.usage!.input_tokens + r.usage!.output_tokens);
    expect((r as unknown as { store: boolean }).store).toBe(false); // nothing is kept
  });

  it('max_output_tokens: 1 → status incomplete, reason max_output_tokens', async () => {
    const r = await openai.responses.create({ model: MODEL, input: 'Tell me a long story', max_output_tokens: 1 });
    expect(r.status).toBe('incomplete');
    expect(r.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(r.usage!.output_tokens).toBe(1);
  });

  it(`an input_image adds exactly ${TINY_IMAGE_PROMPT_TOKEN_DELTA} input tokens (it reached the projector)`, async () => {
    const ask = (image: boolean) =>
      openai.responses.create({
        model: MODEL,
        max_output_tokens: 1,
        input: [
          {
            role: 'user',
            content: [...(image ? [{ type: 'input_image' as const, image_url: dataUri('image/png', png(32, 32)), detail: 'auto' as const }] : []), { type: 'input_text' as const, text: 'Describe this image' }],
          },
        ],
      });
    const [without, withImage] = [await ask(false), await ask(true)];
    expect(withImage.usage!.input_tokens - without.usage!.input_tokens).toBe(TINY_IMAGE_PROMPT_TOKEN_DELTA);
  });

  it('a broken input_image is refused by the media guard: 400 in the OpenAI envelope', async () => {
    const p = openai.responses.create({ model: MODEL, input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'data:image/png;base64,AAAA', detail: 'auto' }] }] });
    await expect(p).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(p).rejects.toMatchObject({ status: 400, code: 'invalid_image' });
  });

  it('stream: the Responses events, read by responses.stream() as they arrive', async () => {
    const stream = openai.responses.stream({ model: MODEL, input: 'Say something', max_output_tokens: 32 });
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    let text = '';
    stream.on('event', (e) => events.push(e));
    stream.on('response.output_text.delta', (e) => (text += e.delta));
    const final = await stream.finalResponse();
    const types = events.map((e) => e.type);
    expect(types.slice(0, 4)).toEqual(['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    expect(types.filter((t) => t === 'response.output_text.delta').length).toBeGreaterThan(2);
    expect(text.length).toBeGreaterThan(0);
    expect(final.output[0]).toMatchObject({ type: 'message', content: [{ type: 'output_text', text }] });
    // The last event carries the final Response (the SDK snapshots only response.completed; an
    // answer cut at max_output_tokens ends with response.incomplete, as OpenAI sends it).
    const last = events.at(-1)!;
    if (last.type !== 'response.completed' && last.type !== 'response.incomplete') throw new Error(`last event ${last.type}`);
    expect(last.response.status).toBe(last.type === 'response.completed' ? 'completed' : 'incomplete');
    expect(last.response.usage!.output_tokens).toBeGreaterThan(0);
    expect(last.response.usage!.output_tokens).toBeLessThanOrEqual(32);
  });

  it('a forced function tool: the answer is a function_call with JSON arguments', async () => {
    const r = await openai.responses.create({
      model: MODEL,
      input: 'What is the weather in Paris?',
      tools: [{ type: 'function', name: 'get_weather', description: 'Current weather in a city', parameters: weatherTool, strict: false }],
      tool_choice: { type: 'function', name: 'get_weather' },
      max_output_tokens: 160,
      temperature: 0,
    });
    const call = r.output.find((o) => o.type === 'function_call');
    expect(call, JSON.stringify(r.output)).toBeDefined();
    if (call?.type !== 'function_call') return;
    expect(call.name).toBe('get_weather');
    expect(call.call_id.length).toBeGreaterThan(0);
    expect(typeof JSON.parse(call.arguments)).toBe('object');
  });

  it('a forced function tool, streamed: function_call_arguments events assemble the call', async () => {
    const stream = openai.responses.stream({
      model: MODEL,
      input: 'What is the weather in Oslo?',
      tools: [{ type: 'function', name: 'get_weather', parameters: weatherTool, strict: false }],
      tool_choice: { type: 'function', name: 'get_weather' },
      max_output_tokens: 160,
      temperature: 0,
    });
    const types: string[] = [];
    stream.on('event', (e) => types.push(e.type));
    const final = await stream.finalResponse();
    expect(types).toContain('response.function_call_arguments.done');
    const call = final.output.find((o) => o.type === 'function_call');
    if (call?.type !== 'function_call') throw new Error(JSON.stringify(final.output));
    expect(call.name).toBe('get_weather');
    expect(typeof JSON.parse(call.arguments)).toBe('object');
  });

  it('previous_response_id → 400 naming it; GET /v1/responses/{id} → 404 response_not_stored', async () => {
    const p = openai.responses.create({ model: MODEL, input: 'x', previous_response_id: 'resp_abc' });
    await expect(p).rejects.toMatchObject({ status: 400, code: 'invalid_parameter', param: 'previous_response_id' });
    await expect(openai.responses.retrieve('resp_abc')).rejects.toMatchObject({ status: 404, code: 'response_not_stored' });
  });
});

describe('Anthropic SDK: client.messages', () => {
  it('text: a Message with a text block, stop_reason and usage; counted in the NIM metrics', async () => {
    const before = await metric(/^prompt_tokens_total\{/);
    const m = await anthropic.messages.create({ model: MODEL, max_tokens: 48, system: 'Answer briefly.', messages: [{ role: 'user', content: 'What is GPU computing?' }] });
    expect(m.type).toBe('message');
    expect(m.role).toBe('assistant');
    expect(m.id).toMatch(/^msg_/);
    expect(m.content[0]?.type).toBe('text');
    expect(['end_turn', 'max_tokens']).toContain(m.stop_reason);
    expect(m.usage.input_tokens).toBeGreaterThan(0);
    expect(m.usage.output_tokens).toBeGreaterThan(0);
    expect(m.usage.output_tokens).toBeLessThanOrEqual(48);
    expect((await metric(/^prompt_tokens_total\{/)) - before).toBe(m.usage.input_tokens);
    expect(await metric(/^portico_http_requests_total\{route="\/v1\/messages",method="POST",status="200"\}/)).toBeGreaterThan(0);
  });

  it(`a base64 image adds exactly ${TINY_IMAGE_PROMPT_TOKEN_DELTA} input tokens; a url image (fetched by the gateway) the same`, async () => {
    const bytes = png(32, 32);
    const images = await startServer((_req, res) => void res.writeHead(200, { 'content-type': 'image/png' }).end(bytes));
    try {
      const ask = (source?: Anthropic.ImageBlockParam['source']) =>
        anthropic.messages.create({
          model: MODEL,
          max_tokens: 1,
          messages: [{ role: 'user', content: [...(source ? [{ type: 'image' as const, source }] : []), { type: 'text' as const, text: 'Describe this image' }] }],
        });
      const without = await ask();
      const b64 = await ask({ type: 'base64', media_type: 'image/png', data: Buffer.from(bytes).toString('base64') });
      const url = await ask({ type: 'url', url: `${images.origin}/cat.png` });
      expect(b64.usage.input_tokens - without.usage.input_tokens).toBe(TINY_IMAGE_PROMPT_TOKEN_DELTA);
      expect(url.usage.input_tokens).toBe(b64.usage.input_tokens);
      expect(images.requests).toHaveLength(1);
    } finally {
      await images.close();
    }
  });

  it('stream: messages.stream() assembles the text events; usage arrives in message_delta', async () => {
    const stream = anthropic.messages.stream({ model: MODEL, max_tokens: 32, messages: [{ role: 'user', content: 'Say something' }] });
    const types: string[] = [];
    let text = '';
    stream.on('streamEvent', (e) => types.push(e.type));
    stream.on('text', (t) => (text += t));
    const final = await stream.finalMessage();
    expect(types.slice(0, 3)).toEqual(['message_start', 'content_block_start', 'content_block_delta']);
    expect(types.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    expect(text.length).toBeGreaterThan(0);
    expect(final.content).toEqual([{ type: 'text', text }]);
    expect(final.usage.input_tokens).toBeGreaterThan(0);
    expect(final.usage.output_tokens).toBeGreaterThan(0);
  });

  it('a forced tool: a tool_use block with an object input, stop_reason tool_use', async () => {
    const m = await anthropic.messages.create({
      model: MODEL,
      max_tokens: 160,
      ...GREEDY,
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
      tools: [{ name: 'get_weather', description: 'Current weather in a city', input_schema: weatherTool }],
      tool_choice: { type: 'tool', name: 'get_weather' },
    });
    const use = m.content.find((b) => b.type === 'tool_use');
    expect(use, JSON.stringify(m.content)).toBeDefined();
    if (use?.type !== 'tool_use') return;
    expect(use.name).toBe('get_weather');
    expect(typeof use.input).toBe('object');
    expect(m.stop_reason).toBe('tool_use');
  });

  it('a forced tool, streamed: messages.stream() assembles tool_use from input_json_delta', async () => {
    const final = await anthropic.messages
      .stream({
        model: MODEL,
        max_tokens: 160,
        ...GREEDY,
        messages: [{ role: 'user', content: 'What is the weather in Oslo?' }],
        tools: [{ name: 'get_weather', input_schema: weatherTool }],
        tool_choice: { type: 'tool', name: 'get_weather' },
      })
      .finalMessage();
    const use = final.content.find((b) => b.type === 'tool_use');
    if (use?.type !== 'tool_use') throw new Error(JSON.stringify(final.content));
    expect(use.name).toBe('get_weather');
    expect(typeof use.input).toBe('object');
    expect(final.stop_reason).toBe('tool_use');
  });

  it('a tool round trip: tool_use and tool_result sent back are accepted and answered', async () => {
    const m = await anthropic.messages.create({
      model: MODEL,
      max_tokens: 16,
      tools: [{ name: 'get_weather', input_schema: weatherTool }],
      messages: [
        { role: 'user', content: 'Weather in Oslo?' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: '3C and snow' }] },
      ],
    });
    expect(m.type).toBe('message');
    expect(m.usage.input_tokens).toBeGreaterThan(0);
  });

  it('count_tokens: the same count as the input_tokens of the answer to the same messages', async () => {
    const params = { model: MODEL, system: 'Be brief.', messages: [{ role: 'user' as const, content: 'Hello there, how are you?' }] };
    const counted = await anthropic.messages.countTokens(params);
    const answered = await anthropic.messages.create({ ...params, max_tokens: 1 });
    expect(counted.input_tokens).toBeGreaterThan(0);
    expect(counted.input_tokens).toBe(answered.usage.input_tokens);
  });

  it('the key as x-api-key; a missing or wrong key is a typed 401 in Anthropic shape', async () => {
    const m = await anthropicXKey.messages.create({ model: MODEL, max_tokens: 4, messages: [{ role: 'user', content: 'Hi' }] });
    expect(m.type).toBe('message');
    const wrong = new Anthropic({ baseURL: stack.url, apiKey: null, authToken: null, defaultHeaders: { 'x-api-key': 'sk-wrong' }, maxRetries: 0 });
    const p = wrong.messages.create({ model: MODEL, max_tokens: 4, messages: [{ role: 'user', content: 'Hi' }] });
    await expect(p).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
    const raw = await fetch(`${stack.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(raw.status).toBe(401);
    expect(await raw.json()).toEqual({ type: 'error', error: { type: 'authentication_error', message: expect.stringContaining('Missing API key') } });
  });

  it('bad input: typed 400s in Anthropic shape (validation, the media guard, an unsupported block)', async () => {
    const noMax = await fetch(`${stack.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': KEY },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }] }),
    });
    expect(noMax.status).toBe(400);
    expect(await noMax.json()).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('max_tokens') } });
    const broken = anthropic.messages.create({ model: MODEL, max_tokens: 4, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }] }] });
    await expect(broken).rejects.toBeInstanceOf(Anthropic.BadRequestError);
    await expect(broken).rejects.toMatchObject({ error: { type: 'error', error: { type: 'invalid_request_error' } } });
    const doc = anthropic.messages.create({ model: MODEL, max_tokens: 4, messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'x' } }] }] });
    await expect(doc).rejects.toMatchObject({ status: 400, error: { error: { message: expect.stringContaining('messages[0].content[0].type') } } });
  });
});
