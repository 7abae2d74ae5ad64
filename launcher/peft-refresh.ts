// NIM_PEFT_REFRESH_INTERVAL: rescan NIM_PEFT_SOURCE every interval and hand the differences to
// the engine-specific step (vLLM: its load/unload endpoints; llama.cpp: a restart with the new
// list; TensorRT-LLM: nothing, adapters are named per request). One pass at a time: the next
// scan is scheduled when the previous pass has ended, however long the engine took.
import type { PeftAdapter, PeftScan } from './peft-scan.js';

export interface PeftChanges {
  added: PeftAdapter[];
  removed: PeftAdapter[];
  /** Same name, other files (replaced weights): unloaded and loaded again. */
  changed: PeftAdapter[];
}

/** What differs between the adapters served and a new scan. */
export function diffAdapters(serving: readonly PeftAdapter[], scanned: readonly PeftAdapter[]): PeftChanges {
  const before = new Map(serving.map((a) => [a.name, a]));
  const after = new Map(scanned.map((a) => [a.name, a]));
  return {
    added: scanned.filter((a) => !before.has(a.name)),
    removed: serving.filter((a) => !after.has(a.name)),
    changed: scanned.filter((a) => {
      const b = before.get(a.name);
      return b !== undefined && (b.path !== a.path || b.fingerprint !== a.fingerprint);
    }),
  };
}

export const noChanges = (c: PeftChanges) => !c.added.length && !c.removed.length && !c.changed.length;

export interface PeftRefreshOptions {
  intervalMs: number;
  /** Rescan; `serving` = the names served now (they keep their place under a limit). */
  scan: (serving: readonly string[]) => Promise<PeftScan>;
  /** Bring the engine to `scanned`; resolves with the adapters actually served afterwards. */
  apply: (scanned: PeftAdapter[], changes: PeftChanges) => Promise<PeftAdapter[]>;
  /** The adapters the engine was started with. */
  initial: PeftAdapter[];
  /** Folders the start already reported as skipped (not reported again unless the reason changes). */
  initialSkipped?: PeftScan['skipped'];
  log: { info(msg: string): void; warn(msg: string): void };
}

export interface PeftRefresh {
  /** The adapters served now. */
  serving(): PeftAdapter[];
  /** One pass now (tests; the timer calls the same). */
  tick(): Promise<void>;
  /** Stop the timer and wait for a pass under way. */
  stop(): Promise<void>;
}

export function startPeftRefresh(o: PeftRefreshOptions): PeftRefresh {
  let serving = o.initial;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  // Each skipped folder is reported once per reason, not at every pass.
  const reported = new Map((o.initialSkipped ?? []).map((s) => [s.name, s.reason]));
  let problem: string | undefined;

  const pass = async (): Promise<void> => {
    const scan = await o.scan(serving.map((a) => a.name));
    if (scan.problem !== problem) {
      problem = scan.problem;
      if (problem) o.log.warn(`LoRA: ${problem}; serving no adapters until it can be read`);
    }
    const now = new Map(scan.skipped.map((s) => [s.name, s.reason]));
    for (const [name, reason] of now) if (reported.get(name) !== reason) o.log.warn(`LoRA: skipping adapter folder "${name}": ${reason}`);
    for (const name of [...reported.keys()]) if (!now.has(name)) reported.delete(name);
    for (const [name, reason] of now) reported.set(name, reason);
    const changes = diffAdapters(serving, scan.adapters);
    if (noChanges(changes)) return;
    const names = (l: PeftAdapter[]) => l.map((a) => a.name).join(', ') || '-';
    o.log.info(`LoRA: adapters changed: added ${names(changes.added)}; removed ${names(changes.removed)}; changed ${names(changes.changed)}`);
    serving = await o.apply(scan.adapters, changes);
  };

  const tick = (): Promise<void> => {
    running = running.then(() => (stopped ? undefined : pass())).catch((err: unknown) => o.log.warn(`LoRA: refresh failed: ${(err as Error).message}`));
    return running;
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => void tick().then(schedule), o.intervalMs);
    timer.unref();
  };
  schedule();
  return {
    serving: () => serving,
    tick,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
