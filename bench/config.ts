// The benchmark's own settings, parsed once with zod like the server's (core/config.ts), with one
// clear line naming a bad variable. The server settings a bench child needs (NIM_ENGINE_URL,
// NIM_SERVER_*) go through core/config.ts's loadSettings.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

const schema = z.object({
  /** Another portico build (its dist/) to measure as `portico`. */
  BENCH_PORTICO_DIST: z.string().min(1).optional(),
  /** A second build measured beside the first, interleaved (before/after in one run). */
  BENCH_CANDIDATE_DIST: z.string().min(1).optional(),
  /** `--cpu-prof` for this gateway (portico, candidate or portkey). */
  BENCH_CPU_PROF: z.string().min(1).optional(),
});

export type BenchConfig = z.infer<typeof schema>;

let cached: BenchConfig | undefined;
export function benchConfig(env: NodeJS.ProcessEnv = process.env): BenchConfig {
  if (cached && env === process.env) return cached;
  const r = schema.safeParse({ BENCH_PORTICO_DIST: env.BENCH_PORTICO_DIST || undefined, BENCH_CANDIDATE_DIST: env.BENCH_CANDIDATE_DIST || undefined, BENCH_CPU_PROF: env.BENCH_CPU_PROF || undefined });
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new Error(`bench: invalid setting ${String(issue.path[0])}: ${issue.message}`);
  }
  if (env === process.env) cached = r.data;
  return r.data;
}

/**
 * A build's CLI entry: dist/serve/main.js since the relayout, dist/launcher/main.js before it, so a
 * before/after run can measure a build from either side.
 */
export function porticoEntry(dist: string): string {
  const now = join(dist, 'serve', 'main.js');
  const before = join(dist, 'launcher', 'main.js');
  return existsSync(now) || !existsSync(before) ? now : before;
}
