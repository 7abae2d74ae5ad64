// Request schemas (the NIM/OpenAI ChatCompletionRequest and friends). Objects are loose: fields we do
// not model pass through to the engine unchanged, as vLLM's extra sampling params must.
import { z } from 'zod';
import { PorticoError } from '../core/errors.js';

// A content part: `type` picks the shape. Unknown types (vLLM's video_url, audio_url, ...) pass
// through to the engine; the two the gateway reads are checked field by field so `param` can
// name the exact field.
const contentPart = z.looseObject({ type: z.string() }).superRefine((part, ctx) => {
  const p = part as Record<string, unknown>;
  if (p.type === 'text' && typeof p.text !== 'string') {
    ctx.addIssue({ code: 'custom', path: ['text'], message: 'is required and must be a string' });
  }
  if (p.type === 'image_url') {
    // OpenAI clients send {url, detail}; some send the URL as a plain string.
    const iu = p.image_url;
    const url = typeof iu === 'string' ? iu : typeof iu === 'object' && iu !== null ? (iu as { url?: unknown }).url : undefined;
    if (typeof url !== 'string' || url === '') {
      ctx.addIssue({ code: 'custom', path: typeof iu === 'object' && iu !== null ? ['image_url', 'url'] : ['image_url'], message: 'must hold an image URL or data: URI' });
    }
  }
});

const toolCall = z.looseObject({
  id: z.string().optional(),
  type: z.literal('function').optional(),
  function: z.looseObject({ name: z.string().optional(), arguments: z.string().optional() }).optional(),
});

export const chatMessage = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(contentPart), z.null()]).optional(),
  name: z.string().optional(),
  tool_calls: z.array(toolCall).optional(),
  tool_call_id: z.string().optional(),
});

const stop = z.union([z.string(), z.array(z.string()).max(16)]).nullish();
const common = {
  model: z.string().min(1),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  n: z.number().int().min(1).max(128).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  stop,
  seed: z.number().int().nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  logprobs: z.union([z.boolean(), z.number().int().min(0)]).nullish(),
  user: z.string().nullish(),
};

export const chatCompletionRequest = z.looseObject({
  ...common,
  messages: z.array(chatMessage).min(1),
  max_completion_tokens: z.number().int().min(1).nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  tools: z
    .array(
      z.looseObject({
        type: z.literal('function'),
        function: z.looseObject({ name: z.string().min(1), description: z.string().optional(), parameters: z.record(z.string(), z.unknown()).optional() }),
      }),
    )
    .nullish(),
  tool_choice: z.union([z.enum(['auto', 'none', 'required']), z.looseObject({ type: z.string() })]).nullish(),
  response_format: z.looseObject({ type: z.enum(['text', 'json_object', 'json_schema']) }).nullish(),
});

const tokenIds = z.array(z.number().int().min(0));
export const completionRequest = z.looseObject({
  ...common,
  prompt: z.union([z.string(), z.array(z.string()).min(1), tokenIds.min(1), z.array(tokenIds.min(1)).min(1)]),
  echo: z.boolean().nullish(),
  suffix: z.string().nullish(),
});

const embeddingCommon = {
  model: z.string().min(1),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: z.number().int().min(1).nullish(),
};
// vLLM also embeds chat messages (multimodal embedding models): their parts go through the media step.
export const embeddingRequest = z.union([
  z.looseObject({ ...embeddingCommon, input: z.union([z.string(), z.array(z.string()), tokenIds, z.array(tokenIds)]) }),
  z.looseObject({ ...embeddingCommon, messages: z.array(chatMessage).min(1) }),
]);

// vLLM's /tokenize takes either a prompt or chat messages.
export const tokenizeRequest = z.union([
  z.looseObject({ model: z.string().optional(), prompt: z.string(), add_special_tokens: z.boolean().optional() }),
  z.looseObject({
    model: z.string().optional(),
    messages: z.array(chatMessage).min(1),
    add_generation_prompt: z.boolean().optional(),
    add_special_tokens: z.boolean().optional(),
  }),
]);

export const detokenizeRequest = z.looseObject({ model: z.string().optional(), tokens: tokenIds });

export type ChatCompletionRequest = z.infer<typeof chatCompletionRequest>;
export type CompletionRequest = z.infer<typeof completionRequest>;
export type TokenizeRequest = z.infer<typeof tokenizeRequest>;
export type DetokenizeRequest = z.infer<typeof detokenizeRequest>;

/** `messages[0].content[1].image_url.url` style path, as OpenAI names params. */
export function paramPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/** Validate or throw a 400 naming the first offending field. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new PorticoError('invalid_request', 'Request body must be a JSON object');
  }
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = deepestIssue(r.error.issues);
  const param = paramPath(issue.path);
  const what = issue.code === 'invalid_type' && issue.message.endsWith('received undefined') ? 'is required' : issue.message;
  throw new PorticoError('invalid_parameter', `${param || 'body'}: ${what}`, { param: param || null });
}

type Issue = z.core.$ZodIssue;
// Unions report "invalid_union" at the union's path; the branch errors say what is really wrong.
function deepestIssue(issues: readonly Issue[]): Issue {
  let best = issues[0]!;
  for (const issue of issues) {
    if (issue.code === 'invalid_union' && 'errors' in issue) {
      for (const branch of issue.errors) {
        if (branch.length === 0) continue;
        const inner = deepestIssue(branch.map((b) => ({ ...b, path: [...issue.path, ...b.path] })));
        if (inner.path.length > best.path.length) best = inner;
      }
    } else if (issue.path.length > best.path.length) best = issue;
  }
  return best;
}
