// Processes the test suite started and left running. global-setup.ts gives the suite a marker in
// its environment; every process a test starts (launcher, engine, fake engines, nginx, prometheus)
// inherits it, so at the end /proc tells which of them are still alive.
import { readdirSync, readFileSync } from 'node:fs';

export const MARKER = 'PORTICO_TEST_RUN';

export interface Leftover {
  pid: number;
  args: string;
}

/** Live processes (zombies excluded) carrying MARKER=id, except `exclude` (vitest itself and its workers). */
export function leftoverProcesses(id: string, exclude: (p: Leftover) => boolean = () => false): Leftover[] {
  const needle = `${MARKER}=${id}\0`;
  const found: Leftover[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${pid}/environ`, 'latin1').includes(needle)) continue;
      if (/^\d+ \(.*\) [ZX]/s.test(readFileSync(`/proc/${pid}/stat`, 'latin1'))) continue;
      const p = { pid, args: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim() };
      if (!exclude(p)) found.push(p);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/** Poll until none is left or `ms` has passed; returns what is still alive. */
export async function waitNoLeftovers(id: string, exclude: (p: Leftover) => boolean, ms: number): Promise<Leftover[]> {
  const end = Date.now() + ms;
  for (;;) {
    const left = leftoverProcesses(id, exclude);
    if (left.length === 0 || Date.now() >= end) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}
