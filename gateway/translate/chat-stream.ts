// A chat-completions SSE body (what forward() streams: the engine's chunks, and portico's own
// error event if the engine fails mid-stream) re-emitted as another API's event stream. Events go
// out as each chat chunk arrives: nothing waits for the end of the answer, so TTFT is the chat
// path's. The translators (Responses, Messages) are plain state machines over parsed chunks.

/** One chat.completion.chunk, as far as the translators read it. */
export interface ChatChunk {
  id?: string;
  choices?: {
    index?: number;
    delta?: {
      content?: string | null;
      reasoning_content?: string | null;
      tool_calls?: { index?: number; id?: string; type?: string; function?: { name?: string; arguments?: string } }[];
    };
    finish_reason?: string | null;
  }[];
  usage?: ChatUsage | null;
}

export interface ChatUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number } | null;
}

/** The error object of a failed stream (portico's envelope or the engine's). */
export interface StreamFailure {
  message: string;
  type?: string;
  code?: string | null;
}

/** Turns parsed chat chunks into the text of the target API's SSE events. */
export interface EventTranslator {
  /** Events sent before the engine's first chunk (the answer's header). */
  start(): string;
  chunk(chunk: ChatChunk): string;
  /** The stream failed: the final events (no `end` follows). */
  fail(err: StreamFailure): string;
  /** The chat stream ended normally: the closing events. */
  end(): string;
}

/** One SSE event with an `event:` name (both APIs name their events). */
export function sseEvent(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

const enc = new TextEncoder();
const EVENT_END = /\r?\n\r?\n/;

/**
 * A TransformStream from chat SSE bytes to the translator's SSE bytes. Cancelling its readable side
 * (the client went away) cancels the chat stream, which aborts the engine request.
 */
export function translateChatStream(tr: EventTranslator): TransformStream<Uint8Array, Uint8Array> {
  const dec = new TextDecoder();
  let buf = '';
  let failed = false;
  const emit = (ctrl: TransformStreamDefaultController<Uint8Array>, text: string) => {
    if (text) ctrl.enqueue(enc.encode(text));
  };
  const handle = (ctrl: TransformStreamDefaultController<Uint8Array>, event: string) => {
    if (failed) return;
    const data = event
      .split(/\r?\n/)
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(l[5] === ' ' ? 6 : 5))
      .join('\n');
    if (data === '' || data === '[DONE]') return;
    let obj: unknown;
    try {
      obj = JSON.parse(data);
    } catch {
      return; // not a chunk (a comment or keep-alive): nothing to translate
    }
    if (typeof obj !== 'object' || obj === null) return;
    const err = (obj as { error?: unknown }).error;
    if (err !== undefined && err !== null) {
      failed = true;
      const e = typeof err === 'object' ? (err as Record<string, unknown>) : { message: String(err) };
      emit(ctrl, tr.fail({ message: String(e.message ?? 'the engine failed'), type: typeof e.type === 'string' ? e.type : undefined, code: typeof e.code === 'string' ? e.code : null }));
      return;
    }
    emit(ctrl, tr.chunk(obj as ChatChunk));
  };
  return new TransformStream<Uint8Array, Uint8Array>({
    start(ctrl) {
      emit(ctrl, tr.start());
    },
    transform(bytes, ctrl) {
      buf += dec.decode(bytes, { stream: true });
      for (;;) {
        const m = EVENT_END.exec(buf);
        if (!m) break;
        const event = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        handle(ctrl, event);
      }
    },
    flush(ctrl) {
      buf += dec.decode();
      if (buf.trim() !== '') handle(ctrl, buf);
      if (!failed) emit(ctrl, tr.end());
    },
  });
}
