// The engine dying is fatal: open streams end with an error event, readiness turns 503, and the
// launcher exits non-zero so an orchestrator restarts it.
import { readFileSync } from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import { DEMO_MODEL_NAME } from '../launcher/plan.js';
import { startStack, type Stack } from './helpers/stack.js';
import { readRest } from './helpers/json.js';

let stack: Stack | undefined;
afterAll(async () => void (await stack?.stop()));

it('engine killed mid-stream: error event + [DONE], ready 503, launcher exits non-zero', async () => {
  stack = await startStack();
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: DEMO_MODEL_NAME, messages: [{ role: 'user', content: 'go' }], max_tokens: 1900, ignore_eos: true, stream: true }),
  });
  const reader = res.body!.getReader();
  await reader.read(); // the stream is under way
  process.kill(stack.enginePid(), 'SIGKILL');

  let sawNotReady = false;
  const poll = (async () => {
    for (let i = 0; i < 100 && !sawNotReady; i++) {
      const status = await fetch(`${stack!.url}/v1/health/ready`).then((r) => r.status, () => 0);
      if (status === 503) sawNotReady = true;
      else await new Promise((r) => setTimeout(r, 20));
    }
  })();

  const rest = await readRest(reader);
  const events = rest.split('\n\n').filter(Boolean);
  expect(events.at(-1)).toBe('data: [DONE]');
  expect(JSON.parse(events.at(-2)!.slice(6)).error.code).toBe('engine_unavailable');

  await poll;
  expect(sawNotReady).toBe(true);
  const { exitCode } = await stack.proc;
  expect(exitCode).not.toBe(0);
  expect(stack.output()).toMatch(/engine exited unexpectedly/);
});

/** Alive and not a zombie (a reaped-late child of init is already dead). */
const alive = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

it('the launcher killed with SIGKILL: no engine is left 2 s later', async () => {
  const s = await startStack();
  const enginePid = s.enginePid();
  expect(alive(enginePid)).toBe(true);
  try {
    process.kill(s.proc.pid!, 'SIGKILL');
    await s.proc;
    await new Promise((r) => setTimeout(r, 2000));
    expect(alive(enginePid), `engine pid ${enginePid} outlived its launcher`).toBe(false);
  } finally {
    if (alive(enginePid)) process.kill(enginePid, 'SIGKILL');
  }
});
