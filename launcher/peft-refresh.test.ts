import { describe, expect, it } from 'vitest';
import { diffAdapters, startPeftRefresh, type PeftChanges } from './peft-refresh.js';
import type { PeftAdapter, PeftScan } from './peft-scan.js';

const ad = (name: string, fingerprint = 'f1', path = `/loras/${name}`): PeftAdapter => ({ name, path, rank: 8, fingerprint });
const names = (l: PeftAdapter[]) => l.map((a) => a.name);

describe('diffAdapters', () => {
  it('added, removed, and changed (other folder or other files under the same name)', () => {
    const d = diffAdapters([ad('a'), ad('b'), ad('c'), ad('d')], [ad('b'), ad('c', 'f2'), ad('d', 'f1', '/elsewhere/d'), ad('e')]);
    expect([names(d.added), names(d.removed), names(d.changed)]).toEqual([['e'], ['a'], ['c', 'd']]);
    const same = diffAdapters([ad('a')], [ad('a')]);
    expect([same.added, same.removed, same.changed]).toEqual([[], [], []]);
  });
});

describe('startPeftRefresh', () => {
  const log = () => {
    const lines: string[] = [];
    return { lines, info: (m: string) => lines.push(`info ${m}`), warn: (m: string) => lines.push(`warn ${m}`) };
  };

  it('applies only differences, keeps what apply says is served, reports each skipped folder once per reason', async () => {
    const scans: PeftScan[] = [
      { adapters: [ad('a'), ad('b')], skipped: [{ name: 'bad', reason: 'no weights' }] },
      { adapters: [ad('a'), ad('b'), ad('c')], skipped: [{ name: 'bad', reason: 'no weights' }] },
      { adapters: [ad('b'), ad('c')], skipped: [{ name: 'bad', reason: 'broken json' }] },
    ];
    const applied: { scanned: string[]; changes: PeftChanges }[] = [];
    const servingSeen: string[][] = [];
    const l = log();
    const r = startPeftRefresh({
      intervalMs: 3_600_000, // ticks are driven by hand here
      initial: [ad('a'), ad('b')],
      initialSkipped: [{ name: 'bad', reason: 'no weights' }],
      scan: async (serving) => {
        servingSeen.push([...serving]);
        return scans.shift()!;
      },
      // The engine refuses c: it is not served after the pass.
      apply: async (scanned, changes) => {
        applied.push({ scanned: names(scanned), changes });
        return scanned.filter((a) => a.name !== 'c');
      },
      log: l,
    });
    await r.tick(); // nothing changed
    expect(applied).toEqual([]);
    await r.tick(); // c added (and refused by the engine)
    expect(applied.map((a) => names(a.changes.added))).toEqual([['c']]);
    expect(names(r.serving())).toEqual(['a', 'b']);
    await r.tick(); // a removed; c still new (it was not served)
    expect(applied.map((a) => [names(a.changes.added), names(a.changes.removed)])).toEqual([[['c'], []], [['c'], ['a']]]);
    expect(servingSeen).toEqual([['a', 'b'], ['a', 'b'], ['a', 'b']]);
    // "no weights" was reported at start (by the plan), only the new reason here.
    expect(l.lines.filter((x) => x.startsWith('warn'))).toEqual(['warn LoRA: skipping adapter folder "bad": broken json']);
    expect(l.lines).toContain('info LoRA: adapters changed: added c; removed -; changed -');
    await r.stop();
    await r.tick(); // stopped: no further pass
    expect(applied).toHaveLength(2);
  });

  it('a failing pass is logged and the loop goes on; a missing source is reported once', async () => {
    let n = 0;
    const l = log();
    const r = startPeftRefresh({
      intervalMs: 3_600_000,
      initial: [],
      scan: async () => {
        n++;
        if (n === 1) throw new Error('disk on fire');
        return { adapters: [], skipped: [], problem: 'NIM_PEFT_SOURCE=/x cannot be read (ENOENT)' };
      },
      apply: async (s) => s,
      log: l,
    });
    await r.tick();
    await r.tick();
    await r.tick();
    await r.stop();
    expect(l.lines).toEqual(['warn LoRA: refresh failed: disk on fire', 'warn LoRA: NIM_PEFT_SOURCE=/x cannot be read (ENOENT); serving no adapters until it can be read']);
  });

  it('the timer runs passes one at a time, every interval', async () => {
    let passes = 0;
    let running = 0;
    let overlap = false;
    const r = startPeftRefresh({
      intervalMs: 20,
      initial: [],
      scan: async () => {
        running++;
        if (running > 1) overlap = true;
        passes++;
        await new Promise((res) => setTimeout(res, 30)); // longer than the interval
        running--;
        return { adapters: [], skipped: [] };
      },
      apply: async (s) => s,
      log: log(),
    });
    for (let i = 0; i < 100 && passes < 3; i++) await new Promise((res) => setTimeout(res, 20));
    await r.stop();
    expect(passes).toBeGreaterThanOrEqual(3);
    expect(overlap).toBe(false);
  });
});
