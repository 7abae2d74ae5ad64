// A scripted OpenAI-style engine on 127.0.0.1 for gateway unit tests: records what it received
// and answers per test (JSON, paced SSE, errors, dying mid-stream).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export type Handler = (req: Received, res: ServerResponse) => void | Promise<void>;

export interface FakeEngine {
  url: string;
  received: Received[];
  /** Requests whose client side went away before the response ended. */
  closedEarly: number;
  on(path: string, h: Handler): void;
  close(): Promise<void>;
}

export async function fakeEngine(): Promise<FakeEngine> {
  const handlers = new Map<string, Handler>();
  const fe: FakeEngine = {
    url: '',
    received: [],
    closedEarly: 0,
    on: (path, h) => handlers.set(path, h),
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const rec = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() };
    fe.received.push(rec);
    res.on('close', () => {
      if (!res.writableFinished) fe.closedEarly++;
    });
    const h = handlers.get(rec.url.split('?')[0]!);
    if (!h) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      return;
    }
    await h(rec, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fe.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fe.on('/health', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}'));
  return fe;
}

export const completion = (content = 'hello') => ({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'test-model',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
});

export const chunk = (content: string, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'test-model', choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n\n`;
