// The floor: the least a gateway built like portico (Hono on @hono/node-server, undici Pool to the
// engine) can do per request: read the body from the IncomingMessage, JSON.parse it (a gateway must
// at least parse to validate), forward it, return the answer as bytes. No validation, middleware,
// metrics or limits. `npm run bench -- --paths direct,nginx,portico,floor` measures it beside
// portico, so the distance between the two is what portico's request path costs.
//   node dist/bench/floor.js   (NIM_ENGINE_URL, NIM_SERVER_HOST, NIM_SERVER_PORT as for portico)
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { Pool } from 'undici';
import { loadSettings } from '../core/config.js';

// The same settings portico parses (the bench gives both the same NIM_ENGINE_URL / NIM_SERVER_*).
const settings = loadSettings();
const pool = new Pool(settings.engineUrl ?? 'http://127.0.0.1:8001', { connections: null, keepAliveTimeout: 30_000 });
const app = new Hono<{ Bindings: { incoming: IncomingMessage } }>();

const readIncoming = (incoming: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (c: Buffer) => chunks.push(c));
    incoming.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    incoming.on('error', reject);
  });

app.get('/v1/health/ready', (c) => c.json({ object: 'health.response', message: 'Service is ready.' }));
app.post('/v1/chat/completions', async (c) => {
  const raw = await readIncoming(c.env.incoming);
  const body = JSON.parse(raw.toString('utf8')) as { stream?: boolean };
  const res = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: raw, signal: c.req.raw.signal });
  if (body.stream === true) {
    const it = (res.body as unknown as Readable)[Symbol.asyncIterator]();
    const stream = new ReadableStream<Uint8Array>(
      {
        async pull(ctrl) {
          const r = await it.next();
          if (r.done) ctrl.close();
          else ctrl.enqueue(r.value as Uint8Array);
        },
        cancel: () => void res.body.destroy(),
      },
      { highWaterMark: 0 },
    );
    return c.body(stream, 200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  }
  return c.body(new Uint8Array(await res.body.arrayBuffer()), res.statusCode as 200, { 'content-type': 'application/json' });
});

const server = createAdaptorServer({ fetch: app.fetch });
server.listen({ port: settings.port, host: settings.host, backlog: 4096 });
process.on('SIGTERM', () => server.close(() => process.exit(0)));
