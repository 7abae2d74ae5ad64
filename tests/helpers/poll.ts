// The one polling helper: wait until a probe holds, bounded in time (and so in count), naming what
// was awaited when it gives up. A probe that throws counts as "not yet" (a port not open yet).
export interface PollOptions {
  /** Give up after this long (default 15 s). */
  withinMs?: number;
  /** Pause between probes (default 100 ms). */
  everyMs?: number;
  /** Extra text for the failure (a launcher log, say). */
  detail?: () => string;
}

export async function until(probe: () => Promise<boolean> | boolean, what: string, opts: PollOptions = {}): Promise<void> {
  const withinMs = opts.withinMs ?? 15_000;
  const everyMs = opts.everyMs ?? 100;
  const end = Date.now() + withinMs;
  const tries = Math.ceil(withinMs / everyMs) + 1;
  for (let i = 0; i < tries; i++) {
    if (await Promise.resolve().then(probe).catch(() => false)) return;
    if (Date.now() > end) break;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${withinMs} ms waiting for ${what}${opts.detail ? `:\n${opts.detail()}` : ''}`);
}
