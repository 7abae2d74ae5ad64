// The suite's end-of-run check (global-setup.ts teardown) finds processes a test left running.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import { leftoverProcesses, MARKER, waitNoLeftovers } from './helpers/leftovers.js';

it('a process started with the suite marker is reported while alive, not once it has ended', async () => {
  const id = randomUUID();
  const child = spawn('sleep', ['30'], { env: { ...process.env, [MARKER]: id }, stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  try {
    await new Promise((r) => setTimeout(r, 100));
    expect(leftoverProcesses(id).map((p) => p.pid)).toEqual([child.pid]);
    expect(leftoverProcesses(id)[0]!.args).toBe('sleep 30');
    // A process of another run (another marker) is not ours.
    expect(leftoverProcesses(randomUUID())).toEqual([]);
    child.kill('SIGKILL');
    await exited;
    expect(await waitNoLeftovers(id, () => false, 2000)).toEqual([]);
  } finally {
    child.kill('SIGKILL');
  }
});
