// Test support: render nginx.conf exactly as the container does (nginx/entrypoint.sh nginx-conf,
// envsubst) and run the real nginx as a non-daemon child on a loopback port, everything (conf, pid,
// temp files) inside a temporary prefix. Used by tests/nginx-*.test.ts.
import { execa, type ResultPromise } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../core/net.js';

export { freePort };

export const ENTRYPOINT = fileURLToPath(new URL('./entrypoint.sh', import.meta.url));

/** Debian installs nginx in /usr/sbin, which a non-root PATH may lack. */
export function nginxBinary(): string {
  return ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'].find((p) => existsSync(p)) ?? 'nginx';
}


/** Only what the entrypoint reads: a test must not inherit NIM_* settings from the machine. */
function baseEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' };
}

/** `entrypoint.sh nginx-conf` with exactly these settings. Rejects (with its stderr) on a bad setting. */
export async function renderNginxConf(env: Record<string, string>): Promise<string> {
  const r = await execa('bash', [ENTRYPOINT, 'nginx-conf'], { env: { ...baseEnv(), ...env }, extendEnv: false });
  return r.stdout;
}

export interface RunningNginx {
  url: string;
  port: number;
  prefix: string;
  conf: string;
  proc: ResultPromise;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Render the conf for these settings (NIM_SERVER_HOST/PORT default to 127.0.0.1 and a free port) and
 * run nginx until `stop()`. Resolves once nginx answers /v1/health/live itself (bounded wait).
 */
export async function startNginx(env: Record<string, string>, opts: { scheme?: 'http' | 'https' } = {}): Promise<RunningNginx> {
  const port = env.NIM_SERVER_PORT ? Number(env.NIM_SERVER_PORT) : await freePort();
  const prefix = await mkdtemp(join(tmpdir(), 'portico-nginx-'));
  await mkdir(join(prefix, 'tmp'));
  const conf = await renderNginxConf({ NIM_SERVER_HOST: '127.0.0.1', NIM_NGINX_PREFIX: prefix, ...env, NIM_SERVER_PORT: String(port) });
  const confPath = join(prefix, 'nginx.conf');
  await writeFile(confPath, conf);
  let out = '';
  const proc = execa(nginxBinary(), ['-p', `${prefix}/`, '-e', 'stderr', '-c', confPath, '-g', 'daemon off;'], {
    reject: false,
    all: true,
    buffer: false,
    forceKillAfterDelay: 5000,
  });
  proc.all?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const scheme = opts.scheme ?? 'http';
  const running: RunningNginx = {
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    prefix,
    conf,
    proc,
    output: () => out,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGQUIT');
      await proc;
      await rm(prefix, { recursive: true, force: true });
    },
  };
  let exited = false;
  void proc.then(() => (exited = true));
  for (let i = 0; i < 100; i++) {
    if (exited) throw new Error(`nginx exited at start:\n${out}`);
    // A TCP connect is enough to know nginx listens (works for http and https alike).
    if (await canConnect(port)) return running;
    await new Promise((r) => setTimeout(r, 50));
  }
  await running.stop();
  throw new Error(`nginx did not listen within 5 s:\n${out}`);
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
