// The common chat completion body, accepted without running the zod schema: a model, text
// messages and a few plain sampling fields is what most requests are, and the schema walk (plus the
// copy it makes) is the largest piece of the gateway's own per-request work. Only bodies made of
// the fields below with plain values are accepted here, each checked at least as strictly as
// gateway/schemas.ts does; anything else, or any doubt, goes through the schema (which also names
// the offending field). plain-body.test.ts holds this to the schema: whatever it accepts, the
// schema accepts.
import type { z } from 'zod';
import { chatCompletionRequest } from './schemas.js';

type Check = (v: unknown) => boolean;

const nullish = (check: Check): Check => (v) => v === undefined || v === null || check(v);
const int = (min: number, max = Number.MAX_SAFE_INTEGER): Check => (v) => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
const range = (min: number, max: number): Check => (v) => typeof v === 'number' && v >= min && v <= max;
const bool: Check = (v) => typeof v === 'boolean';
const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

/** A message with a role, text content (or none) and an optional name: nothing else. */
function plainMessage(m: unknown): boolean {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return false;
  let role = false;
  for (const k in m) {
    if (!Object.hasOwn(m, k)) return false;
    const v = (m as Record<string, unknown>)[k];
    if (k === 'role') role = typeof v === 'string' && ROLES.has(v);
    else if (k === 'content') {
      if (v !== undefined && v !== null && typeof v !== 'string') return false;
    } else if (k === 'name') {
      if (v !== undefined && typeof v !== 'string') return false;
    } else return false;
  }
  return role;
}

const CHAT: Record<string, Check> = {
  model: (v) => typeof v === 'string' && v.length >= 1,
  messages: (v) => Array.isArray(v) && v.length >= 1 && v.every(plainMessage),
  max_tokens: nullish(int(1)),
  max_completion_tokens: nullish(int(1)),
  n: nullish(int(1, 128)),
  seed: nullish(int(Number.MIN_SAFE_INTEGER)),
  temperature: nullish(range(0, 2)),
  top_p: nullish(range(0, 1)),
  frequency_penalty: nullish(range(-2, 2)),
  presence_penalty: nullish(range(-2, 2)),
  stream: nullish(bool),
  stream_options: nullish((v) => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).every((k) => k === 'include_usage') && nullish(bool)((v as { include_usage?: unknown }).include_usage)),
  user: nullish((v) => typeof v === 'string'),
};

/** Is `body` a plain chat completion body (see above)? Then it is valid as it is. */
export function plainChat(body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  let model = false;
  let messages = false;
  for (const k in body) {
    if (!Object.hasOwn(body, k)) return false;
    const check = Object.hasOwn(CHAT, k) ? CHAT[k] : undefined;
    if (!check || !check((body as Record<string, unknown>)[k])) return false;
    if (k === 'model') model = true;
    else if (k === 'messages') messages = true;
  }
  return model && messages;
}

const PLAIN = new Map<z.ZodType, (body: unknown) => boolean>([[chatCompletionRequest, plainChat]]);

/** The body as it is when it is plainly valid for `schema`, else undefined (validate it with parseBody). */
export function plainBody(schema: z.ZodType, body: unknown): Record<string, unknown> | undefined {
  const check = PLAIN.get(schema);
  return check?.(body) ? (body as Record<string, unknown>) : undefined;
}
