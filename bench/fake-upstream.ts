// fake-openai-upstream: a deliberately fast stand-in for an OpenAI-compatible engine. It measures
// the gateway in front of it, not a model: every answer is precomputed bytes written straight to
// the socket (raw node:net, a minimal HTTP/1.1 parser, keep-alive), so the direct path is as cheap
// as this machine allows and whatever a proxy adds shows.
//
//   GET  /health                → 200 {"status":"ok"}
//   GET  /v1/models             → one model, `bench-model`
//   POST /v1/chat/completions   → a fixed chat.completion, or with "stream":true paced SSE:
//        the first chunk at once, then one every `intervalMs` (see /_bench/config), `max_tokens`
//        content chunks in all, then a usage chunk and [DONE]. Each content chunk carries the
//        sender's monotonic clock (process.hrtime, shared by every process on the machine) as
//        `"content":"@<ns>"`, so a client can tell how long each chunk spent in transit.
//   GET  /_bench/config?intervalMs=N → set the pacing; /_bench/stats → open streams, requests.
//
// Run as a child process: `node dist/bench/fake-upstream.js [port]`; prints `{"port":N}` once
// listening. Loopback only.
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BENCH_MODEL = 'bench-model';

const CRLF2 = Buffer.from('\r\n\r\n');

function response(status: string, type: string, body: string): Buffer {
  const b = Buffer.from(body);
  return Buffer.concat([
    Buffer.from(`HTTP/1.1 ${status}\r\ncontent-type: ${type}\r\ncontent-length: ${b.length}\r\nconnection: keep-alive\r\n\r\n`),
    b,
  ]);
}

const HEALTH = response('200 OK', 'application/json', '{"status":"ok"}');
const MODELS = response(
  '200 OK',
  'application/json',
  JSON.stringify({ object: 'list', data: [{ id: BENCH_MODEL, object: 'model', created: 0, owned_by: 'bench', max_model_len: 4096 }] }),
);
const NOT_FOUND = response('404 Not Found', 'application/json', '{"error":{"message":"not found","type":"invalid_request_error","code":"not_found"}}');
const COMPLETION = response(
  '200 OK',
  'application/json',
  JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1700000000,
    model: BENCH_MODEL,
    system_fingerprint: 'fake-openai-upstream',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: 'This is the fake upstream answering; it measures the gateway, not a model.' },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: 12, completion_tokens: 16, total_tokens: 28 },
  }),
);
const SSE_HEAD = Buffer.from(
  'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n',
);
const CHUNK_A = `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"${BENCH_MODEL}","choices":[{"index":0,"delta":{`;
const CHUNK_B = '},"logprobs":null,"finish_reason":null}]}\n\n';
const TAIL =
  `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"${BENCH_MODEL}","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\n` +
  `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"${BENCH_MODEL}","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":16,"total_tokens":28}}\n\n` +
  'data: [DONE]\n\n';

/** One HTTP/1.1 chunk of chunked transfer encoding. */
function httpChunk(s: string): string {
  return `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
}

const TAIL_BYTES = Buffer.from(httpChunk(TAIL) + '0\r\n\r\n');

export interface UpstreamStats {
  requests: number;
  streamsOpen: number;
  streamsStarted: number;
  streamsCompleted: number;
  /** Streams whose client (the gateway) went away before the end: cancellation reached us. */
  streamsCancelled: number;
  connections: number;
}

export function startFakeUpstream(port = 0): Promise<{ port: number; close(): void; stats: UpstreamStats }> {
  let intervalMs = 10;
  const stats: UpstreamStats = { requests: 0, streamsOpen: 0, streamsStarted: 0, streamsCompleted: 0, streamsCancelled: 0, connections: 0 };

  function stream(sock: Socket, chunks: number, done: () => void): void {
    stats.streamsOpen++;
    stats.streamsStarted++;
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    let over = false;
    const end = (completed: boolean) => {
      if (over) return;
      over = true;
      if (timer) clearTimeout(timer);
      stats.streamsOpen--;
      if (completed) stats.streamsCompleted++;
      else stats.streamsCancelled++;
      sock.off('close', onClose);
    };
    const onClose = () => end(false);
    sock.on('close', onClose);
    const chunk = (first: boolean) =>
      httpChunk(`${CHUNK_A}${first ? '"role":"assistant",' : ''}"content":"@${process.hrtime.bigint()}"${CHUNK_B}`);
    const tick = () => {
      timer = undefined;
      if (over || sock.destroyed) return end(false);
      sent++;
      if (sent >= chunks) {
        sock.write(chunk(false));
        sock.write(TAIL_BYTES);
        end(true);
        done();
        return;
      }
      sock.write(chunk(false));
      timer = setTimeout(tick, intervalMs);
    };
    sock.write(Buffer.concat([SSE_HEAD, Buffer.from(chunk(true))]));
    sent = 1;
    if (chunks <= 1) {
      sock.write(TAIL_BYTES);
      end(true);
      done();
      return;
    }
    timer = setTimeout(tick, intervalMs);
  }

  const server = createServer({ noDelay: true }, (sock) => {
    stats.connections++;
    sock.on('close', () => stats.connections--);
    sock.on('error', () => {});
    let buf: Buffer = Buffer.alloc(0);
    let busy = false; // a stream is being written on this connection

    const handle = (method: string, path: string, body: Buffer): boolean => {
      stats.requests++;
      if (method === 'GET' && path === '/health') sock.write(HEALTH);
      else if (method === 'GET' && path === '/v1/models') sock.write(MODELS);
      else if (method === 'POST' && (path === '/v1/chat/completions' || path === '/chat/completions')) {
        // The body is scanned, not parsed: a gateway may re-serialize with or without spaces.
        const text = body.toString('latin1');
        if (/"stream"\s*:\s*true/.test(text)) {
          const m = /"max_tokens"\s*:\s*(\d+)/.exec(text);
          busy = true;
          stream(sock, Math.max(1, Math.min(100_000, Number(m?.[1] ?? 16))), () => {
            busy = false;
            pump();
          });
          return false;
        }
        sock.write(COMPLETION);
      } else if (method === 'GET' && path.startsWith('/_bench/config')) {
        const m = /intervalMs=(\d+)/.exec(path);
        if (m) intervalMs = Number(m[1]);
        sock.write(response('200 OK', 'application/json', JSON.stringify({ intervalMs })));
      } else if (method === 'GET' && path === '/_bench/stats') {
        sock.write(response('200 OK', 'application/json', JSON.stringify(stats)));
      } else sock.write(NOT_FOUND);
      return true;
    };

    /** Parse and answer every complete request buffered, in order (pipelining included). */
    const pump = () => {
      while (!busy) {
        const headEnd = buf.indexOf(CRLF2);
        if (headEnd < 0) return;
        const head = buf.toString('latin1', 0, headEnd);
        const sp1 = head.indexOf(' ');
        const sp2 = head.indexOf(' ', sp1 + 1);
        const method = head.slice(0, sp1);
        const path = head.slice(sp1 + 1, sp2);
        const lower = head.toLowerCase();
        let start = headEnd + 4;
        let body: Buffer;
        if (/\r\ntransfer-encoding:[^\r]*chunked/.test(lower)) {
          const parts: Buffer[] = [];
          let pos = start;
          for (;;) {
            const lineEnd = buf.indexOf('\r\n', pos);
            if (lineEnd < 0) return;
            const size = parseInt(buf.toString('latin1', pos, lineEnd), 16);
            if (size === 0) {
              const trailerEnd = buf.indexOf(CRLF2, lineEnd);
              if (trailerEnd < 0 && buf.length < lineEnd + 4) return;
              pos = trailerEnd >= 0 ? trailerEnd + 4 : lineEnd + 4;
              break;
            }
            if (buf.length < lineEnd + 2 + size + 2) return;
            parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
            pos = lineEnd + 2 + size + 2;
          }
          body = Buffer.concat(parts);
          start = pos;
        } else {
          const m = /\r\ncontent-length:\s*(\d+)/.exec(lower);
          const len = m ? Number(m[1]) : 0;
          if (buf.length < start + len) return;
          body = buf.subarray(start, start + len);
          start += len;
        }
        buf = buf.subarray(start);
        handle(method, path, body);
      }
    };

    sock.on('data', (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      pump();
    });
  });
  server.maxConnections = 100_000;
  return new Promise((resolve) => {
    server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => {
      resolve({ port: (server.address() as AddressInfo).port, stats, close: () => server.close() });
    });
  });
}

// As a child process: listen, print the port, run until killed.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const up = await startFakeUpstream(Number(process.argv[2] ?? 0));
  process.stdout.write(`${JSON.stringify({ port: up.port })}\n`);
}
