// /v1/metrics and the logs of the real stack (launcher + gateway + llama-server), with API keys on
// and JSONL logging: promtool accepts the exposition, counters move by exactly the requests made,
// stream tokens come from the final usage chunk, a real Prometheus scrapes it with a bearer token,
// and every log line is one JSON object carrying the request id.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_MODEL_NAME } from '../launcher/plan.js';
import { promtoolCheck, startPrometheus } from './helpers/prometheus.js';
import { startStack, type Stack } from './helpers/stack.js';

const KEY = 'metrics-e2e-key';
const AUTH = { authorization: `Bearer ${KEY}` };
const MODEL = DEMO_MODEL_NAME;
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ NIM_API_KEYS: KEY, NIM_JSONL_LOGGING: '1' });
});
afterAll(async () => {
  expect(await stack?.stop()).toBe(0);
});

const scrape = async (): Promise<string> => {
  const res = await fetch(`${stack.url}/v1/metrics`, { headers: AUTH });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return res.text();
};

/** One series' value (0 when absent). */
const value = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
};

const chat = (extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...AUTH, ...headers },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Say something.' }], max_tokens: 12, ...extra }),
  });

const CHAT_OK = 'portico_http_requests_total{route="/v1/chat/completions",method="POST",status="200"}';
const PROMPT = `prompt_tokens_total{model_name="${MODEL}"}`;
const GENERATED = `generation_tokens_total{model_name="${MODEL}"}`;

describe('/v1/metrics on the real stack', () => {
  it('needs the key, and passes promtool: no parse error, lint only on llama.cpp’s own names', async () => {
    expect((await fetch(`${stack.url}/v1/metrics`)).status).toBe(401);
    await (await chat()).json(); // some traffic first, so every family has samples
    const text = await scrape();
    // The engines' own series, appended; the CPU demo runs two engines, so each sample names its model.
    expect(text).toMatch(/^llamacpp:prompt_tokens_total\{model_name="portico\/tiny-vlm"\} \d/m);
    expect(text).toMatch(/^llamacpp:prompt_tokens_total\{model_name="portico\/tiny-embed"\} \d/m);
    expect(text).toMatch(/^portico_http_requests_total\{/m);
    expect(text).toMatch(new RegExp(`^num_requests_running\\{model_name="${MODEL}"\\} \\d`, 'm'));
    const r = await promtoolCheck(text);
    expect(r.errors).toEqual([]);
    for (const p of r.problems) expect(p).toMatch(/^llamacpp:\S+ (metric names should not contain ':'|counter metrics should have "_total" suffix)$/);
    // Without the engine's families the exposition is lint-clean.
    const own = text.split('\n').filter((l) => !/^(# (HELP|TYPE) )?llamacpp:/.test(l)).join('\n');
    const clean = await promtoolCheck(own);
    expect(clean.problems).toEqual([]);
    expect(clean.exitCode).toBe(0);
  });

  it('counters move by exactly the requests made; stream tokens come from the final usage chunk', async () => {
    const before = await scrape();
    let prompt = 0;
    let completion = 0;
    for (let i = 0; i < 3; i++) {
      const res = await chat();
      expect(res.status).toBe(200);
      const body = (await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
      prompt += body.usage.prompt_tokens;
      completion += body.usage.completion_tokens;
    }
    const stream = await chat({ stream: true, stream_options: { include_usage: true } });
    const events = (await stream.text())
      .split('\n\n')
      .filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]')
      .map((e) => JSON.parse(e.slice(6)) as { choices: unknown[]; usage?: { prompt_tokens: number; completion_tokens: number } });
    const final = events.at(-1)!;
    expect(final.choices).toEqual([]);
    expect(final.usage).toBeDefined();
    expect(events.slice(0, -1).every((e) => !e.usage)).toBe(true);
    prompt += final.usage!.prompt_tokens;
    completion += final.usage!.completion_tokens;

    // A stream is settled at its last byte, which may be just after the client read it: wait (bounded).
    let after = await scrape();
    for (let i = 0; i < 250 && value(after, CHAT_OK) < value(before, CHAT_OK) + 4; i++) {
      await new Promise((r) => setTimeout(r, 20));
      after = await scrape();
    }
    expect(value(after, CHAT_OK) - value(before, CHAT_OK)).toBe(4);
    expect(value(after, PROMPT) - value(before, PROMPT)).toBe(prompt);
    expect(value(after, GENERATED) - value(before, GENERATED)).toBe(completion);
    expect(value(after, `request_success_total{model_name="${MODEL}"}`) - value(before, `request_success_total{model_name="${MODEL}"}`)).toBe(4);
    expect(value(after, `time_to_first_token_seconds_count{model_name="${MODEL}"}`) - value(before, `time_to_first_token_seconds_count{model_name="${MODEL}"}`)).toBe(1);
    expect(value(after, 'portico_http_requests_in_flight')).toBe(1); // the scrape itself
  });

  it('JSONL: every line is one JSON object; the access line carries the request id, status, duration, overhead, tokens', async () => {
    const id = `e2e-${Date.now()}`;
    const res = await chat({}, { 'x-request-id': id });
    expect(res.headers.get('x-request-id')).toBe(id);
    const overhead = res.headers.get('x-portico-overhead-ms');
    expect(overhead).toMatch(/^\d+\.\d{3}$/);
    const { usage } = (await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
    let access: Record<string, unknown> | undefined;
    let lines: Record<string, unknown>[] = [];
    for (let i = 0; i < 500 && !access; i++) {
      // Complete lines only: the last one may still be being written.
      const raw = stack.output().split('\n').slice(0, -1).filter((l) => l.trim());
      lines = raw.map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          throw new Error(`not a JSON log line: ${l}`);
        }
      });
      access = lines.find((l) => l.request_id === id && l.path === '/v1/chat/completions');
      if (!access) await new Promise((r) => setTimeout(r, 20));
    }
    expect(access).toMatchObject({ level: 'INFO', component: 'gateway', method: 'POST', status: 200, prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens });
    expect(typeof access!.time).toBe('string');
    expect(access!.overhead_ms).toBe(Number(overhead));
    expect(access!.duration_ms as number).toBeGreaterThanOrEqual(access!.overhead_ms as number);
    // The engine's output is in the same stream, tagged.
    expect(lines.some((l) => l.component === 'engine' && typeof l.msg === 'string')).toBe(true);
  });
});

describe('a real Prometheus server', () => {
  it('scrapes /v1/metrics with a bearer token; its API returns a gateway series and an engine series', async () => {
    const prom = await startPrometheus({ target: `127.0.0.1:${stack.port}`, metricsPath: '/v1/metrics', bearer: KEY });
    try {
      const up = await prom.waitFor('up{job="portico"} == 1');
      expect(up[0]!.metric.job).toBe('portico');
      const gateway = await prom.waitFor('portico_http_requests_total{route="/v1/metrics"}');
      expect(Number(gateway[0]!.value[1])).toBeGreaterThan(0);
      const engine = await prom.waitFor('{__name__="llamacpp:prompt_tokens_total"}');
      expect(engine[0]!.metric.__name__).toBe('llamacpp:prompt_tokens_total');
      const nim = await prom.waitFor(`prompt_tokens_total{model_name="${MODEL}"}`);
      expect(Number(nim[0]!.value[1])).toBeGreaterThan(0);
    } finally {
      await prom.stop();
    }
  });
});
