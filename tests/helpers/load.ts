// Helpers for the load and fault suites: bounded requests against the real stack that always
// settle (never hang the test), classified as a complete answer or a clean error, plus process
// probes (open fds, RSS) and the engine's /slots.
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEMO_MODEL_NAME } from '../../launcher/plan.js';
import { dataUri, png } from '../../gateway/media/test-images.js';
import { until as poll } from './poll.js';

export const MODEL = DEMO_MODEL_NAME;

export type Kind = 'text' | 'stream' | 'image-data' | 'image-url';

/** How a request ended, from the client's side. */
export type Outcome =
  | { kind: Kind; result: 'ok'; status: number; detail: string }
  /** An HTTP error answered with the OpenAI envelope, or a stream that ended with an error event and [DONE]. */
  | { kind: Kind; result: 'clean-error'; status: number; detail: string }
  /**
   * No byte of an answer: the connection was refused (listener closed), or an idle keep-alive
   * connection was closed as the request went out (the HTTP/1.1 race every server has when it stops).
   * Clean for a request sent after SIGTERM: the server never started on it.
   */
  | { kind: Kind; result: 'refused'; status: 0; detail: string }
  /** Anything else: a cut stream, a non-envelope error, a timeout (a hang). */
  | { kind: Kind; result: 'broken'; status: number; detail: string };

export function chatBody(kind: Kind, o: { imageUrl?: string; maxTokens?: number; ignoreEos?: boolean } = {}): Record<string, unknown> {
  const image =
    kind === 'image-data'
      ? { type: 'image_url', image_url: { url: dataUri('image/png', png(32, 32)) } }
      : kind === 'image-url'
        ? { type: 'image_url', image_url: { url: o.imageUrl } }
        : undefined;
  return {
    model: MODEL,
    messages: [{ role: 'user', content: image ? [image, { type: 'text', text: 'What is in this image?' }] : 'Say something.' }],
    max_tokens: o.maxTokens ?? 24,
    ...(o.ignoreEos ? { ignore_eos: true } : {}),
    ...(kind === 'stream' ? { stream: true, stream_options: { include_usage: true } } : {}),
  };
}

const isEnvelope = (text: string): boolean => {
  try {
    const e = (JSON.parse(text) as { error?: { message?: unknown; code?: unknown } }).error;
    return typeof e?.message === 'string';
  } catch {
    return false;
  }
};

/**
 * One chat request, bounded by `timeoutMs`, that always resolves with its outcome. Streams are read
 * to the end; `onFirstChunk` fires when the first content bytes arrive.
 */
export async function chat(
  url: string,
  kind: Kind,
  o: { imageUrl?: string; maxTokens?: number; ignoreEos?: boolean; timeoutMs?: number; onFirstChunk?: () => void; signal?: AbortSignal } = {},
): Promise<Outcome> {
  const timeout = AbortSignal.timeout(o.timeoutMs ?? 60_000);
  const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
  let res: Response;
  try {
    res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chatBody(kind, o)),
      signal,
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    if (timeout.aborted) return { kind, result: 'broken', status: 0, detail: 'timed out before the answer started (hang)' };
    if (cause === 'ECONNREFUSED' || cause === 'ECONNRESET' || cause === 'UND_ERR_SOCKET') return { kind, result: 'refused', status: 0, detail: cause };
    return { kind, result: 'broken', status: 0, detail: `request failed: ${cause}` };
  }
  let text = '';
  try {
    if (kind === 'stream' && res.status === 200) {
      const reader = res.body!.getReader();
      const dec = new TextDecoder();
      let first = true;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += dec.decode(value, { stream: true });
        if (first && text.includes('"choices"')) {
          first = false;
          o.onFirstChunk?.();
        }
      }
    } else text = await res.text();
  } catch (err) {
    return {
      kind,
      result: 'broken',
      status: res.status,
      detail: timeout.aborted ? `timed out mid-answer (hang) after ${text.length} bytes` : `answer cut after ${text.length} bytes: ${(err as Error).message}`,
    };
  }
  if (res.status !== 200) {
    return isEnvelope(text)
      ? { kind, result: 'clean-error', status: res.status, detail: text.slice(0, 200) }
      : { kind, result: 'broken', status: res.status, detail: `non-envelope error body: ${text.slice(0, 200)}` };
  }
  if (kind !== 'stream') {
    try {
      const j = JSON.parse(text) as { choices?: { message?: { content?: unknown } }[]; usage?: { completion_tokens?: number } };
      if (typeof j.choices?.[0]?.message?.content === 'string' && (j.usage?.completion_tokens ?? 0) > 0) {
        return { kind, result: 'ok', status: 200, detail: '' };
      }
    } catch {
      // fall through
    }
    return { kind, result: 'broken', status: 200, detail: `not a chat completion: ${text.slice(0, 200)}` };
  }
  const events = text.split('\n\n').filter((e) => e.trim() !== '');
  if (events.at(-1)?.trim() !== 'data: [DONE]') {
    return { kind, result: 'broken', status: 200, detail: `stream without [DONE] (${events.length} events): …${text.slice(-200)}` };
  }
  const last = events.at(-2) ?? '';
  if (last.startsWith('data: ') && isEnvelope(last.slice(6))) return { kind, result: 'clean-error', status: 200, detail: last.slice(6, 206) };
  return { kind, result: 'ok', status: 200, detail: '' };
}

/** A loopback image server (the URL kind): the gateway fetches, checks and inlines it. */
export async function imageServer(): Promise<{ url: string; server: Server; hits(): number }> {
  const img = png(32, 32, [10, 120, 240]);
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': img.length, 'cache-control': 'no-store' });
    res.end(img);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, hits: () => hits };
}

export const openFds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

export const rssMb = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
};

/** One Prometheus series' value in an exposition (0 when absent). */
export const series = (text: string, name: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
};

/** Sum of every sample of a family whose labels include all of `labels` (e.g. `status="200"`). */
export const sumFamily = (text: string, family: string, labels: string[] = []): number =>
  text
    .split('\n')
    .filter((l) => (l.startsWith(`${family}{`) || l.startsWith(`${family} `)) && labels.every((x) => l.includes(x)))
    .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);

/** Poll `probe` until it returns true, at most `ms` (tests/helpers/poll.ts). */
export const until = (probe: () => Promise<boolean> | boolean, what: string, ms = 15_000): Promise<void> => poll(probe, what, { withinMs: ms });

/** llama-server's /slots: is any slot still generating? */
export async function busySlots(enginePort: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${enginePort}/slots`);
  const slots = (await res.json()) as { is_processing?: boolean }[];
  return slots.filter((s) => s.is_processing === true).length;
}

/** Run `tasks` with at most `n` in flight. */
export async function pool<T>(n: number, count: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, count) }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await task(i);
      }
    }),
  );
  return out;
}

/**
 * The engine child of a launcher, found through /proc (its pid, and its port from `--port N`), so
 * the stack can run with quiet logs (the helper's log-scraping needs INFO lines).
 */
export function engineOf(launcherPid: number, model = 'portico/tiny-vlm'): { pid: number; port: number } {
  const kids = readFileSync(`/proc/${launcherPid}/task/${launcherPid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  // The demo runs one llama-server per model (tiny-vlm, tiny-embed): pick the one serving `model`.
  for (const pid of kids) {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const i = argv.indexOf('--port');
    const alias = argv[argv.indexOf('--alias') + 1];
    if (i >= 0 && /llama-server$/.test(argv[0] ?? '') && alias === model) return { pid, port: Number(argv[i + 1]) };
  }
  throw new Error(`no llama-server child of ${launcherPid} serving ${model} (children: ${kids.join(', ') || 'none'})`);
}
