// One of several engines dying (SIGKILL to the real llama-server of portico/tiny-embed): its model
// answers 503 engine_unavailable at once; by default the process then exits non-zero (the
// orchestrator restarts it); with NIM_MODELS_RESTART=1 that engine is restarted in place while the
// chat model keeps answering throughout.
import { describe, expect, it } from 'vitest';
import { json } from './helpers/json.js';
import { until } from './helpers/poll.js';
import { startStack, type Stack } from './helpers/stack.js';

const CHAT = 'portico/tiny-vlm';
const EMBED = 'portico/tiny-embed';

const post = (s: Stack, path: string, body: unknown) => fetch(`${s.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const embed = (s: Stack) => post(s, '/v1/embeddings', { model: EMBED, input: 'hello' });
const chat = (s: Stack) => post(s, '/v1/chat/completions', { model: CHAT, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
/** Every pid the launcher logged for a model's engine, in order (a restart logs a new one). */
const pidsOf = (s: Stack, model: string) => [...s.output().matchAll(/engine pid (\d+) \(model ([^)]+)\)/g)].filter((m) => m[2] === model).map((m) => Number(m[1]));
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('supervision of several engines', () => {
  it('by default, one engine dying makes its model answer 503 at once and the process exit non-zero, taking the other engine down', async () => {
    const s = await startStack();
    try {
      const [embedPid] = pidsOf(s, EMBED);
      const [chatPid] = pidsOf(s, CHAT);
      expect(embedPid).toBeGreaterThan(0);
      expect((await embed(s)).status).toBe(200);
      process.kill(embedPid!, 'SIGKILL');
      // Before the process ends (it keeps answering 503 for a moment so probes see "not ready").
      // A request racing the exit finds the port closed (503 too); then the model is marked down.
      const codes = new Set<string>();
      let message = '';
      await until(
        async () => {
          const r = await embed(s);
          if (r.status !== 503) return false;
          const body = await json(r);
          codes.add(body.error.code);
          message = body.error.message;
          return message.includes('the engine exited');
        },
        'embeddings to answer 503 for the dead engine',
        { detail: s.output },
      );
      expect([...codes]).toEqual(['engine_unavailable']);
      expect(message).toBe(`The inference engine is not ready: ${EMBED}: the engine exited (code 137)`);
      const code = await s.proc.then((r) => r.exitCode);
      expect(code).toBe(137);
      expect(s.output()).toContain(`the engine exited unexpectedly with code 137 (model ${EMBED})`);
      expect(alive(chatPid!)).toBe(false);
    } finally {
      await s.stop();
    }
  });

  it('NIM_MODELS_RESTART=1 restarts the dead engine in place; the other model answers throughout', async () => {
    const s = await startStack({ NIM_MODELS_RESTART: '1' });
    try {
      const [first] = pidsOf(s, EMBED);
      process.kill(first!, 'SIGKILL');
      const statuses: number[] = [];
      let embedStatus = 0;
      let saw503 = false;
      // Chat keeps being asked while the embedding engine is down and back (bounded: 60 rounds).
      for (let i = 0; i < 60 && !(saw503 && embedStatus === 200); i++) {
        statuses.push((await chat(s)).status);
        const r = await embed(s);
        embedStatus = r.status;
        if (r.status === 503) {
          saw503 = true;
          expect((await json(r)).error.code).toBe('engine_unavailable');
        } else await r.body?.cancel();
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(saw503).toBe(true);
      expect(embedStatus, s.output().slice(-2000)).toBe(200);
      expect(statuses.every((x) => x === 200)).toBe(true);
      const pids = pidsOf(s, EMBED);
      expect(pids).toHaveLength(2);
      expect(pids[1]).not.toBe(first);
      expect(s.output()).toMatch(/restarting the engine \(model portico\/tiny-embed\) in 1000 ms \(attempt 1; NIM_MODELS_RESTART\)/);
      expect(s.proc.exitCode).toBeNull();
      expect((await fetch(`${s.url}/v1/health/ready`)).status).toBe(200);
    } finally {
      expect(await s.stop()).toBe(0);
    }
  });
});
