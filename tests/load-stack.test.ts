// Load on the real stack (launcher + gateway + llama-server with the tiny VLM), loopback only,
// bounded in count and time: 200 concurrent mixed requests all complete and the gateway's counters
// add up; clients dropping streams under load leave the engine's slots free and the gateway with no
// fd or memory growth over 1,000 aborted streams.
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './helpers/stack.js';
import { busySlots, chat, engineOf, imageServer, openFds, pool, rssMb, sumFamily, until, type Kind, type Outcome } from './helpers/load.js';

let stack: Stack;
let images: { url: string; server: Server; hits(): number };

beforeAll(async () => {
  images = await imageServer();
  // The image server is on 127.0.0.1: allow private networks for this stack only.
  stack = await startStack({ NIM_MEDIA_ALLOW_PRIVATE_NETWORKS: '1', NIM_LOG_LEVEL: 'WARNING' });
}, 120_000);
afterAll(async () => {
  const code = await stack?.stop();
  images?.server.close();
  expect(code).toBe(0);
});

const metrics = async (): Promise<string> => (await fetch(`${stack.url}/v1/metrics`)).text();
/** In-flight requests other than the scrape asking. */
const inFlight = async (): Promise<number> => sumFamily(await metrics(), 'portico_http_requests_in_flight') - 1;
const CHAT_200 = ['route="/v1/chat/completions"', 'method="POST"', 'status="200"'];

describe('load on the real stack', () => {
  it('200 concurrent mixed requests (text, images by data: URI and by URL, streams) all complete; counters add up', async () => {
    const before = await metrics();
    const kinds: Kind[] = ['text', 'stream', 'image-data', 'image-url'];
    const hitsBefore = images.hits();
    const outcomes: Outcome[] = await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        const kind = kinds[i % kinds.length]!;
        // Distinct URLs: each is fetched (the normalizer's cache would answer repeats).
        return chat(stack.url, kind, { imageUrl: `${images.url}/img-${i}.png`, maxTokens: 8, timeoutMs: 90_000 });
      }),
    );
    const bad = outcomes.filter((o) => o.result !== 'ok');
    expect(bad.slice(0, 5), `${bad.length} of 200 did not complete`).toEqual([]);
    for (const k of kinds) expect(outcomes.filter((o) => o.kind === k && o.result === 'ok')).toHaveLength(50);
    expect(images.hits() - hitsBefore).toBe(50);

    // The gateway counted exactly what the clients saw, and nothing is left in flight.
    await until(async () => (await inFlight()) === 0, 'no request in flight');
    const after = await metrics();
    expect(sumFamily(after, 'portico_http_requests_total', CHAT_200) - sumFamily(before, 'portico_http_requests_total', CHAT_200)).toBe(200);
    await until(async () => (await busySlots(engineOf(stack.proc.pid!).port)) === 0, "the engine's slots to be free");
  }, 150_000);

  it('clients dropping streams mid-generation: slots free again, no fd or memory growth over 1,000 aborted streams', async () => {
    const pid = stack.proc.pid!;
    // A long generation each (ignore_eos), dropped as soon as its first chunk arrives.
    const abortOne = async (): Promise<Outcome | 'aborted'> => {
      const ac = new AbortController();
      const o = await chat(stack.url, 'stream', { maxTokens: 1500, ignoreEos: true, signal: ac.signal, timeoutMs: 30_000, onFirstChunk: () => ac.abort() });
      return ac.signal.aborted ? 'aborted' : o;
    };
    const round = (n: number) => pool(32, n, abortOne);

    const warm = await round(200); // connection pools, JIT and caches reach their steady size
    expect(warm.filter((r) => r !== 'aborted').slice(0, 3)).toEqual([]);
    await until(async () => (await busySlots(engineOf(stack.proc.pid!).port)) === 0, "the engine's slots to be free after 200 aborted streams");
    const fds0 = openFds(pid);
    const rss0 = rssMb(pid);

    const rest = await round(800);
    const notAborted = rest.filter((r) => r !== 'aborted');
    expect(notAborted.slice(0, 3), `${notAborted.length} streams were not aborted mid-generation`).toEqual([]);
    // The engine stops generating for every dropped client: all slots idle again shortly.
    await until(async () => (await busySlots(engineOf(stack.proc.pid!).port)) === 0, "the engine's slots to be free after 1,000 aborted streams");
    await until(async () => (await inFlight()) === 0, 'no request in flight');

    // Sockets of aborted streams are closed: the fd count is where it was (keep-alive pool slack only).
    await until(() => openFds(pid) <= fds0 + 16, `open fds back near ${fds0} (now ${openFds(pid)})`, 10_000);
    // 800 more aborted streams leave no per-stream memory behind (a leak of ~60 KB each would show).
    const grown = rssMb(pid) - rss0;
    expect(grown, `RSS grew ${grown.toFixed(1)} MB over 800 aborted streams`).toBeLessThan(48);
  }, 240_000);
});
