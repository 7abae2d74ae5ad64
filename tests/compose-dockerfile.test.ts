// The Dockerfile cannot be built here (no Docker daemon, no registry but npm and Debian's), so it is
// checked by parsing: stages and references, the NIM-compatible runtime contract of both targets,
// files it copies exist and reach the build context, and its llama.cpp source matches the launcher's.
// With the npm package dockerfile-utils installed, its linter runs too.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LLAMA_SOURCE, patchSource, SOURCE_PATCHES } from '../launcher/prepare/build-engine.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}
interface Stage {
  name: string;
  from: string;
  body: Instruction[];
}

/** Dockerfile → instructions: comments dropped, `\` continuations joined (parser directives ignored). */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      i++;
      const next = lines[i]!;
      if (/^\s*#/.test(next)) continue; // comment lines inside a continuation are dropped
      line = line.replace(/\\\s*$/, ' ') + next.trim();
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile line ${start + 1}: cannot parse ${JSON.stringify(line)}`);
    out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start + 1 });
  }
  return out;
}

/** `NAME=value` (the value may itself contain '=') → [NAME, value]. */
function keyValue(arg: string): [string, string] {
  const i = arg.indexOf('=');
  return i < 0 ? [arg, ''] : [arg.slice(0, i), arg.slice(i + 1)];
}

function stages(ins: Instruction[]): { args: Record<string, string>; stages: Stage[] } {
  const args: Record<string, string> = {};
  const list: Stage[] = [];
  for (const i of ins) {
    if (i.keyword === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(i.args);
      if (!m) throw new Error(`line ${i.line}: FROM ${i.args}`);
      list.push({ from: m[1]!, name: m[2] ?? String(list.length), body: [] });
    } else if (!list.length) {
      if (i.keyword !== 'ARG') throw new Error(`line ${i.line}: ${i.keyword} before the first FROM`);
      const [k, v] = keyValue(i.args);
      args[k] = v;
    } else list.at(-1)!.body.push(i);
  }
  return { args, stages: list };
}

const text = read('Dockerfile');
const ins = parseDockerfile(text);
const { args: globalArgs, stages: all } = stages(ins);
const byName = new Map(all.map((s) => [s.name, s]));
const get = (name: string) => byName.get(name)!;
const body = (s: Stage, kw: string) => s.body.filter((i) => i.keyword === kw);

describe('Dockerfile', () => {
  it('has uniquely named stages that only reference earlier stages', () => {
    expect(new Set(all.map((s) => s.name)).size).toBe(all.length);
    const seen = new Set<string>();
    for (const s of all) {
      // FROM: an earlier stage, or an image reference given by a global ARG with a pinned default.
      if (!seen.has(s.from)) {
        const arg = /^\$\{(\w+)\}$/.exec(s.from)?.[1];
        expect(arg, `FROM ${s.from}`).toBeDefined();
        expect(globalArgs[arg!], `ARG ${arg}`).toMatch(/^[\w./-]+:[\w.-]+$/); // repository:tag, not latest
        expect(globalArgs[arg!]).not.toMatch(/:latest$/);
      }
      for (const c of body(s, 'COPY')) {
        const from = /--from=(\S+)/.exec(c.args)?.[1];
        if (from) expect(seen.has(from), `line ${c.line}: COPY --from=${from}`).toBe(true);
      }
      seen.add(s.name);
    }
  });

  it('builds portico with Node and runs the GPU target on vLLM’s OpenAI image (the default, last target)', () => {
    expect(globalArgs.NODE_IMAGE).toMatch(/^node:(2[2-9]|[3-9]\d)-/); // a current LTS, ≥ 20.19 as package.json requires
    expect(globalArgs.VLLM_IMAGE).toMatch(/^vllm\/vllm-openai:v\d/);
    expect(all.at(-1)!.name).toBe('gpu');
    expect(get('gpu').from).toBe('${VLLM_IMAGE}');
    expect(body(get('build'), 'RUN').map((r) => r.args).join(' ')).toMatch(/npx tsc -p tsconfig\.json/);
  });

  for (const target of ['gpu', 'cpu']) {
    it(`${target}: NIM's runtime contract — user 1000, NIM_CACHE_PATH=/opt/nim/.cache, port 8000, entrypoint portico`, () => {
      const s = get(target);
      expect(body(s, 'USER').map((u) => u.args)).toEqual(['1000:1000']);
      const env = body(s, 'ENV').map((e) => e.args).join(' ');
      expect(env).toMatch(/\bNIM_CACHE_PATH=\/opt\/nim\/\.cache\b/);
      // Settings are NIM_* names the launcher parses; the package root is found from the module itself.
      expect(env).not.toMatch(/\bPORTICO_(HOME|LLAMA_SERVER)=/);
      expect(body(s, 'EXPOSE').map((e) => e.args)).toEqual(['8000']);
      const entry = JSON.parse(body(s, 'ENTRYPOINT')[0]!.args) as string[];
      expect(entry.at(-1)).toBe('/usr/local/bin/portico-entrypoint');
      expect(JSON.parse(body(s, 'CMD')[0]!.args)).toEqual(['serve']);
      const run = body(s, 'RUN').map((r) => r.args).join(' ');
      for (const pkg of ['nginx', 'gettext-base', 'tini', 'ffmpeg']) expect(run).toMatch(new RegExp(`apt-get install [^&]*\\b${pkg}\\b`));
      // The bins package.json declares, on PATH, plus the entrypoint.
      const bins = (JSON.parse(read('package.json')) as { bin: Record<string, string> }).bin;
      for (const [name, path] of Object.entries(bins)) expect(run).toContain(`ln -s /opt/portico/${path} /usr/local/bin/${name}`);
      expect(run).toContain('ln -s /opt/portico/nginx/entrypoint.sh /usr/local/bin/portico-entrypoint');
    });
  }

  it('cpu: ships a portable llama-server and tells the launcher where it is', () => {
    const cpu = get('cpu');
    expect(cpu.body.some((i) => i.keyword === 'COPY' && /--from=llama-build \/out\/llama-server \/opt\/portico\/engine\/llama-server$/.test(i.args))).toBe(true);
    expect(body(cpu, 'ENV').map((e) => e.args).join(' ')).toContain('NIM_LLAMA_SERVER_PATH=/opt/portico/engine/llama-server');
    expect(body(cpu, 'RUN').map((r) => r.args).join(' ')).toMatch(/\blibgomp1\b/); // llama-server links OpenMP
    const build = body(get('llama-build'), 'RUN').map((r) => r.args).join(' ');
    expect(build).toContain('-DGGML_NATIVE=OFF');
    expect(build).toContain('-DLLAMA_USE_PREBUILT_UI=OFF'); // its default downloads a web UI
  });

  it('builds llama.cpp from the same npm tarball (and integrity) as launcher/prepare/build-engine.ts', () => {
    const argsOf = (s: Stage) => Object.fromEntries(body(s, 'ARG').map((a) => keyValue(a.args)));
    const a = argsOf(get('llama-build'));
    expect(a.LLAMA_NPM_PACKAGE).toBe(LLAMA_SOURCE.npmPackage);
    expect(a.LLAMA_NPM_INTEGRITY).toBe(LLAMA_SOURCE.integrity);
  });

  it("patches the engine source as launcher/prepare/build-engine.ts does (no remote media downloads): the stage's sed gives patchSource's result", async () => {
    const build = body(get('llama-build'), 'RUN').map((r) => r.args).join(' ');
    const sed = /sed -i '[^']*' src\/tools\/server\/server-common\.cpp/.exec(build)?.[0];
    expect(sed).toBeDefined();
    const patch = SOURCE_PATCHES[0];
    const original = ['static void handle_media(', patch.after, '        // download remote image', '    }', ''].join('\n');
    const dir = mkdtempSync(join(tmpdir(), 'portico-patch-'));
    try {
      for (const d of ['a', 'b']) mkdirSync(join(dir, d, 'src', 'tools', 'server'), { recursive: true });
      for (const d of ['a', 'b']) writeFileSync(join(dir, d, 'src', patch.file), original);
      execFileSync('bash', ['-c', sed!], { cwd: join(dir, 'a') });
      await patchSource(join(dir, 'b', 'src'));
      const bySed = readFileSync(join(dir, 'a', 'src', patch.file), 'utf8');
      expect(bySed).toBe(readFileSync(join(dir, 'b', 'src', patch.file), 'utf8'));
      expect(bySed).toContain(`${patch.after}\n${patch.insert}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#') && !l.startsWith('!'));
    for (const s of all) {
      for (const c of body(s, 'COPY')) {
        if (/--from=/.test(c.args)) continue;
        const parts = c.args.split(/\s+/).filter((p) => !p.startsWith('--'));
        for (const src of parts.slice(0, -1)) {
          expect(existsSync(join(ROOT, src)), `line ${c.line}: ${src}`).toBe(true);
          const top = src.replace(/\/$/, '').split('/')[0]!;
          expect(ignored, `line ${c.line}: ${src} is excluded by .dockerignore`).not.toContain(top);
        }
      }
    }
  });

  it('passes dockerfile-utils’ linter', async () => {
    const utils = await import('dockerfile-utils');
    const problems = utils.validate(text).map((p) => `line ${p.range.start.line + 1}: ${p.message}`);
    expect(problems).toEqual([]);
  });
});
