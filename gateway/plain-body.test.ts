// The plain chat fast path against the schema it stands in for: over thousands of generated bodies
// (valid and broken in every field it reads), whatever plainChat accepts the schema accepts. And it
// does take the common body, so the fast path is not dead code.
import { describe, expect, it } from 'vitest';
import { plainBody, plainChat } from './plain-body.js';
import { chatCompletionRequest, completionRequest } from './schemas.js';
// A deterministic generator (the one the test models use), so a failure reproduces.
import { mulberry32 as rng } from '../launcher/prepare/det-random.js';


const ODD_VALUES: unknown[] = [
  undefined, null, true, false, 0, -0, 1, -1, 1.5, 2, 2.0001, 128, 129, -2, -2.5, 2 ** 53, -(2 ** 53), 1e300,
  '', 'x', 'user', 'system', 'robot', [], [1], {}, { include_usage: true }, { include_usage: 'yes' }, { include_usage: null, other: 1 },
];

describe('plainChat', () => {
  it('accepts only what the schema accepts (generated bodies, every field varied)', () => {
    const next = rng(14);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
    const message = (): unknown => {
      const r = next();
      if (r < 0.05) return pick(ODD_VALUES);
      const m: Record<string, unknown> = { role: next() < 0.85 ? pick(['system', 'developer', 'user', 'assistant', 'tool']) : pick(ODD_VALUES) };
      if (next() < 0.8) m.content = next() < 0.8 ? 'hello' : next() < 0.5 ? [{ type: 'text', text: 'hi' }] : pick(ODD_VALUES);
      if (next() < 0.1) m.name = next() < 0.5 ? 'bob' : pick(ODD_VALUES);
      if (next() < 0.05) m.tool_call_id = 'c1';
      if (next() < 0.05) delete m.role;
      return m;
    };
    const fields = ['max_tokens', 'max_completion_tokens', 'n', 'seed', 'temperature', 'top_p', 'frequency_penalty', 'presence_penalty', 'stream', 'stream_options', 'user', 'stop', 'tools', 'nvext', 'logprobs'];
    let accepted = 0;
    for (let i = 0; i < 10000; i++) {
      const body: Record<string, unknown> = {};
      if (next() < 0.95) body.model = next() < 0.9 ? 'm' : pick(ODD_VALUES);
      if (next() < 0.95) body.messages = next() < 0.9 ? Array.from({ length: 1 + Math.floor(next() * 3) }, message) : pick(ODD_VALUES);
      for (const f of fields) if (next() < 0.12) body[f] = next() < 0.3 ? pick([1, 16, 0.7, true, 'x']) : pick(ODD_VALUES);
      if (next() < 0.02) Object.defineProperty(body, '__proto__', { value: { polluted: true }, enumerable: true });
      if (plainChat(body)) {
        accepted++;
        expect(chatCompletionRequest.safeParse(body).success, JSON.stringify(body)).toBe(true);
      }
    }
    expect(accepted).toBeGreaterThan(100);
  });

  it('takes the common body as it is, and leaves other schemas to zod', () => {
    const body = { model: 'm', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }], max_tokens: 16, stream: true, stream_options: { include_usage: true }, temperature: 0.7 };
    expect(plainBody(chatCompletionRequest, body)).toBe(body);
    expect(plainBody(chatCompletionRequest, { ...body, messages: [] })).toBeUndefined();
    expect(plainBody(chatCompletionRequest, { ...body, logprobs: true })).toBeUndefined();
    expect(plainBody(completionRequest, { model: 'm', prompt: 'x' })).toBeUndefined();
  });
});
