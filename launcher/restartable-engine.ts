// An engine process that can be replaced by a new one with other arguments, on the same port,
// while the composition root keeps one handle: `exited` resolves only when the engine running
// now exits on its own (a planned replacement is not a crash), `stop` stops whichever runs.
// llama.cpp needs this for LoRA: llama-server loads adapter files only at start.
import type { EngineCommand } from '../core/engine.js';
import type { EngineProcess } from './supervise.js';

export interface RestartableEngine extends EngineProcess {
  /** The command the running engine was started with. */
  readonly command: EngineCommand;
  /** Stop the running engine (SIGTERM, SIGKILL after graceMs) and start `next` in its place. */
  replace(next: EngineCommand, graceMs: number): Promise<void>;
}

export function restartableEngine(spawn: (cmd: EngineCommand) => EngineProcess, first: EngineCommand): RestartableEngine {
  let command = first;
  let current = spawn(first);
  let stopping = false;
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((r) => (resolveExit = r));
  const watch = (p: EngineProcess) =>
    void p.exited.then((code) => {
      // Only the engine serving now, and not while it is being replaced on purpose.
      if (p === current && !replacing) resolveExit(code);
    });
  let replacing = false;
  watch(current);
  return {
    get pid() {
      return current.pid;
    },
    get command() {
      return command;
    },
    exited,
    async replace(next, graceMs) {
      if (stopping) throw new Error('the engine is stopping');
      replacing = true;
      try {
        await current.stop(graceMs);
        if (stopping) return;
        command = next;
        current = spawn(next);
        watch(current);
      } finally {
        replacing = false;
      }
    },
    async stop(graceMs) {
      stopping = true;
      const code = await current.stop(graceMs);
      resolveExit(code);
      return code;
    },
  };
}
