// Running ffprobe/ffmpeg (Debian packages) on client bytes. The bytes go to a private temp file, not
// a pipe: an MP4 whose `moov` index sits after the media data cannot be seeked in a pipe, and
// frame sampling seeks. Every run is argv (never a shell), reads only that file (`-protocol_whitelist
// file` plus a forced demuxer, so no playlist or reference inside the bytes can open another file or
// a URL), has a deadline and an output cap, and is killed when the request is aborted.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ExecaError } from 'execa';
import { PorticoError, redactEngineMessage } from '../../core/errors.js';
import type { MediaRefusal } from './refusal.js';

export interface RunOptions {
  signal?: AbortSignal | undefined;
  timeoutMs: number;
  /** stdout larger than this fails the run (the tool is killed). */
  maxOutputBytes?: number;
  /** The refusal to throw when the tool rejects the bytes or runs out of time. */
  refuse: (detail: string) => MediaRefusal;
}

/** Runs `tool` (ffprobe | ffmpeg from PATH); resolves to its stdout. */
export async function runTool(tool: 'ffprobe' | 'ffmpeg', args: string[], opts: RunOptions): Promise<Buffer> {
  opts.signal?.throwIfAborted();
  try {
    const result = await execa(tool, args, {
      cancelSignal: opts.signal,
      timeout: opts.timeoutMs,
      forceKillAfterDelay: 1000,
      maxBuffer: opts.maxOutputBytes ?? 16 * 1024 * 1024,
      encoding: 'buffer',
      stdin: 'ignore',
      stripFinalNewline: false,
    });
    return Buffer.from(result.stdout);
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    const e = err as ExecaError<{ encoding: 'buffer' }>;
    if (e.code === 'ENOENT') {
      // The gateway host lacks the tool: the operator's problem, not the client's media.
      throw new PorticoError('internal_error', `${tool} is not installed (README: prerequisites)`, { cause: err });
    }
    if (e.timedOut) throw opts.refuse(`processing took longer than ${opts.timeoutMs} ms`);
    if (e.isMaxBuffer) throw opts.refuse(`${tool} output exceeded ${opts.maxOutputBytes} bytes`);
    const stderr = e.stderr ? Buffer.from(e.stderr).toString('utf8').trim() : '';
    // stderr names the temp file (`file:/tmp/...: Invalid data`): no path leaves the gateway.
    const last = (stderr.split('\n').pop() ?? '').replace(/file:[^\s:]+/g, 'input');
    throw opts.refuse(`could not be read (${redactEngineMessage(last)})`);
  }
}

/**
 * Calls `fn` with a private copy of `bytes` (in a fresh 0700 directory under `parent`, removed
 * after), named `file:<path>` so ffmpeg never takes a part of the path for a protocol.
 */
export async function withTempFile<T>(
  bytes: Uint8Array,
  fn: (input: string, dir: string) => Promise<T>,
  parent: string = tmpdir(),
): Promise<T> {
  const dir = await mkdtemp(join(parent, 'portico-media-'));
  try {
    const path = join(dir, 'input');
    await writeFile(path, bytes, { mode: 0o600, flag: 'wx' });
    return await fn(`file:${path}`, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Options for each input (they apply to the next `-i` only): this demuxer, and local files only.
 * ffmpeg already limits what a `file:` input may open (file,crypto,data); the explicit whitelist
 * keeps that true whatever its defaults become.
 */
export const inputArgs = (demuxer: string) => ['-protocol_whitelist', 'file', '-f', demuxer];

/** Parses an ffprobe rational (`25/1`, `30000/1001`, `0/0`) or decimal; undefined if not positive. */
export function rational(v: unknown): number | undefined {
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  const [n, d] = String(v).split('/').map(Number);
  const r = d === undefined ? n! : n! / d;
  return Number.isFinite(r) && r > 0 ? r : undefined;
}
