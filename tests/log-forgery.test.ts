// Logs cannot be forged (issue 12, item 4): request-derived text in the human log format is
// escaped, so a request cannot add a line or an ANSI escape to the launcher's stdout.
import { Writable } from 'node:stream';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createLogger, humanLine } from '../core/logger.js';
import { listen, type RunningServer } from '../gateway/server.js';
import { rig, type Rig } from './helpers/secure-app.js';

let r: Rig;
let server: RunningServer | undefined;
beforeEach(async () => {
  r = await rig();
});
afterEach(async () => {
  await server?.close(100);
  server = undefined;
  await r.close();
});

function sink() {
  let out = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => out };
}

it('GET /v1/models%0a<fake line>%1b[31m without a key: one escaped line, no forged INFO line, no ANSI escape', async () => {
  const out = sink();
  const log = createLogger({ logLevel: 'info', jsonlLogging: false }, out.stream);
  const { app } = r.make({ log, settings: { maxRequestBytes: 65536, apiKeys: ['sk-forgery-test-key-000000'] } });
  server = await listen(app, { port: 0, host: '127.0.0.1' });
  const forged = '%0a2026-12-03T00:00:00.000Z%20INFO%20%20%20%20[gateway]%20admin%20logged%20in%1b[31m';
  const res = await fetch(`http://127.0.0.1:${server.port}/v1/models${forged}`, { headers: { 'user-agent': 'x\u0085y' } });
  expect(res.status).toBe(401);
  await new Promise((res) => setImmediate(res));
  const lines = out.text().split('\n').filter(Boolean);
  expect(lines.some((l) => l.includes('admin logged in'))).toBe(true);
  expect(lines.filter((l) => /^2026-12-03T00:00:00\.000Z/.test(l))).toEqual([]);
  expect(out.text()).not.toMatch(/\u001b/);
  expect(out.text()).toMatch(/\\n2026-12-03T00:00:00\.000Z INFO {4}\[gateway\] admin logged in\\u001b\[31m/);
});

it('humanLine escapes controls in the message, the component and every value; one line per entry', () => {
  const line = humanLine(JSON.stringify({ time: 't', level: 'INFO', msg: 'a\nb\r\u001b[2J\u2028', component: 'c\nd', model: 'm\u0007', n: 1 }));
  expect(line).toBe('t INFO    [c\\nd] a\\nb\\r\\u001b[2J\\u2028 model=m\\u0007 n=1\n');
});
