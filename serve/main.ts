#!/usr/bin/env node
// The `portico` CLI. Verbs as NIM's container has them: `serve` (default; `nim-serve` alias) and
// `list-model-profiles`. Settings come from the environment only (core/config.ts).
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, loadSettings, type Settings } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { STARTUP_ERRORS, StartupError, startupFailure } from '../core/startup-errors.js';
import { listProfiles, planLaunch } from '../launcher/plan.js';
import { renderModelsDryRun, renderModelsJson, renderModelsTable, renderProfilesJson, renderProfilesTable } from '../launcher/profiles-table.js';
import { modelEntries, planModelLaunches, type ModelsPlan } from '../launcher/plan-models.js';
import { rayDryRun, runRayWorker } from '../launcher/ray.js';
import { runRayHead, serve } from './serve.js';

const USAGE = `usage: portico [serve] [--dry-run] [--ray-head | --ray-worker HEAD_ADDRESS]
       portico list-model-profiles [--json]
Settings are read from NIM_* environment variables (see README).`;

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const verb = argv[0] && !argv[0].startsWith('-') ? argv[0] : 'serve';
  const rest = verb === argv[0] ? argv.slice(1) : argv;
  let flags: { 'dry-run'?: boolean; json?: boolean; help?: boolean; 'ray-head'?: boolean; 'ray-worker'?: string };
  try {
    flags = parseArgs({
      args: rest,
      options: {
        'dry-run': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        'ray-head': { type: 'boolean' },
        'ray-worker': { type: 'string' },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`portico: ${(err as Error).message}\n${USAGE}\n`);
    return STARTUP_ERRORS.usage.exit;
  }
  if (flags.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let settings: Settings;
  try {
    settings = loadSettings(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`portico: invalid setting ${err.message}\n`);
      return STARTUP_ERRORS[err.startupCode].exit;
    }
    throw err;
  }
  const log = createLogger(settings);

  // Every path reports a start-up failure the same way: one line, the exit status of its code.
  try {
    switch (verb) {
      case 'serve':
      case 'nim-serve':
        if (flags['ray-head'] || flags['ray-worker'] !== undefined) return await runRayMode(flags, settings, log, env);
        if (flags['dry-run']) {
          const many = await modelsPlan(settings, env);
          if (many) {
            process.stdout.write(renderModelsDryRun(many));
            return 0;
          }
          const plan = await planLaunch(settings, { enginePort: 0, dryRun: true, log: () => {}, env });
          const { command, args, env: engineEnv } = plan.engine;
          process.stdout.write(`${JSON.stringify({ profile: plan.profile, engine: { command, args, env: engineEnv } }, null, 2)}\n`);
          return 0;
        }
        return await runServer(settings, log, env);
      case 'list-model-profiles': {
        // Like NIM's: always exits 0 when the manifest and settings are valid; the listing says
        // when no profile can run (and why).
        const many = await modelsPlan(settings, env);
        if (many) {
          process.stdout.write(flags.json ? renderModelsJson(many) : renderModelsTable(many));
          return 0;
        }
        const listing = await listProfiles(settings, { env });
        process.stdout.write(flags.json ? renderProfilesJson(listing) : renderProfilesTable(listing));
        return 0;
      }
      default:
        process.stderr.write(`portico: unknown command "${verb}"\n${USAGE}\n`);
        return STARTUP_ERRORS.usage.exit;
    }
  } catch (err) {
    if (!(err instanceof StartupError)) throw err;
    process.stderr.write(`portico: ${err.message}\n`);
    return STARTUP_ERRORS[err.startupCode].exit;
  }
}

/** Several models (NIM_MODELS_FILE, or the CPU demo): the whole plan, built and generated nothing. */
async function modelsPlan(settings: Settings, env: NodeJS.ProcessEnv): Promise<ModelsPlan | undefined> {
  const found = await modelEntries(settings);
  return found && planModelLaunches(settings, found, { enginePort: 0, dryRun: true, log: () => {}, env, port: () => Promise.resolve(0) });
}

async function runServer(settings: Settings, log: ReturnType<typeof createLogger>, env: NodeJS.ProcessEnv): Promise<number> {
  return untilDone(await serve(settings, log, env));
}

/** SIGTERM / SIGINT shut a running node down; resolves with its exit code. */
function untilDone(running: { done: Promise<number>; shutdown(reason: string): Promise<number> }): Promise<number> {
  const onSignal = (sig: NodeJS.Signals) => void running.shutdown(sig);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  return running.done;
}

/**
 * `--ray-head` / `--ray-worker ADDRESS`: one node of a multi-node vLLM-over-Ray group
 * (launcher/ray.ts). The head serves like `serve` does, with vLLM over Ray as its engine runner.
 */
async function runRayMode(
  flags: { 'dry-run'?: boolean; 'ray-head'?: boolean; 'ray-worker'?: string },
  settings: Settings,
  log: ReturnType<typeof createLogger>,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  if (flags['ray-head'] && flags['ray-worker'] !== undefined) {
    process.stderr.write(`portico: --ray-head and --ray-worker exclude each other\n${USAGE}\n`);
    return STARTUP_ERRORS.usage.exit;
  }
  // One vLLM over one Ray cluster: several models are one process per model group, not one head.
  if (settings.modelsFile) throw new ConfigError(`NIM_MODELS_FILE=${settings.modelsFile}: not with --ray-head / --ray-worker (a Ray group serves one model)`);
  const role = flags['ray-worker'] !== undefined ? { role: 'worker' as const, address: flags['ray-worker'] } : { role: 'head' as const };
  if (flags['dry-run']) {
    process.stdout.write(await rayDryRun(role, settings, env));
    return 0;
  }
  return untilDone(role.role === 'head' ? await runRayHead(settings, log, env) : runRayWorker(role.address, settings.ray, log, env));
}

/** Run as a CLI: one clear line for a failure we understand, non-zero exit either way. */
export function run(argv: string[]): void {
  main(argv).then(
    (code) => process.exit(code),
    (err: unknown) => {
      const failure = startupFailure(err);
      process.stderr.write(`portico: ${failure.message}\n`);
      process.exit(failure.exit);
    },
  );
}

// Entry point when run directly (also through npm's bin symlink).
const self = fileURLToPath(import.meta.url);
if (process.argv[1] && realpathSync(process.argv[1]) === self) run(process.argv.slice(2));
