// Starts the real stack (`node dist/serve/main.js serve`: launcher + gateway + llama-server)
// on loopback ports, for cross-process tests.
import { execa, type ResultPromise } from 'execa';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { freePort } from '../../core/net.js';

export { freePort };

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = `${ROOT}dist/serve/main.js`;

export interface Stack {
  url: string;
  port: number;
  proc: ResultPromise;
  /** Everything the launcher printed so far (its log, including the engine's lines). */
  output(): string;
  enginePort(): number;
  enginePid(): number;
  stop(): Promise<number | undefined>;
}


/** Start the stack and wait (bounded) until /v1/health/ready answers 200. */
export async function startStack(env: Record<string, string> = {}, opts: { waitReady?: boolean; args?: string[] } = {}): Promise<Stack> {
  const port = await freePort();
  let out = '';
  const proc = execa('node', [CLI, ...(opts.args ?? ['serve'])], {
    env: {
      NIM_SERVER_HOST: '127.0.0.1',
      NIM_SERVER_PORT: String(port),
      NIM_CACHE_PATH: inject('cachePath'),
      NIM_LOG_LEVEL: 'INFO',
      ...env,
    },
    reject: false,
    all: true,
    buffer: false,
    // execa's kill() escalates to SIGKILL after this delay: it must outlast any drain a test asks
    // for (NIM_SHUTDOWN_TIMEOUT + the engine's stop), or the test kills the launcher mid-drain and
    // sees the requests it is draining cut (the old 5 s did exactly that under load).
    forceKillAfterDelay: 150_000,
  });
  proc.all?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const url = `http://127.0.0.1:${port}`;
  const stack: Stack = {
    url,
    port,
    proc,
    output: () => out,
    enginePort: () => Number(/engine on 127\.0\.0\.1:(\d+)/.exec(out)?.[1]),
    enginePid: () => Number(/engine pid (\d+)/.exec(out)?.[1]),
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return (await proc).exitCode;
    },
  };
  if (opts.waitReady === false) return stack;
  let exited = false;
  void proc.then(() => (exited = true));
  for (let i = 0; i < 600; i++) {
    if (exited) throw new Error(`the stack exited before it was ready:\n${out}`);
    const ok = await fetch(`${url}/v1/health/ready`).then((r) => r.status === 200, () => false);
    if (ok) return stack;
    await new Promise((r) => setTimeout(r, 100));
  }
  await stack.stop();
  throw new Error(`the stack was not ready within 60 s:\n${out}`);
}
