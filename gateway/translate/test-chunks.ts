// Chat SSE bodies shaped as llama-server streams them (role chunk, content deltas, tool-call
// deltas, finish chunk, the include_usage chunk, [DONE]), for the translators' unit tests.
import type { ChatChunk } from './chat-stream.js';

const base = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm' };

export function chunk(delta: Record<string, unknown>, finish: string | null = null): ChatChunk {
  return { ...base, choices: [{ index: 0, delta, finish_reason: finish }] } as ChatChunk;
}

export const usageChunk = (prompt: number, completion: number): ChatChunk =>
  ({ ...base, choices: [], usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion } }) as ChatChunk;

/** A text answer split into deltas. */
export function textChunks(parts: string[], finish = 'stop', usage: [number, number] = [12, parts.length]): ChatChunk[] {
  return [chunk({ role: 'assistant', content: null }), ...parts.map((p) => chunk({ content: p })), chunk({}, finish), usageChunk(...usage)];
}

/** One function call, its arguments split into deltas. */
export function toolChunks(name: string, args: string[], id = 'call_abc'): ChatChunk[] {
  return [
    chunk({ role: 'assistant', content: null }),
    chunk({ tool_calls: [{ index: 0, id, type: 'function', function: { name, arguments: '' } }] }),
    ...args.map((a) => chunk({ tool_calls: [{ index: 0, function: { arguments: a } }] })),
    chunk({}, 'tool_calls'),
    usageChunk(20, 9),
  ];
}

/** The SSE bytes of these chunks, cut into arbitrary pieces (events split across reads). */
export function sseBytes(chunks: readonly (ChatChunk | string)[], cut = 7): Uint8Array[] {
  const text = chunks.map((c) => `data: ${typeof c === 'string' ? c : JSON.stringify(c)}\n\n`).join('') + 'data: [DONE]\n\n';
  const bytes = new TextEncoder().encode(text);
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += cut) out.push(bytes.slice(i, i + cut));
  return out;
}

export function streamOf(pieces: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(ctrl) {
      if (i < pieces.length) ctrl.enqueue(pieces[i++]!);
      else ctrl.close();
    },
  });
}

/** Parse SSE text into `{event, data}` pairs. */
export function parseEvents(text: string): { event: string | undefined; data: Record<string, unknown> }[] {
  return text
    .split('\n\n')
    .filter((e) => e.trim() !== '')
    .map((e) => {
      const lines = e.split('\n');
      const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
      const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      return { event, data: JSON.parse(data) as Record<string, unknown> };
    });
}

export async function readAll(s: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(s).text();
}
