// Fuzz every POST route of the app's own route table with malformed JSON, arbitrary JSON values and
// objects whose known fields hold random types: 0 crashes, 0 5xx, every refusal a valid envelope.
// In-process (app.request) against the fake engine; bounded case counts, fixed seed.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyStore } from '../gateway/auth.js';
import type { RouteSpec } from '../gateway/app.js';
import { isEnvelope, MODEL, rig, sampleBody, type Rig } from './helpers/secure-app.js';
import { isMessagesPath } from '../gateway/translate/messages.js';

const isAnthropicError = (v: unknown): boolean => {
  const o = v as { type?: unknown; error?: { type?: unknown; message?: unknown } } | null;
  return o?.type === 'error' && typeof o.error?.type === 'string' && typeof o.error.message === 'string';
};

const KEY = 'sk-fuzz-key-0123456789';
/** Per POST route: ~2,000 cases in all. */
const RUNS = 300;
let r: Rig;
let app: ReturnType<Rig['make']>['app'];
let posts: RouteSpec[];

beforeAll(async () => {
  r = await rig();
  const made = r.make({ keys: new KeyStore({ keys: [KEY] }), settings: { maxRequestBytes: 64 * 1024 } });
  app = made.app;
  posts = made.routes.filter((x) => x.method === 'POST');
});
afterAll(() => r.close());

// Values of any JSON type, biased toward the shapes the schemas look for.
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { depthSize: 'small' },
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(MODEL.id, '', null, true, 0, -1, 1.5, 2 ** 53, -0, 'auto', 'user', 'text', 'image_url', [], {}),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
);
const message = fc.record(
  {
    role: fc.oneof(fc.constantFrom('system', 'user', 'assistant', 'tool', 'developer', 'bogus'), anyValue),
    content: fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.array(fc.record({ type: fc.oneof(fc.constantFrom('text', 'image_url', 'video_url'), anyValue), text: anyValue, image_url: anyValue }, { requiredKeys: [] }), { maxLength: 3 }),
      anyValue,
    ),
    name: anyValue,
    tool_calls: anyValue,
  },
  { requiredKeys: [] },
);
const fields = {
  model: fc.oneof(fc.constant(MODEL.id), anyValue),
  messages: fc.oneof(fc.array(message, { maxLength: 3 }), anyValue),
  prompt: anyValue,
  input: anyValue,
  tokens: fc.oneof(fc.array(fc.integer({ min: -5, max: 1000 }), { maxLength: 5 }), anyValue),
  max_tokens: anyValue,
  max_completion_tokens: anyValue,
  temperature: anyValue,
  top_p: anyValue,
  n: anyValue,
  stream: fc.oneof(fc.boolean(), anyValue),
  stream_options: anyValue,
  stop: anyValue,
  seed: anyValue,
  tools: anyValue,
  tool_choice: anyValue,
  response_format: anyValue,
  logprobs: anyValue,
  add_special_tokens: anyValue,
  ['__proto__']: anyValue, // computed: an own property, as JSON.parse makes it
  constructor: anyValue,
};
const structured = fc.record(fields, { requiredKeys: [] }).map((o) => JSON.stringify(o));
const valueBody = fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v));
/** Broken JSON: valid bodies cut, spliced or sprinkled with junk, and plain random text. */
const malformed = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.tuple(structured, fc.nat(), fc.string({ maxLength: 5 })).map(([s, at, junk]) => s.slice(0, at % (s.length + 1)) + junk),
  fc.constantFrom('', ' ', '{', '}', '[', '{"model":', '{"model":"test-model",}', 'null', '"str"', '1e999', 'NaN', '{"a":1}{"b":2}', '\uFEFF{}', '{"model":"\uD800"}'),
);
const body = fc.oneof({ weight: 4, arbitrary: structured }, { weight: 2, arbitrary: valueBody }, { weight: 3, arbitrary: malformed });
const contentType = fc.oneof({ weight: 9, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/json; charset=latin1', '') });

describe('fuzz: every POST route', () => {
  it('never crashes, never answers 5xx, always answers a valid envelope on refusal', async () => {
    let cases = 0;
    const statuses = new Map<number, number>();
    for (const route of posts) {
      await fc.assert(
        fc.asyncProperty(body, contentType, async (raw, type) => {
          cases++;
          const res = await app.request(route.path, {
            method: 'POST',
            headers: { authorization: `Bearer ${KEY}`, 'content-type': type },
            body: raw,
          });
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          const text = await res.text();
          if (res.status >= 500) throw new Error(`${route.path} → ${res.status} for ${JSON.stringify(raw).slice(0, 200)}: ${text}`);
          if (res.status >= 400) {
            const parsed = JSON.parse(text) as unknown;
            // Anthropic's routes answer in Anthropic's error shape.
            const ok = isMessagesPath(route.path) ? isAnthropicError(parsed) : isEnvelope(parsed);
            if (!ok) throw new Error(`not an envelope: ${text}`);
            expect(text).not.toMatch(/\bat .+:\d+:\d+|127\.0\.0\.1|ECONN|node:internal/);
          } else if ((res.headers.get('content-type') ?? '').includes('json')) {
            JSON.parse(text);
          }
        }),
        { numRuns: RUNS, seed: 42 },
      );
    }
    expect(cases).toBe(RUNS * posts.length);
    // The generators reach both refusals and the engine.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(0);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(0);
  });

  it('valid samples still pass on every POST route (the fuzz baseline is sound)', async () => {
    for (const route of posts) {
      const res = await app.request(route.path, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(sampleBody(route.path)),
      });
      expect(res.status, route.path).toBe(200);
      await res.text();
    }
  });
});
