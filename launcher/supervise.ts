// The engine child process: spawn, capture its output line by line, wait for health, stop it.
import { execa, type ResultPromise } from 'execa';
import { createInterface } from 'node:readline';
import type { Logger } from '../core/logger.js';
import { StartupError } from '../core/startup-errors.js';
import type { EngineCommand } from '../core/engine.js';
import { guardEngine } from './engine-guard.js';

/** What the health checks need from a connection to the engine (the gateway's Upstream has it). */
export interface HealthProbe {
  getText(path: string, timeoutMs: number): Promise<{ status: number }>;
}

export interface EngineProcess {
  pid: number | undefined;
  /** Resolves when the child exits, with its exit code (signals → 128 + n). */
  exited: Promise<number>;
  stop(graceMs: number): Promise<number>;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

export function spawnEngine(cmd: EngineCommand, log: Logger): EngineProcess {
  const g = guardEngine(cmd.command, cmd.args, { ...process.env, ...cmd.env });
  if (!g.guarded) log.warn('setpriv (util-linux) not found: the engine will not be stopped if the launcher is killed with SIGKILL');
  const child: ResultPromise = execa(g.command, g.args, {
    env: cmd.env,
    extendEnv: true,
    stdin: 'ignore',
    buffer: false,
    reject: false,
    // Its own process group, so stop() reaches every process the engine forks.
    detached: g.guarded,
    // Without the kernel's guard, at least a normal launcher exit takes the engine along.
    cleanup: !g.guarded,
    forceKillAfterDelay: false,
  });
  const elog = log.child({ component: 'engine' });
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', (line) => {
      if (line.trim()) elog.info(line);
    });
  }
  const exited = child.then((r) => {
    if (r.exitCode !== undefined) return r.exitCode;
    return 128 + (SIGNALS[r.signal ?? ''] ?? 1);
  });
  let done = false;
  void exited.then(() => (done = true));
  const signal = (sig: NodeJS.Signals) => {
    if (done) return;
    try {
      // The whole group when the engine leads one; the group outlives its leader if workers linger.
      if (g.guarded && child.pid) process.kill(-child.pid, sig);
      else child.kill(sig);
    } catch {
      // already gone
    }
  };
  return {
    pid: child.pid,
    exited,
    async stop(graceMs) {
      signal('SIGTERM');
      const timer = setTimeout(() => signal('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

export class EngineExitedError extends Error {
  constructor(readonly exitCode: number) {
    super(`the engine exited with code ${exitCode} before it became healthy`);
  }
}

/**
 * Poll the engine's health path until it answers 200. Logs progress every ~15 s so a user
 * loading a large model sees it is alive; fails fast if the engine exits; times out.
 */
export async function waitHealthy(
  upstream: HealthProbe,
  healthPath: string,
  opts: { timeoutMs: number; exited?: Promise<number>; log: Logger; intervalMs?: number },
): Promise<void> {
  const started = Date.now();
  let exitCode: number | undefined;
  void opts.exited?.then((c) => (exitCode = c));
  let lastLog = started;
  for (;;) {
    if (exitCode !== undefined) throw new EngineExitedError(exitCode);
    if (await isHealthy(upstream, healthPath)) return;
    const now = Date.now();
    if (now - started > opts.timeoutMs) {
      throw new StartupError('engine_failed', `the engine did not become healthy within ${Math.round(opts.timeoutMs / 1000)} s (NIM_ENGINE_START_TIMEOUT)`);
    }
    if (now - lastLog >= 15_000) {
      lastLog = now;
      opts.log.info(`waiting for the engine to become ready (${Math.round((now - started) / 1000)} s)`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
  }
}

export async function isHealthy(upstream: HealthProbe, healthPath: string): Promise<boolean> {
  try {
    const r = await upstream.getText(healthPath, 2000);
    return r.status === 200;
  } catch {
    return false;
  }
}
