// Runs the real llama-server (the cached build from global-setup) directly, without the launcher,
// on a free loopback port: for tests that prove engine facts the launcher will rely on.
import { execa, type ResultPromise } from 'execa';
import { inject } from 'vitest';
import { freePort } from '../../core/net.js';

export interface LlamaServer {
  url: string;
  proc: ResultPromise;
  /** Everything the engine printed so far. */
  output(): string;
  stop(): Promise<void>;
}

/** Spawn llama-server with `args` (host/port added here) and wait, bounded, for /health = 200. */
export async function startLlamaServer(args: string[], opts: { waitReady?: boolean } = {}): Promise<LlamaServer> {
  const port = await freePort();
  let out = '';
  const proc = execa(inject('llamaServer'), [...args, '--host', '127.0.0.1', '--port', String(port)], {
    reject: false,
    all: true,
    buffer: false,
    stdin: 'ignore',
    forceKillAfterDelay: 5000,
  });
  proc.all?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const url = `http://127.0.0.1:${port}`;
  const server: LlamaServer = {
    url,
    proc,
    output: () => out,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await proc;
    },
  };
  if (opts.waitReady === false) return server;
  let exited = false;
  void proc.then(() => (exited = true));
  for (let i = 0; i < 300; i++) {
    if (exited) throw new Error(`llama-server exited before it was ready:\n${out}`);
    const ok = await fetch(`${url}/health`).then((r) => r.status === 200, () => false);
    if (ok) return server;
    await new Promise((r) => setTimeout(r, 100));
  }
  await server.stop();
  throw new Error(`llama-server was not ready within 30 s:\n${out}`);
}
