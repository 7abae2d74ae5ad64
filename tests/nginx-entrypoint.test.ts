// The container's entrypoint (nginx/entrypoint.sh): how it renders nginx.conf from NIM_* settings,
// which commands it passes straight to portico, and how it runs nginx in front of `portico serve`
// (start, SIGTERM, nginx dying). Runs the real nginx and, once, the real compiled CLI; all on 127.0.0.1.
import { execa, type ResultPromise } from 'execa';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canConnect, ENTRYPOINT, freePort, nginxBinary, renderNginxConf } from '../nginx/testing.js';
import { fakeEngine, type FakeEngine } from './helpers/fake-engine.js';
import { CLI } from './helpers/stack.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'portico-entry-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PATH = `${join(nginxBinary(), '..')}:${process.env.PATH ?? '/usr/bin:/bin'}`;

describe('entrypoint.sh nginx-conf', () => {
  it('renders the defaults: 0.0.0.0:8000 in front of 127.0.0.1:8080, the gateway body limit, a long read timeout', async () => {
    const conf = await renderNginxConf({});
    expect(conf).toMatch(/^\s*listen 0\.0\.0\.0:8000;$/m);
    expect(conf).toMatch(/^\s*server 127\.0\.0\.1:8080 max_fails=0;$/m);
    expect(conf).toMatch(/^\s*client_max_body_size 33554432;$/m); // NIM_MAX_REQUEST_BYTES' default
    expect(conf).toMatch(/^\s*proxy_read_timeout 3600s;$/m);
    expect(conf).toMatch(/^\s*proxy_buffering off;$/m);
    expect(conf).toMatch(/^\s*keepalive 64;$/m);
    expect(conf).toMatch(/^\s*access_log off;$/m);
    expect(conf).not.toMatch(/ssl_certificate/);
    // Only the listed names are substituted: nginx's own variables survive, no placeholder is left.
    expect(conf).toContain('$http_x_request_id');
    expect(conf).toContain('$upstream_http_content_type');
    expect(conf).not.toMatch(/\$\{/);
  });

  it('follows NIM_* settings, and nginx -t accepts the result', async () => {
    const prefix = mkdtempSync(join(dir, 'conf-'));
    mkdirSync(join(prefix, 'tmp'));
    const conf = await renderNginxConf({
      NIM_SERVER_HOST: '127.0.0.1',
      NIM_SERVER_PORT: '18000',
      NIM_GATEWAY_PORT: '18080',
      NIM_MAX_REQUEST_BYTES: '1048576',
      NIM_NGINX_PROXY_TIMEOUT: '7200',
      NIM_NGINX_WORKER_PROCESSES: 'auto',
      NIM_NGINX_ACCESS_LOG: '1',
      NIM_LOG_LEVEL: 'debug',
    });
    expect(conf).toMatch(/^\s*listen 127\.0\.0\.1:18000;$/m);
    expect(conf).toMatch(/^\s*server 127\.0\.0\.1:18080 max_fails=0;$/m);
    expect(conf).toMatch(/^\s*client_max_body_size 1048576;$/m);
    expect(conf).toMatch(/^\s*proxy_read_timeout 7200s;$/m);
    expect(conf).toMatch(/^worker_processes auto;$/m);
    expect(conf).toMatch(/^\s*access_log \/dev\/stdout;$/m);
    expect(conf).toMatch(/^error_log stderr info;$/m);
    writeFileSync(join(prefix, 'nginx.conf'), conf);
    // stdout not a socket (execa's pipes are socketpairs, which /dev/stdout cannot be opened on; a
    // container's stdout is a pipe or a file).
    const t = await execa(nginxBinary(), ['-t', '-q', '-p', `${prefix}/`, '-e', 'stderr', '-c', join(prefix, 'nginx.conf')], { reject: false, stdout: 'ignore' });
    expect(t.stderr).toBe('');
    expect(t.exitCode).toBe(0);
  });

  it('puts TLS (and client certificates for MTLS) on the listener', async () => {
    const tls = await renderNginxConf({ NIM_SSL_MODE: 'tls', NIM_SSL_KEY_PATH: '/certs/k.pem', NIM_SSL_CERTS_PATH: '/certs/c.pem' });
    expect(tls).toMatch(/^\s*listen 0\.0\.0\.0:8000 ssl;$/m);
    expect(tls).toContain('ssl_certificate /certs/c.pem; ssl_certificate_key /certs/k.pem;');
    expect(tls).not.toContain('ssl_verify_client');
    const mtls = await renderNginxConf({ NIM_SSL_MODE: 'MTLS', NIM_SSL_KEY_PATH: '/k', NIM_SSL_CERTS_PATH: '/c', NIM_SSL_CA_CERTS_PATH: '/ca' });
    expect(mtls).toContain('ssl_client_certificate /ca; ssl_verify_client on;');
  });

  it('stops with one line naming the variable on a bad setting', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ NIM_MAX_REQUEST_BYTES: '32MB' }, /invalid setting NIM_MAX_REQUEST_BYTES="32MB": expected a whole number/],
      [{ NIM_SERVER_PORT: 'http' }, /invalid setting NIM_SERVER_PORT="http"/],
      [{ NIM_NGINX_PROXY_TIMEOUT: '1h' }, /invalid setting NIM_NGINX_PROXY_TIMEOUT="1h"/],
      [{ NIM_SERVER_PORT: '9000', NIM_GATEWAY_PORT: '9000' }, /NIM_GATEWAY_PORT must differ from NIM_SERVER_PORT/],
      [{ NIM_SSL_MODE: 'TLS' }, /NIM_SSL_MODE=TLS: needs NIM_SSL_KEY_PATH and NIM_SSL_CERTS_PATH/],
      [{ NIM_SSL_MODE: 'MTLS', NIM_SSL_KEY_PATH: '/k', NIM_SSL_CERTS_PATH: '/c' }, /NIM_SSL_MODE=MTLS: needs NIM_SSL_CA_CERTS_PATH/],
      [{ NIM_SSL_MODE: 'on' }, /invalid setting NIM_SSL_MODE="on"/],
    ];
    for (const [env, message] of cases) {
      const r = await execa('bash', [ENTRYPOINT, 'nginx-conf'], { env: { PATH, ...env }, extendEnv: false, reject: false });
      expect(r.exitCode, JSON.stringify(env)).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
  });
});

/** A stand-in for the `portico` bin that records how it was called (argv and the settings it got). */
function fakePortico(body = ''): string {
  const path = join(dir, `fake-portico-${Math.random().toString(36).slice(2)}`);
  writeFileSync(
    path,
    `#!/usr/bin/env node
// SIMULATION of the portico CLI for tests/nginx-entrypoint.test.ts.
const fs = require('node:fs');
const { NIM_SERVER_HOST, NIM_SERVER_PORT, NIM_SSL_MODE } = process.env;
fs.writeFileSync(process.env.FAKE_RECORD, JSON.stringify({ argv: process.argv.slice(2), NIM_SERVER_HOST, NIM_SERVER_PORT, NIM_SSL_MODE }));
${body}
`,
  );
  chmodSync(path, 0o755);
  return path;
}

/** A fake gateway: answers ready, drains 100 ms on SIGTERM, exits 0. */
const FAKE_GATEWAY = `
const http = require('node:http');
const server = http.createServer((req, res) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ message: 'Service is ready.', url: req.url })); });
server.listen(Number(NIM_SERVER_PORT), NIM_SERVER_HOST);
process.on('SIGTERM', () => setTimeout(() => { fs.writeFileSync(process.env.FAKE_RECORD + '.term', 'yes'); process.exit(0); }, 100));
`;

describe('entrypoint.sh: what goes straight to portico', () => {
  const run = async (args: string[], env: Record<string, string> = {}) => {
    const record = join(dir, `record-${Math.random().toString(36).slice(2)}.json`);
    const r = await execa('bash', [ENTRYPOINT, ...args], {
      env: { PATH, PORTICO_BIN: fakePortico(), FAKE_RECORD: record, ...env },
      extendEnv: false,
      reject: false,
      timeout: 20_000,
    });
    let called: { argv: string[]; NIM_SERVER_PORT?: string } | undefined;
    try {
      called = JSON.parse(readFileSync(record, 'utf8')) as typeof called;
    } catch {
      called = undefined;
    }
    return { r, called };
  };

  it('serve --dry-run, --ray-worker, --help and list-model-profiles: portico alone, no nginx', async () => {
    for (const args of [['serve', '--dry-run'], ['serve', '--ray-worker', 'leader:6379'], ['--help'], ['list-model-profiles', '--json']]) {
      const { r, called } = await run(args, { NIM_SERVER_PORT: '8123' });
      expect(r.exitCode, args.join(' ')).toBe(0);
      expect(called?.argv).toEqual(args);
      expect(called?.NIM_SERVER_PORT).toBe('8123'); // untouched: no gateway port swap without nginx
    }
  });

  it('NIM_NGINX=0 serves without nginx', async () => {
    const { r, called } = await run(['serve'], { NIM_NGINX: '0', NIM_SERVER_PORT: '8123' });
    expect(r.exitCode).toBe(0);
    expect(called).toMatchObject({ argv: ['serve'], NIM_SERVER_PORT: '8123' });
  });

  it('runs any other command as given (docker run IMAGE bash ...)', async () => {
    const r = await execa('bash', [ENTRYPOINT, 'sh', '-c', 'echo "$0 ran"'], { env: { PATH }, extendEnv: false });
    expect(r.stdout).toBe('sh ran');
  });
});

describe('entrypoint.sh serve: nginx in front of portico', () => {
  let engine: FakeEngine;
  beforeAll(async () => {
    engine = await fakeEngine();
    engine.on('/v1/models', (_q, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [{ id: 'fake-model', max_model_len: 4096 }] })));
  });
  afterAll(async () => engine?.close());

  async function start(portico: string, extra: Record<string, string> = {}) {
    const port = await freePort();
    const gateway = await freePort();
    const prefix = mkdtempSync(join(dir, 'prefix-'));
    const record = join(dir, `record-${Math.random().toString(36).slice(2)}.json`);
    let out = '';
    const proc: ResultPromise = execa('bash', [ENTRYPOINT], {
      env: {
        PATH,
        HOME: dir,
        PORTICO_BIN: portico,
        FAKE_RECORD: record,
        NIM_SERVER_HOST: '127.0.0.1',
        NIM_SERVER_PORT: String(port),
        NIM_GATEWAY_PORT: String(gateway),
        NIM_NGINX_PREFIX: prefix,
        ...extra,
      },
      extendEnv: false,
      reject: false,
      all: true,
      buffer: false,
      forceKillAfterDelay: 5000,
    });
    proc.all?.setEncoding('utf8').on('data', (d: string) => (out += d));
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 300; i++) {
      if (await fetch(`${url}/v1/health/ready`).then((r) => r.status === 200, () => false)) break;
      if (proc.exitCode !== null) throw new Error(`the entrypoint exited early:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return { proc, url, port, gateway, prefix, record, output: () => out };
  }

  it('starts nginx on NIM_SERVER_PORT and portico on 127.0.0.1:NIM_GATEWAY_PORT (plain HTTP); SIGTERM drains portico, then nginx', async () => {
    const s = await start(fakePortico(FAKE_GATEWAY), { NIM_SSL_MODE: 'DISABLED' });
    const ready = await fetch(`${s.url}/v1/health/ready`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(readFileSync(s.record, 'utf8'))).toEqual({ argv: ['serve'], NIM_SERVER_HOST: '127.0.0.1', NIM_SERVER_PORT: String(s.gateway), NIM_SSL_MODE: 'DISABLED' });
    s.proc.kill('SIGTERM');
    const done = await s.proc;
    expect(done.exitCode).toBe(0);
    expect(readFileSync(`${s.record}.term`, 'utf8')).toBe('yes'); // portico got SIGTERM and drained
    expect(await canConnect(s.port)).toBe(false); // nginx is gone too
  });

  it('nginx dying stops portico, and the container exits non-zero', async () => {
    const s = await start(fakePortico(FAKE_GATEWAY));
    const nginxPid = Number(readFileSync(join(s.prefix, 'nginx.pid'), 'utf8'));
    process.kill(nginxPid, 'SIGTERM'); // fast shutdown: master and workers exit
    const done = await s.proc;
    expect(done.exitCode).not.toBe(0);
    expect(s.output()).toContain('nginx exited; stopping portico');
    expect(readFileSync(`${s.record}.term`, 'utf8')).toBe('yes');
    expect(await canConnect(s.gateway)).toBe(false);
  });

  it('portico exiting on its own ends the container with its exit code', async () => {
    const s = await start(fakePortico(`${FAKE_GATEWAY}\nsetTimeout(() => process.exit(7), 1500);`));
    const done = await s.proc;
    expect(done.exitCode).toBe(7);
    expect(await canConnect(s.port)).toBe(false);
  });

  it('the real CLI behind nginx: ready, models and request ids through port NIM_SERVER_PORT', async () => {
    const shim = join(dir, 'portico');
    writeFileSync(shim, `#!/bin/sh\nexec node ${JSON.stringify(CLI)} "$@"\n`);
    chmodSync(shim, 0o755);
    const s = await start(shim, { NIM_ENGINE_URL: engine.url, NIM_CACHE_PATH: join(dir, 'cache') });
    try {
      const ready = await fetch(`${s.url}/v1/health/ready`);
      expect(ready.status, s.output()).toBe(200);
      const models = await fetch(`${s.url}/v1/models`, { headers: { 'x-request-id': 'entry-1' } });
      expect(models.headers.get('x-request-id')).toBe('entry-1');
      expect(((await models.json()) as { data: { id: string }[] }).data[0]!.id).toBe('fake-model');
      const live = await fetch(`${s.url}/v1/health/live`);
      expect(live.status).toBe(200);
    } finally {
      s.proc.kill('SIGTERM');
    }
    expect((await s.proc).exitCode).toBe(0);
  });
});
