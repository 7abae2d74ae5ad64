// Typed JSON bodies for tests. `Response.json()` is `Promise<unknown>`; `json<T>(res)` names the
// shape the test expects (default: portico's error envelope). Nothing is validated here: the
// assertions that follow are the check (reading `.error.code` of a body without `error` throws).
import type { modelCard } from '../../gateway/app.js';
import type { TokenizeResult } from '../../gateway/dialect.js';
import type { ErrorEnvelope } from '../../core/errors.js';

export type { ErrorEnvelope, TokenizeResult };

/** One entry of GET /v1/models (the NIM model card). */
export type ModelCard = ReturnType<typeof modelCard>;

/** GET /v1/models. */
export interface ModelList {
  object: string;
  data: ModelCard[];
}

/** POST /v1/chat/completions/render and /v1/completions/render (vLLM shape). */
export interface RenderResponse {
  prompt: string;
  prompt_token_ids: number[];
}

export async function json<T = ErrorEnvelope>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

/** Read what is left of a streamed body, as text (after a test has taken the first chunk itself). */
export async function readRest(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string> {
  const dec = new TextDecoder();
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + dec.decode();
    text += dec.decode(value, { stream: true });
  }
}
