// What the bench runs besides portico: wrk and nginx from Debian (`apt-get install -y wrk nginx`),
// and Portkey's gateway from npm, installed once into the cache (NIM_CACHE_PATH/bench-tools), never
// into the repository's node_modules.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const PORTKEY_VERSION = '1.15.2';
/**
 * Portkey 1.15.2 declares `@hono/node-server: ^1.3.3`, which now resolves to 1.19.x. From 1.14 on,
 * node-server's light Response keeps the upstream fetch Response's (immutable) Headers, and
 * Portkey's `updateHeaders` then throws `TypeError: immutable` on every streamed answer (the client
 * gets 500 "Something went wrong"). Pinning the last release before that change (1.13.8) is what
 * lets Portkey's stream path run at all; the non-streaming path is the same code either way.
 */
export const PORTKEY_NODE_SERVER_PIN = '1.13.8';

export interface Tools {
  wrk: string | undefined;
  wrkVersion: string | undefined;
  nginx: string | undefined;
  nginxVersion: string | undefined;
  /** Absolute path of Portkey's start-server.js, or undefined if it could not be installed. */
  portkey: string | undefined;
  portkeyDir: string;
  notes: string[];
}

function which(cmd: string, extra: string[] = []): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), ...extra];
  for (const d of dirs) {
    if (d && existsSync(join(d, cmd))) return join(d, cmd);
  }
  return undefined;
}

function versionOf(cmd: string, args: string[]): string | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  return /(\d+\.\d+\.\d+)/.exec(text)?.[1];
}

export function findTools(cacheDir: string, log: (line: string) => void, opts: { installPortkey: boolean }): Tools {
  const notes: string[] = [];
  const wrk = which('wrk');
  const nginx = which('nginx', ['/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin']);
  if (!wrk) notes.push('wrk not found: `apt-get install -y wrk` (Debian) — the HTTP load figures are skipped without it');
  if (!nginx) notes.push('nginx not found: `apt-get install -y nginx` (Debian) — the nginx baseline is skipped');
  const portkeyDir = join(cacheDir, 'bench-tools');
  let portkey: string | undefined;
  if (opts.installPortkey) {
    try {
      portkey = ensurePortkey(portkeyDir, log);
    } catch (err) {
      notes.push(`Portkey could not be installed (${(err as Error).message.split('\n')[0]}): its path is skipped`);
    }
  }
  return {
    wrk,
    wrkVersion: wrk ? versionOf(wrk, ['--version']) : undefined,
    nginx,
    nginxVersion: nginx ? versionOf(nginx, ['-v']) : undefined,
    portkey,
    portkeyDir,
    notes,
  };
}

/** `npm install` Portkey into `dir` (once; a second run finds it and returns at once). */
function ensurePortkey(dir: string, log: (line: string) => void): string {
  const entry = join(dir, 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js');
  const manifest = {
    name: 'portico-bench-tools',
    private: true,
    description: 'Installed by portico `npm run bench`: the gateways portico is measured against.',
    dependencies: { '@portkey-ai/gateway': PORTKEY_VERSION },
    overrides: { '@hono/node-server': PORTKEY_NODE_SERVER_PIN },
  };
  const wanted = JSON.stringify(manifest, null, 2);
  const installed = (pkg: string) => {
    try {
      return (JSON.parse(readFileSync(join(dir, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return undefined;
    }
  };
  const current = existsSync(join(dir, 'package.json')) ? readFileSync(join(dir, 'package.json'), 'utf8') : '';
  if (
    existsSync(entry) &&
    current === wanted &&
    installed('@portkey-ai/gateway') === PORTKEY_VERSION &&
    installed('@hono/node-server') === PORTKEY_NODE_SERVER_PIN
  ) {
    return entry;
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), wanted);
  log(`installing @portkey-ai/gateway@${PORTKEY_VERSION} into ${dir} (once; about 10 s)`);
  execFileSync('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', '--loglevel=error', '--no-package-lock'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 300_000,
  });
  if (!existsSync(entry)) throw new Error(`${entry} is missing after npm install`);
  return entry;
}
