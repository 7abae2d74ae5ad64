// Child processes for the bench: spawn, wait until they answer, read their memory, stop them.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { request } from 'undici';

export interface Child {
  name: string;
  pid: number;
  proc: ChildProcess;
  output(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

export function startChild(
  name: string,
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Child {
  const proc = spawn(command, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString('utf8');
    if (out.length > 64_000) out = out.slice(-32_000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  let exited = false;
  const done = new Promise<void>((r) => proc.once('exit', () => ((exited = true), r())));
  proc.once('error', (err) => {
    out += `\n${String(err)}`;
    exited = true;
  });
  if (proc.pid === undefined) throw new Error(`could not start ${name} (${command}): is it installed?`);
  return {
    name,
    pid: proc.pid,
    proc,
    output: () => out,
    exited: () => exited,
    async stop() {
      if (exited) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(t);
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll until `probe` resolves true; throws with `what` and the child's output after `timeoutMs`. */
export async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs: number, child?: Child): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child?.exited()) throw new Error(`${child.name} exited while waiting for ${what}:\n${child.output().slice(-2000)}`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${child ? `:\n${child.output().slice(-2000)}` : ''}`);
    }
    await sleep(100);
  }
}

/** A GET on loopback that resolves to the status code (never throws). */
export async function httpStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  try {
    const r = await request(url, { headers, headersTimeout: 2000, bodyTimeout: 2000 });
    await r.body.text();
    return r.statusCode;
  } catch {
    return 0;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

/** The process and all its descendants (nginx: master + workers). */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      const kids = readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, 'utf8').trim();
      if (kids) out.push(...kids.split(/\s+/).map(Number));
    } catch {
      // gone, or no /proc: nothing to add
    }
  }
  return out;
}

/** Resident set size in bytes, summed over the process tree (0 where /proc is missing). */
export function rssBytes(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

/** Open file descriptors of one process (-1 where /proc is missing). */
export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

let clkTck: number | undefined;
/** CPU seconds (user + system) used so far by the process tree (0 where /proc is missing). */
export function cpuSeconds(pid: number): number {
  clkTck ??= (() => {
    try {
      return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      return 100;
    }
  })();
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      // Fields after the command name (which may hold spaces): state is field 3; utime 14, stime 15.
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // exited meanwhile
    }
  }
  return ticks / clkTck;
}
