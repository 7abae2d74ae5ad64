// README is the contract users read: every setting the launcher parses is documented there, and
// the two fresh-machine commands are the ones package.json and .ci/run really use.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SETTING_NAMES } from '../core/config.js';
import { ERRORS } from '../core/errors.js';
import { partTableMarkdown } from '../gateway/media/parts.js';
import { ROOT } from './helpers/stack.js';

const readme = readFileSync(`${ROOT}README.md`, 'utf8');

describe('README', () => {
  it.each(SETTING_NAMES)('documents %s', (name) => {
    expect(readme).toMatch(new RegExp(`\\| [^|\\n]*\`${name}\``));
  });

  it.each(Object.entries(ERRORS))('lists error code %s with its status in the error table', (code, spec) => {
    expect(readme).toMatch(new RegExp(`\\| ${spec.status} \\| \`${code}\` \\|`));
  });

  it('shows the content-part table exactly as gateway/media/parts.ts defines it', () => {
    expect(readme).toContain(partTableMarkdown());
  });

  it('gives the two fresh-machine commands, and CI runs the test one', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm ci && npm test');
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBeDefined();
    expect(pkg.scripts.test).toBeDefined();
    expect(readFileSync(`${ROOT}.ci/run`, 'utf8')).toMatch(/^npm test$/m);
  });
});
