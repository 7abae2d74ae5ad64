import { mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeyStore, parseKeysFile } from './auth.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'portico-keys-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function logger() {
  const lines: string[] = [];
  return { lines, log: { info: (m: string) => void lines.push(m), warn: (m: string) => void lines.push(m), error: (m: string) => void lines.push(m) } };
}

describe('keys file format', () => {
  it('reads keys, comments and options', () => {
    const lines = parseKeysFile(
      [
        '# a comment',
        '',
        'sk-plain',
        '  sk-scoped   models=a,b  rpm=60 tpm=1000 name=team-b   # trailing comment',
        'sk-with#hash',
        'sk-pad== models=a',
      ].join('\r\n'),
      'keys',
      { rpm: 5, tpm: 0 },
    );
    expect(lines).toEqual([
      { secret: 'sk-plain', spec: { models: null, rpm: 5, tpm: 0 } },
      { secret: 'sk-scoped', spec: { models: ['a', 'b'], rpm: 60, tpm: 1000, name: 'team-b' } },
      { secret: 'sk-with#hash', spec: { models: null, rpm: 5, tpm: 0 } },
      { secret: 'sk-pad==', spec: { models: ['a'], rpm: 5, tpm: 0 } },
    ]);
  });

  it('names the line of an error, never the key', () => {
    const bad = ['sk-secret-1 models=', 'sk-secret-2 rpm=abc', 'sk-secret-3 colour=red', 'sk-sécret'];
    for (const [i, line] of bad.entries()) {
      let msg = '';
      try {
        parseKeysFile(`# header\n${line}\n`, 'keys.txt');
      } catch (err) {
        msg = (err as Error).message;
      }
      expect(msg, line).toMatch(/^keys\.txt line 2: /);
      expect(msg).not.toContain(`sk-secret-${i + 1}`);
      expect(msg).not.toContain('sécret');
    }
  });
});

describe('KeyStore', () => {
  it('verifies by digest; only fingerprints reach the log', () => {
    const file = join(dir, 'keys');
    writeFileSync(file, 'sk-file-key-1 models=m1\n');
    const { lines, log } = logger();
    const ks = new KeyStore({ keys: ['sk-env-key-1'], file, log });
    expect(ks.size).toBe(2);
    expect(ks.verify('sk-env-key-1')?.models).toBeNull();
    expect(ks.verify('sk-file-key-1')?.models).toEqual(['m1']);
    expect(ks.verify('sk-env-key-')).toBeUndefined();
    expect(ks.verify('')).toBeUndefined();
    const key = ks.verify('sk-file-key-1')!;
    expect(key.id).toMatch(/^[0-9a-f]{8}$/);
    expect(lines.join('\n')).toContain(key.id);
    expect(lines.join('\n')).not.toMatch(/sk-(env|file)-key/);
  });

  it('the file wins for a key listed twice', () => {
    const file = join(dir, 'keys');
    writeFileSync(file, 'sk-dup models=only-this\n');
    const ks = new KeyStore({ keys: ['sk-dup'], file });
    expect(ks.size).toBe(1);
    expect(ks.verify('sk-dup')?.models).toEqual(['only-this']);
  });

  it('refuses to start on an unreadable or broken file; a broken reload keeps the old keys', () => {
    expect(() => new KeyStore({ file: join(dir, 'missing') })).toThrow(/NIM_API_KEYS_FILE=.*missing: cannot read \(ENOENT\)/);
    const file = join(dir, 'keys');
    writeFileSync(file, 'sk-one\n');
    const { lines, log } = logger();
    const ks = new KeyStore({ file, log });
    writeFileSync(file, 'sk-two bogus=1\n');
    expect(ks.reload('SIGHUP')).toBe(false);
    expect(ks.verify('sk-one')).toBeDefined();
    expect(lines.at(-1)).toMatch(/not reloaded \(SIGHUP\).*line 1: word 2 is not an option/);
    writeFileSync(file, 'sk-two\n');
    expect(ks.reload()).toBe(true);
    expect(ks.verify('sk-one')).toBeUndefined();
    expect(ks.verify('sk-two')).toBeDefined();
  });

  it('reloads when the file changes on disk; a broken edit is reported once and changes nothing', async () => {
    const file = join(dir, 'keys');
    writeFileSync(file, 'sk-before\n');
    const { lines, log } = logger();
    const ks = new KeyStore({ file, log });
    ks.watch(20);
    const wait = async (cond: () => boolean) => {
      for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
    };
    try {
      writeFileSync(file, 'sk-after-the-change\n');
      await wait(() => ks.verify('sk-after-the-change') !== undefined);
      expect(ks.verify('sk-after-the-change')).toBeDefined();
      expect(ks.verify('sk-before')).toBeUndefined();
      writeFileSync(file, 'sk-broken nope=1\n');
      await wait(() => lines.some((l) => l.includes('not reloaded (file changed)')));
      await new Promise((r) => setTimeout(r, 100)); // several more polls
      expect(lines.filter((l) => l.includes('not reloaded')).length).toBe(1);
      expect(ks.verify('sk-after-the-change')).toBeDefined();
    } finally {
      ks.close();
    }
  });

  it('an error about a line never prints part of it (a key with a space in it)', () => {
    const file = join(dir, 'keys');
    writeFileSync(file, 'sk-first-half SECOND-HALF-OF-THE-KEY\n');
    let message = '';
    try {
      new KeyStore({ file });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/line 1: word 2 is not an option/);
    expect(message).not.toMatch(/SECOND|HALF|sk-first/);
  });

  it('a keys file deleted, or left a dangling link, fails closed (its keys revoked, logged loudly); an atomic replace by rename keeps working', async () => {
    const file = join(dir, 'keys');
    writeFileSync(file, 'sk-kept-by-rename\n');
    const { lines, log } = logger();
    const ks = new KeyStore({ file, log });
    ks.watch(20);
    const wait = async (cond: () => boolean) => {
      for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
    };
    try {
      // Atomic replace: write aside, rename over.
      writeFileSync(join(dir, 'keys.new'), 'sk-after-rename\n');
      renameSync(join(dir, 'keys.new'), file);
      await wait(() => ks.verify('sk-after-rename') !== undefined);
      expect(ks.verify('sk-after-rename')).toBeDefined();
      expect(ks.verify('sk-kept-by-rename')).toBeUndefined();
      // Deleted: nothing verifies, auth stays on (every protected route refused).
      rmSync(file);
      await wait(() => ks.verify('sk-after-rename') === undefined);
      expect(ks.verify('sk-after-rename')).toBeUndefined();
      expect(ks.enabled).toBe(true);
      expect(lines.some((l) => /is gone \(deleted or a dangling link\): its keys are revoked/.test(l))).toBe(true);
      // Back again: its keys work again.
      writeFileSync(file, 'sk-back\n');
      await wait(() => ks.verify('sk-back') !== undefined);
      expect(ks.verify('sk-back')).toBeDefined();
      // A symlink whose target disappears (a ConfigMap swap gone wrong): same as deleted.
      const target = join(dir, 'target');
      writeFileSync(target, 'sk-via-link\n');
      rmSync(file);
      symlinkSync(target, file);
      await wait(() => ks.verify('sk-via-link') !== undefined);
      expect(ks.verify('sk-via-link')).toBeDefined();
      rmSync(target);
      await wait(() => ks.verify('sk-via-link') === undefined);
      expect(ks.verify('sk-via-link')).toBeUndefined();
      // SIGHUP on a missing file: still closed, not an error that keeps old keys.
      expect(ks.reload('SIGHUP')).toBe(true);
      expect(ks.size).toBe(0);
    } finally {
      ks.close();
    }
  });

  it('rejects keys with spaces in NIM_API_KEYS', () => {
    expect(() => new KeyStore({ keys: ['has space'] })).toThrow(/NIM_API_KEYS: key #1/);
  });
});
