// Builds llama.cpp's `llama-server` (the CPU engine) from the llama.cpp source that the
// node-llama-cpp npm package ships as a git bundle. Debian has no llama.cpp package and nothing
// can be downloaded from GitHub, so the npm registry is the one source we can reach.
//
// The build lands in NIM_CACHE_PATH (outside the clone) keyed by source commit and CPU, so a
// second clone, CI on the same machine and `npm test` after `npm start` reuse it.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { cpus, arch, platform } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { StartupError } from '../../core/startup-errors.js';
import { isMainModule } from '../../core/main-module.js';

export const LLAMA_SOURCE = {
  npmPackage: 'node-llama-cpp@3.22.1',
  // npm's published integrity for that tarball: the bundle we build must be exactly this one.
  integrity:
    'sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw==',
  commit: 'de3ff81',
} as const;

/**
 * Source changes made before building, each a line inserted after an exact line found once.
 * llama-server downloads `http(s)` media URLs itself (tools/server/server-common.cpp handle_media)
 * with no address checks, and no flag or CMake option turns that off: the gateway only ever sends
 * data: URIs, so the engine is built unable to fetch (defence in depth against SSRF). The Dockerfile's
 * CPU build applies the same line (tests/compose-dockerfile.test.ts keeps them equal).
 */
export const SOURCE_PATCHES = [
  {
    file: 'tools/server/server-common.cpp',
    after: '    if (string_starts_with(url, "http")) {',
    insert: '        throw std::invalid_argument("remote media URLs are disabled in this build: send the media as a data: URI");',
  },
] as const;

/** Apply SOURCE_PATCHES to a llama.cpp tree; a line not found exactly once fails the build. */
export async function patchSource(src: string): Promise<void> {
  for (const p of SOURCE_PATCHES) {
    const file = join(src, p.file);
    const lines = (await readFile(file, 'utf8')).split('\n');
    const at = lines.flatMap((l, i) => (l === p.after ? [i] : []));
    if (at.length !== 1) throw new Error(`source patch: "${p.after}" found ${at.length} times in ${p.file}`);
    lines.splice(at[0]! + 1, 0, p.insert);
    await writeFile(file, lines.join('\n'));
  }
}

const CMAKE_FLAGS = [
  '-DCMAKE_BUILD_TYPE=Release',
  '-DBUILD_SHARED_LIBS=OFF',
  '-DLLAMA_BUILD_TESTS=OFF',
  '-DLLAMA_BUILD_EXAMPLES=OFF',
  // The default downloads a prebuilt web UI: no internet here, and the gateway serves no UI.
  '-DLLAMA_USE_PREBUILT_UI=OFF',
  '-DLLAMA_BUILD_UI=OFF',
  '-DLLAMA_OPENSSL=OFF',
  '-DGGML_CCACHE=OFF',
  // -march=native: fast on this CPU, hence the CPU in the cache key.
  '-DGGML_NATIVE=ON',
];

/** Short key of the CPU's model and feature flags: a native build only runs where it was built. */
export function cpuKey(): string {
  let flags = '';
  try {
    flags = /^flags\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  } catch {
    /* not Linux: the model name alone */
  }
  // The source patches are part of what was built: a changed patch is a new build.
  const h = createHash('sha256').update(`${cpus()[0]?.model ?? ''}|${flags}|${JSON.stringify(SOURCE_PATCHES)}`).digest('hex');
  return `${platform()}-${arch()}-${h.slice(0, 10)}`;
}

export function llamaServerPath(cachePath: string): string {
  return join(cachePath, 'engine', `llama.cpp-${LLAMA_SOURCE.commit}-${cpuKey()}`, 'llama-server');
}

type Log = (line: string) => void;

/** Returns the path of a built llama-server, building it first if missing (~4 min on 2 cores). */
export async function ensureLlamaServer(cachePath: string, log: Log = (l) => process.stderr.write(`${l}\n`)): Promise<string> {
  const target = llamaServerPath(cachePath);
  if (existsSync(target)) return target;
  const lockDir = `${target}.lock`;
  await mkdir(join(target, '..'), { recursive: true });
  // One builder at a time across processes (parallel test workers, a second `npm start`).
  while (!(await tryLock(lockDir))) {
    if (existsSync(target)) return target;
    await new Promise((r) => setTimeout(r, 2000));
  }
  try {
    if (existsSync(target)) return target;
    await build(cachePath, target, log);
    return target;
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

async function tryLock(dir: string): Promise<boolean> {
  try {
    await mkdir(dir);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // A lock left by a killed build: older than the longest build we expect.
    if (Date.now() - statSync(dir).mtimeMs > 30 * 60_000) await rm(dir, { recursive: true, force: true });
    return false;
  }
}

async function build(cachePath: string, target: string, log: Log): Promise<void> {
  const work = await mkdtemp(join(cachePath, 'engine', 'build-'));
  const started = Date.now();
  try {
    log(`[engine build] llama-server is missing; building it from ${LLAMA_SOURCE.npmPackage} (llama.cpp ${LLAMA_SOURCE.commit}).`);
    log('[engine build] This happens once per machine and takes about 4 minutes on 2 cores.');
    const packed = await execa('npm', ['pack', LLAMA_SOURCE.npmPackage, '--json', '--pack-destination', work], { cwd: work });
    const info = JSON.parse(packed.stdout) as { filename: string; integrity: string }[];
    const tarball = info[0];
    if (!tarball) throw new StartupError('prepare_failed', 'npm pack produced no tarball');
    if (tarball.integrity !== LLAMA_SOURCE.integrity) {
      throw new StartupError('prepare_failed', `${LLAMA_SOURCE.npmPackage} integrity mismatch: ${tarball.integrity}`);
    }
    await execa('tar', ['xzf', join(work, tarball.filename), '-C', work, 'package/llama/gitRelease.bundle']);
    const src = join(work, 'llama.cpp');
    await execa('git', ['clone', '--quiet', join(work, 'package/llama/gitRelease.bundle'), src]);
    await patchSource(src);
    log('[engine build] source unpacked and patched (no remote media downloads); configuring with cmake');
    const buildDir = join(src, 'build');
    await execa('cmake', ['-S', src, '-B', buildDir, ...CMAKE_FLAGS]);
    const jobs = String(Math.max(1, cpus().length));
    const proc = execa('cmake', ['--build', buildDir, '--config', 'Release', '-j', jobs, '--target', 'llama-server'], {
      all: true,
      buffer: false,
    });
    // cmake prints "[ 42%] Building ..." lines: show each new percentage once, so the user sees progress.
    let last = '';
    proc.all?.setEncoding('utf8').on('data', (chunk: string) => {
      for (const m of chunk.matchAll(/^\[\s*(\d+)%\]/gm)) {
        if (m[1] !== last) {
          last = m[1]!;
          log(`[engine build] ${last.padStart(3)}%  (${Math.round((Date.now() - started) / 1000)} s)`);
        }
      }
    });
    await proc;
    const built = join(buildDir, 'bin', 'llama-server');
    const tmp = `${target}.tmp-${process.pid}`;
    await copyFile(built, tmp);
    await chmod(tmp, 0o755);
    await rename(tmp, target);
    log(`[engine build] done in ${Math.round((Date.now() - started) / 1000)} s: ${target}`);
  } catch (err) {
    const e = err as { shortMessage?: string; message: string; all?: string; stderr?: string };
    const tail = (e.all ?? e.stderr ?? '').split('\n').slice(-15).join('\n');
    throw new StartupError('prepare_failed', `llama-server build failed: ${e.shortMessage ?? e.message}${tail ? `\n${tail}` : ''}`, { cause: err });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** `npm run engine:build`: build (or find) the engine and print its path. */
if (isMainModule(import.meta.url)) {
  const { loadSettings } = await import('../../core/config.js');
  const path = await ensureLlamaServer(loadSettings().cachePath);
  process.stdout.write(`${path}\n`);
}

