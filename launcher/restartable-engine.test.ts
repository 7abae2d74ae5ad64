import { describe, expect, it } from 'vitest';
import type { EngineCommand } from '../core/engine.js';
import { restartableEngine } from './restartable-engine.js';
import type { EngineProcess } from './supervise.js';

/** A fake child: exits when stopped (with 143) or when `die(code)` is called. */
function fakeProcess(pid: number) {
  let exit!: (code: number) => void;
  const exited = new Promise<number>((r) => (exit = r));
  const p: EngineProcess & { die(code: number): void; stops: number } = {
    pid,
    exited,
    stops: 0,
    async stop() {
      p.stops++;
      exit(143);
      return exited;
    },
    die: (code) => exit(code),
  };
  return p;
}
const cmd = (args: string[]): EngineCommand => ({ kind: 'llamacpp', command: 'llama-server', args, env: {}, host: '127.0.0.1', port: 1, healthPath: '/health', dialect: 'llamacpp' });

describe('restartableEngine', () => {
  it('a planned replacement is not an exit; the new engine dying is', async () => {
    const spawned: { cmd: EngineCommand; p: ReturnType<typeof fakeProcess> }[] = [];
    const e = restartableEngine((c) => {
      const p = fakeProcess(100 + spawned.length);
      spawned.push({ cmd: c, p });
      return p;
    }, cmd(['--first']));
    let exitCode: number | undefined;
    void e.exited.then((c) => (exitCode = c));
    expect(e.pid).toBe(100);
    await e.replace(cmd(['--second']), 1000);
    await new Promise((r) => setTimeout(r, 10));
    expect(exitCode).toBeUndefined();
    expect(spawned.map((s) => s.cmd.args)).toEqual([['--first'], ['--second']]);
    expect(spawned[0]!.p.stops).toBe(1);
    expect(e.pid).toBe(101);
    expect(e.command.args).toEqual(['--second']);
    spawned[1]!.p.die(3);
    expect(await e.exited).toBe(3);
  });

  it('stop stops the engine running now and resolves exited; no replacement after stop', async () => {
    const spawned: ReturnType<typeof fakeProcess>[] = [];
    const e = restartableEngine(() => {
      const p = fakeProcess(spawned.length);
      spawned.push(p);
      return p;
    }, cmd([]));
    await e.replace(cmd(['x']), 1000);
    expect(await e.stop(1000)).toBe(143);
    expect(await e.exited).toBe(143);
    expect(spawned.map((p) => p.stops)).toEqual([1, 1]);
    await expect(e.replace(cmd(['y']), 1000)).rejects.toThrow(/stopping/);
    expect(spawned).toHaveLength(2);
  });
});
