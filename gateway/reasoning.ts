// Reasoning text under both names. vLLM v0.11.0 and llama-server answer `reasoning_content`; later
// vLLM renamed it `reasoning`; clients read one or the other. Every chat answer that carries one
// gets the other too, in JSON messages and in streamed deltas. Answers without reasoning are passed
// on untouched (a substring test, no parse).
import { Transform, type TransformCallback } from 'node:stream';

type Json = Record<string, unknown>;
const MARK = '"reasoning';

function mirror(obj: Json): boolean {
  let changed = false;
  for (const c of (obj.choices as Json[] | undefined) ?? []) {
    for (const key of ['message', 'delta']) {
      const m = c[key] as Json | undefined;
      if (!m || typeof m !== 'object') continue;
      const a = m.reasoning_content;
      const b = m.reasoning;
      if (typeof a === 'string' && b === undefined) {
        m.reasoning = a;
        changed = true;
      } else if (typeof b === 'string' && a === undefined) {
        m.reasoning_content = b;
        changed = true;
      }
    }
  }
  return changed;
}

const MARK_BYTES = Buffer.from(MARK);

/** A JSON chat answer with both names (the same bytes when there is no reasoning: a native byte search, no decode). */
export function mirrorReasoningJson(buf: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const bytes = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (bytes.indexOf(MARK_BYTES) < 0) return buf;
  try {
    const obj = JSON.parse(bytes.toString('utf8')) as Json;
    return mirror(obj) ? new Uint8Array(Buffer.from(JSON.stringify(obj))) : buf;
  } catch {
    return buf;
  }
}

/** SSE bytes → the same events, each `data:` line with reasoning carrying both names. */
export class ReasoningSse extends Transform {
  private pending = '';

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const text = this.pending + chunk.toString('utf8');
    const cut = text.lastIndexOf('\n') + 1;
    this.pending = text.slice(cut);
    if (cut > 0) this.push(Buffer.from(text.includes(MARK) ? rewrite(text.slice(0, cut)) : text.slice(0, cut)));
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.pending) this.push(Buffer.from(rewrite(this.pending)));
    done();
  }
}

function rewrite(lines: string): string {
  return lines
    .split('\n')
    .map((line) => {
      if (!line.startsWith('data:') || !line.includes(MARK)) return line;
      try {
        const obj = JSON.parse(line.slice(5)) as Json;
        return mirror(obj) ? `data: ${JSON.stringify(obj)}` : line;
      } catch {
        return line;
      }
    })
    .join('\n');
}
