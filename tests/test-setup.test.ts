// README's test command sets itself up (issue 12, item 11): `npm test` runs scripts/test-setup.sh
// first, as `.ci/run` does; on a machine missing packages it installs them as root, otherwise it
// stops at once printing the exact command. Simulated with fake dpkg-query / id / apt-get on PATH.
import { execa } from 'execa';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { ROOT } from './helpers/stack.js';

let dir: string | undefined;
afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

/** A PATH whose dpkg-query knows only `installed`, whose id says `uid`, whose apt-get records its calls. */
function fakeMachine(installed: string[], uid: number): { path: string; aptLog: string } {
  dir = mkdtempSync(join(tmpdir(), 'portico-setup-'));
  const aptLog = join(dir, 'apt.log');
  const script = (name: string, body: string) => {
    writeFileSync(join(dir!, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir!, name), 0o755);
  };
  script('dpkg-query', `case " ${installed.join(' ')} " in *" $3 "*) printf 'install ok installed';; *) exit 1;; esac`);
  script('id', `echo ${uid}`);
  script('apt-get', `echo "$@" >> ${aptLog}`);
  script('service', 'exit 0');
  return { path: `${dir}:${process.env.PATH}`, aptLog };
}

const run = (path: string) => execa('bash', [join(ROOT, 'scripts/test-setup.sh')], { env: { PATH: path }, reject: false });

it('simulation: not root and nginx, prometheus, ffmpeg missing: stops at once with the exact command, installs nothing', async () => {
  const m = fakeMachine(['cmake', 'g++', 'make', 'git', 'openssl', 'curl', 'gettext-base', 'wrk', 'chromium'], 1000);
  const r = await run(m.path);
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toContain("run as root:  sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends nginx prometheus ffmpeg'");
  expect(existsSync(m.aptLog)).toBe(false);
});

it('simulation: as root, the missing packages are installed with apt-get', async () => {
  const m = fakeMachine(['cmake', 'g++', 'make', 'git', 'openssl', 'curl', 'gettext-base'], 0);
  const r = await run(m.path);
  expect(r.exitCode, r.stderr).toBe(0);
  expect(readFileSync(m.aptLog, 'utf8')).toBe('update -qq\ninstall -y -qq --no-install-recommends nginx prometheus ffmpeg wrk chromium\n');
});

it('simulation: nothing missing: nothing to do', async () => {
  const m = fakeMachine(['cmake', 'g++', 'make', 'git', 'nginx', 'prometheus', 'ffmpeg', 'openssl', 'curl', 'gettext-base', 'wrk', 'chromium'], 1000);
  const r = await run(m.path);
  expect(r.exitCode).toBe(0);
  expect(existsSync(m.aptLog)).toBe(false);
});

it('npm test and .ci/run both run that same set-up step', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  expect(pkg.scripts.pretest).toBe('bash scripts/test-setup.sh');
  expect(readFileSync(join(ROOT, '.ci/run'), 'utf8')).toMatch(/^scripts\/test-setup\.sh$/m);
});
