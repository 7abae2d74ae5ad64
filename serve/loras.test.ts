// The llama.cpp refresh step (serve/loras.ts) with a stand-in engine: readiness goes 503 first,
// admitted requests finish, the engine is replaced with the new --lora-scaled list, and only once
// it answers its health check do the adapter models change and readiness come back. An engine
// that never comes back ends serving (fatal), with the old table left alone.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../core/config.js';
import type { EngineCommand } from '../core/engine.js';
import { createLogger } from '../core/logger.js';
import { Admission } from '../gateway/admission.js';
import type { Upstream } from '../gateway/upstream.js';
import { planLoras } from '../launcher/peft-plan.js';
import { buildTinyLora } from '../launcher/prepare/tiny-lora.js';
import type { RestartableEngine } from '../launcher/restartable-engine.js';
import { initialLoraModels, restartLoraRefresh, type LoraServiceDeps } from './loras.js';
import { until } from '../tests/helpers/poll.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'serve-loras-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function adapter(src: string, name: string, i: number) {
  await mkdir(join(src, name), { recursive: true });
  await writeFile(join(src, name, 'adapter_model.gguf'), buildTinyLora(i));
}

async function harness(name: string, health: () => number) {
  const src = join(dir, name);
  await adapter(src, 'a', 0);
  await adapter(src, 'b', 1);
  const settings = loadSettings({ NIM_PEFT_SOURCE: src, NIM_PEFT_REFRESH_INTERVAL: '3600', NIM_SHUTDOWN_TIMEOUT: '5', NIM_ENGINE_START_TIMEOUT: '1' });
  const plan = (await planLoras(settings, 'llamacpp', false, join(dir, 'no-base.gguf'), () => {}))!;
  const events: string[] = [];
  const first: EngineCommand = { kind: 'llamacpp', command: 'llama-server', args: ['-m', 'm.gguf', '--lora-scaled', 'x:0'], env: {}, host: '127.0.0.1', port: 1, healthPath: '/health', dialect: 'llamacpp' };
  let command = first;
  const engine = {
    pid: 1,
    exited: new Promise<number>(() => {}),
    get command() {
      return command;
    },
    async replace(next: EngineCommand) {
      events.push(`replace ${next.args.slice(next.args.indexOf('--lora-scaled') + 1).join(' ')}`);
      command = next;
    },
    stop: async () => 0,
  } satisfies RestartableEngine;
  const upstream = { getText: async () => ({ status: health(), text: '' }) } as unknown as Upstream;
  const admission = new Admission({ maxConcurrent: 4, maxQueue: 0, queueTimeoutMs: 1000 });
  const table = initialLoraModels(plan);
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const d: LoraServiceDeps = {
    plan, kind: 'llamacpp', engine, engineUrl: 'http://127.0.0.1:1', upstream, healthPath: '/health', table, admission, settings,
    log: createLogger({ logLevel: 'error', jsonlLogging: true }, sink),
    pause: (r) => events.push(`pause: ${r}`),
    resume: () => events.push('resume'),
    fatal: (err) => events.push(`fatal: ${(err as Error).message}`),
  };
  const refresh = restartLoraRefresh(d)!;
  return { src, events, table, admission, refresh };
}

describe('llama.cpp LoRA refresh: restart in place', () => {
  it('503 first, in-flight requests finish, new list, healthy, then the table and readiness', async () => {
    const h = await harness('ok', () => 200);
    expect(h.table.all().map((a) => a.id)).toEqual(['a', 'b']);
    await adapter(h.src, 'c', 2);
    await rm(join(h.src, 'a'), { recursive: true });
    const release = await h.admission.acquire(); // a request in flight
    const pass = h.refresh.tick();
    await until(() => h.events.length > 0, 'the pause');
    await new Promise((r) => setTimeout(r, 100)); // the drain keeps polling; nothing is replaced meanwhile
    expect(h.events).toEqual(['pause: restarting the engine to change its LoRA adapters']);
    release();
    await pass;
    expect(h.events).toEqual(['pause: restarting the engine to change its LoRA adapters', `replace ${join(h.src, 'b', 'adapter_model.gguf')}:0,${join(h.src, 'c', 'adapter_model.gguf')}:0`, 'resume']);
    expect(h.table.all().map((a) => a.id)).toEqual(['b', 'c']);
    await h.refresh.tick(); // no change: no restart
    expect(h.events).toHaveLength(3);
    await h.refresh.stop();
  });

  it('an engine that does not come back: fatal, and the old table stays', async () => {
    const h = await harness('dead', () => 503);
    await adapter(h.src, 'c', 2);
    await h.refresh.tick();
    expect(h.events[0]).toBe('pause: restarting the engine to change its LoRA adapters');
    expect(h.events.at(-1)).toMatch(/^fatal: the engine did not become healthy within 1 s/);
    expect(h.events).not.toContain('resume');
    expect(h.table.all().map((a) => a.id)).toEqual(['a', 'b']);
    await h.refresh.stop();
  });
});
