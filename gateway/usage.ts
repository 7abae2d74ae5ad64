// Token usage as the gateway sees it: the `usage` object of a JSON response, or of the final
// usage chunk of an SSE stream (`stream_options.include_usage`). Both readers are cheap: a JSON
// body is searched backwards for `"usage"` (native byte search, no decode of the whole body), and
// a stream only parses the few events that contain `"usage"` (or llama-server's `"timings"`,
// used when the client did not ask for usage), buffering at most the tail of one event.

export interface Usage {
  prompt: number;
  completion: number;
}

const USAGE = Buffer.from('"usage"');
const TIMINGS = Buffer.from('"timings"');
const EVENT_END = Buffer.from('\n\n');
const DATA = Buffer.from('data:');
const PROMPT_RE = /"prompt_tokens"\s*:\s*(\d+)/;
const COMPLETION_RE = /"completion_tokens"\s*:\s*(\d+)/;
/** How much text after `"usage"` we read: the object itself, with room for `*_details`. */
const USAGE_WINDOW = 1024;
/** An SSE event longer than this cannot be a usage chunk we care about: stop buffering it. */
const MAX_EVENT_TAIL = 64 * 1024;

const asBuffer = (b: Uint8Array | ArrayBuffer): Buffer =>
  Buffer.isBuffer(b) ? b : b instanceof ArrayBuffer ? Buffer.from(b) : Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/**
 * `usage` of a (non-streamed) JSON response body, or undefined. Finds the last top-level-looking
 * `"usage": {` (a key inside a string would be escaped, so the byte pattern cannot come from text)
 * and reads `prompt_tokens` / `completion_tokens` from the window after it.
 */
export function usageFromJson(body: Uint8Array | ArrayBuffer): Usage | undefined {
  const buf = asBuffer(body);
  let at = buf.lastIndexOf(USAGE);
  while (at >= 0) {
    const window = buf.toString('latin1', at + USAGE.length, Math.min(buf.length, at + USAGE.length + USAGE_WINDOW));
    const m = /^\s*:\s*\{/.exec(window);
    if (m) return readUsage(window.slice(m[0].length));
    at = at > 0 ? buf.lastIndexOf(USAGE, at - 1) : -1;
  }
  return undefined;
}

/** prompt/completion counts from the text of a usage object (and whatever follows it). */
function readUsage(text: string): Usage | undefined {
  // Only look inside this object: stop at its closing brace (the *_details objects nest one level).
  let depth = 0;
  let end = text.length;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 123 /* { */) depth++;
    else if (ch === 125 /* } */) {
      if (depth === 0) {
        end = i;
        break;
      }
      depth--;
    }
  }
  const obj = text.slice(0, end);
  const p = PROMPT_RE.exec(obj);
  const c = COMPLETION_RE.exec(obj);
  if (!p && !c) return undefined;
  return { prompt: p ? Number(p[1]) : 0, completion: c ? Number(c[1]) : 0 };
}

/**
 * Watches SSE bytes as they pass and remembers the last usage seen. Chunks are inspected with a
 * native byte search; an event is parsed only if it contains `"usage"` or `"timings"`. Only the
 * incomplete tail event of a chunk is kept (events split across TCP chunks), bounded in size.
 */
export class StreamUsage {
  /** `data:` lines seen (at the start of a line or of a chunk): the events of the stream. */
  events = 0;
  private tail: Buffer | undefined;
  private usage: Usage | undefined;
  private timings: Usage | undefined;

  push(chunk: Uint8Array): void {
    let buf = asBuffer(chunk);
    for (let i = buf.indexOf(DATA); i >= 0; i = buf.indexOf(DATA, i + DATA.length)) if (i === 0 || buf[i - 1] === 10) this.events++;
    if (this.tail) {
      buf = Buffer.concat([this.tail, buf]);
      this.tail = undefined;
    }
    const n = buf.length;
    // Engines write whole events, so a chunk usually ends with "\n\n": nothing to carry over.
    const complete = n >= 2 && buf[n - 1] === 10 && buf[n - 2] === 10;
    let upto = n;
    if (!complete) {
      const lastEnd = buf.lastIndexOf(EVENT_END);
      upto = lastEnd < 0 ? 0 : lastEnd + 2;
      if (n - upto <= MAX_EVENT_TAIL) this.tail = buf.subarray(upto);
    }
    if (upto === 0) return;
    const u = buf.indexOf(USAGE);
    if (!(u >= 0 && u < upto)) {
      const t = buf.indexOf(TIMINGS);
      if (!(t >= 0 && t < upto)) return;
    }
    this.scan(buf.toString('utf8', 0, upto));
  }

  /** The usage of the stream: the engine's usage chunk, else llama-server's timings, else undefined. */
  result(): Usage | undefined {
    return this.usage ?? this.timings;
  }

  /** The engine's own usage chunk only (not llama-server's timings). */
  reported(): Usage | undefined {
    return this.usage;
  }

  private scan(text: string): void {
    for (const event of text.split('\n\n')) {
      if (!event.includes('"usage"') && !event.includes('"timings"')) continue;
      const data = event
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      if (!data || data === '[DONE]') continue;
      let obj: { usage?: unknown; timings?: unknown };
      try {
        obj = JSON.parse(data) as typeof obj;
      } catch {
        continue;
      }
      const u = usageObject(obj.usage);
      if (u) this.usage = u;
      const t = timingsObject(obj.timings);
      if (t) this.timings = t;
    }
  }
}

function usageObject(u: unknown): Usage | undefined {
  if (typeof u !== 'object' || u === null) return undefined;
  const { prompt_tokens: p, completion_tokens: c } = u as { prompt_tokens?: unknown; completion_tokens?: unknown };
  if (typeof p !== 'number' && typeof c !== 'number') return undefined;
  return { prompt: typeof p === 'number' ? p : 0, completion: typeof c === 'number' ? c : 0 };
}

/** llama-server's per-request timings: prompt = evaluated + reused-from-cache tokens. */
function timingsObject(t: unknown): Usage | undefined {
  if (typeof t !== 'object' || t === null) return undefined;
  const { prompt_n: p, cache_n: cached, predicted_n: c } = t as { prompt_n?: unknown; cache_n?: unknown; predicted_n?: unknown };
  if (typeof p !== 'number' || typeof c !== 'number') return undefined;
  return { prompt: p + (typeof cached === 'number' ? cached : 0), completion: c };
}
