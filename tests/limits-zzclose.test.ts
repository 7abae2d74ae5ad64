import { it, expect } from 'vitest';
import { listen } from '../gateway/server.js';
import { rig, sampleBody } from './helpers/secure-app.js';
import { chunk } from './helpers/fake-engine.js';

it('close is prompt', async () => {
  const r = await rig();
  const { app } = r.make({ settings: { maxRequestBytes: 256 * 1024, maxConcurrentRequests: 256 } });
  const server = await listen(app, { port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${server.port}`;
  const postJson = (path: string, body: unknown, signal?: AbortSignal) =>
    fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body), signal });
  const which = process.env.WHICH ?? 'all';
  if (which === 'all' || which === '413') {
    const res = await postJson('/v1/chat/completions', { ...sampleBody('/v1/chat/completions'), pad: 'x'.repeat(300 * 1024) });
    expect(res.status).toBe(413);
    await res.text();
  }
  if (which === 'all' || which === 'abort') {
    r.engine.on('/v1/chat/completions', (_q, res) => { res.writeHead(200, { 'content-type': 'text/event-stream' }); res.write(chunk('a')); });
    const ac = new AbortController();
    const res = await postJson('/v1/chat/completions', { ...sampleBody('/v1/chat/completions'), stream: true }, ac.signal);
    const rd = res.body!.getReader(); await rd.read(); ac.abort();
    await new Promise((r) => setTimeout(r, Number(process.env.DELAY ?? 100)));
    const n = await new Promise((res) => server.server.getConnections((e, c) => res(c)));
    console.log('CONNS', n, 'closedEarly', r.engine.closedEarly);
  }
  const t = performance.now();
  await server.close(2_000);
  console.log('CLOSE MS', which, performance.now() - t);
  await r.close();
}, 60_000);
