// The direction of knowledge, read from the source: core/ imports no other project folder;
// launcher/ and gateway/ import only core/ (and themselves); only the composition root (serve/)
// imports both; nothing imports scripts/ or tests/ at run time. Test code (*.test.ts, test-*.ts)
// may reach across: it wires real parts together.
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/stack.js';

/** Every module specifier in a TypeScript source: static, type-only, re-export and dynamic imports. */
export function specifiers(source: string): string[] {
  const out: string[] = [];
  const re = /\b(?:from|import)\s*\(?\s*(['"])([^'"\n]+)\1/g;
  for (const m of source.matchAll(re)) out.push(m[2]!);
  return out;
}

/** The project folder a relative specifier lands in, seen from `file` (repo-relative). */
export function folderOf(file: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined; // a package or node: builtin
  const target = posix.normalize(posix.join(posix.dirname(file), spec));
  return target.split('/')[0];
}

const RUNTIME_FOLDERS = ['core', 'launcher', 'gateway', 'serve', 'bench', 'nginx'];
const ALLOWED: Record<string, string[]> = {
  core: ['core'],
  launcher: ['launcher', 'core'],
  gateway: ['gateway', 'core'],
  serve: ['serve', 'launcher', 'gateway', 'core'],
  // bench/ measures the gateway and its media path in place; nginx/testing.ts is a test helper.
  bench: ['bench', 'core', 'gateway'],
  nginx: ['nginx', 'core'],
};

const isTestCode = (f: string) => /\.test\.ts$/.test(f) || /(^|\/)test-[^/]*\.ts$/.test(f) || f === 'nginx/testing.ts';

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    let entries;
    try {
      entries = readdirSync(join(ROOT, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** `file imports folder/...` lines that break the rules. */
export function violations(file: string, source: string): string[] {
  const own = file.split('/')[0]!;
  const allowed = ALLOWED[own];
  const bad: string[] = [];
  for (const spec of specifiers(source)) {
    const folder = folderOf(file, spec);
    if (folder === undefined) continue;
    if (folder === 'scripts' || folder === 'tests') {
      if (!isTestCode(file) && !file.startsWith('tests/')) bad.push(`${file} imports ${spec} (${folder}/ at run time)`);
      continue;
    }
    if (allowed && !isTestCode(file) && !allowed.includes(folder)) bad.push(`${file} imports ${spec} (${own}/ may import only ${allowed.join(', ')})`);
  }
  return bad;
}

describe('layering', () => {
  it('the checker sees every import form and flags each kind of violation (it can fail)', () => {
    const src = [
      "import { a } from '../launcher/plan.js';",
      "import type { B } from '../launcher/x.js';",
      "export * from '../serve/serve.js';",
      "const m = await import('../scripts/tool.js');",
      "import 'zod';",
      "import { c } from './sibling.js';",
    ].join('\n');
    expect(specifiers(src)).toEqual(['../launcher/plan.js', '../launcher/x.js', '../serve/serve.js', '../scripts/tool.js', 'zod', './sibling.js']);
    expect(violations('gateway/app.ts', src)).toHaveLength(4);
    expect(violations('launcher/plan.ts', "import { x } from '../gateway/app.js';")).toHaveLength(1);
    expect(violations('core/config.ts', "import { x } from '../launcher/plan.js';")).toHaveLength(1);
    expect(violations('core/config.ts', "import type { x } from '../gateway/metrics.js';")).toHaveLength(1);
    expect(violations('serve/serve.ts', "import { x } from '../gateway/app.js';\nimport { y } from '../launcher/plan.js';")).toEqual([]);
    expect(violations('launcher/plan.ts', "import { x } from '../scripts/build.js';")).toHaveLength(1);
    // test code may reach across, but not into scripts/ from run-time code
    expect(violations('launcher/plan.test.ts', "import { x } from '../gateway/app.js';")).toEqual([]);
  });

  it('the source keeps the direction: core ← launcher, gateway ← serve; nothing runs scripts/ or tests/', () => {
    const files = RUNTIME_FOLDERS.flatMap(tsFiles);
    expect(files.length).toBeGreaterThan(50);
    expect(files.filter((f) => f.startsWith('core/')).length).toBeGreaterThan(3);
    const bad = files.flatMap((f) => violations(f, readFileSync(join(ROOT, f), 'utf8')));
    expect(bad).toEqual([]);
  });
});
