// How an engine gets running, whatever runs it: a local child process, vLLM over a Ray cluster
// (launcher/ray.ts) or an engine already running elsewhere (NIM_ENGINE_URL). The composition root
// drives every runner through the same lifecycle: plan → gateway live → start → healthy → ready →
// drain → stop the engine → release.
import type { Settings } from '../core/config.js';
import type { EngineCommand, EngineDialect, EngineKind, ModelTask, ServedModel } from '../core/engine.js';
import type { Logger } from '../core/logger.js';
import { freePort } from '../core/net.js';
import { planLaunch, type LaunchPlan } from './plan.js';
import { modelEntries, planModelLaunches } from './plan-models.js';
import { redactUrl } from './redact-url.js';
import { spawnEngine, type EngineProcess } from './supervise.js';
import type { LoraPlan } from './peft-plan.js';
import { restartableEngine } from './restartable-engine.js';

export interface EngineRunner {
  mode: 'local' | 'ray-head' | 'external';
  /** Base URL the gateway sends engine requests to. */
  url: string;
  healthPath: string;
  model: ServedModel;
  dialect: EngineDialect;
  /** Undefined for an engine we did not start (its kind is learnt, if at all, from its answers). */
  kind: EngineKind | undefined;
  /** The launch plan (profile, engine argv, model) the management endpoints describe; none for external. */
  plan: { profile: Record<string, unknown>; engine: EngineCommand; model: ServedModel; loras?: LoraPlan | undefined } | undefined;
  /**
   * Start the engine; resolves with its process once spawned (undefined: nothing to spawn). May
   * take long (a Ray cluster assembling); `stopped()` turning true makes it give up early.
   */
  start(stopped: () => boolean): Promise<EngineProcess | undefined>;
  /** Time the engine gets between SIGTERM and SIGKILL. */
  stopGraceMs: number;
  /** After the engine has stopped: undo what start() set up besides the engine (Ray's head). */
  release(): Promise<void>;
  /** What the model serves (several models: from the models file); undefined: unknown, every route is forwarded. */
  task?: ModelTask | undefined;
}

/** The engine the selected profile names, spawned on a free loopback port. */
export async function localRunner(settings: Settings, log: Logger, env: NodeJS.ProcessEnv): Promise<EngineRunner> {
  const enginePort = await freePort();
  const plan = await planLaunch(settings, { enginePort, dryRun: false, log: (l) => log.info(l), env });
  return planRunner(plan, log);
}

/** A planned engine, spawned on the port its plan names (start() again after it died restarts it there). */
export function planRunner(plan: Omit<LaunchPlan, 'listing'>, log: Logger, task?: ModelTask): EngineRunner {
  const enginePort = plan.engine.port;
  return {
    task,
    mode: 'local',
    url: `http://127.0.0.1:${enginePort}`,
    healthPath: plan.engine.healthPath,
    model: plan.model,
    dialect: plan.engine.dialect,
    kind: plan.engine.kind,
    plan,
    stopGraceMs: 10_000,
    async start() {
      const which = task ? ` (model ${plan.model.id})` : '';
      log.info({ command: plan.engine.command, args: plan.engine.args }, `starting ${plan.engine.kind} engine on 127.0.0.1:${enginePort}${which}`);
      // Several engines share the log: each one's lines carry its model.
      const elog = task ? log.child({ model: plan.model.id }) : log;
      // Restartable in place: llama.cpp changes its LoRA adapters by restarting (serve/loras.ts).
      const engine = restartableEngine((cmd) => spawnEngine(cmd, elog), plan.engine);
      log.info(`engine pid ${engine.pid}${which}`);
      return engine;
    },
    release: async () => undefined,
  };
}

/** NIM_ENGINE_URL: an OpenAI-compatible engine someone else runs; nothing to spawn or stop. */
export function externalRunner(settings: Settings & { engineUrl: string }, log: Logger, task?: ModelTask): EngineRunner {
  return {
    task,
    mode: 'external',
    url: settings.engineUrl,
    healthPath: '/health',
    model: { id: settings.servedModelName ?? 'unknown', root: settings.modelPath ?? redactUrl(settings.engineUrl), maxModelLen: settings.maxModelLen ?? 0 },
    dialect: 'openai',
    kind: undefined,
    plan: undefined,
    stopGraceMs: 0,
    async start() {
      log.info(`fronting the engine at ${redactUrl(settings.engineUrl)} (NIM_ENGINE_URL); spawning nothing`);
      return undefined;
    },
    release: async () => undefined,
  };
}

/**
 * The engines to run: several models (NIM_MODELS_FILE, or the CPU demo's two) one runner each,
 * in file order; else the one model of the settings. `sequential`: engines sharing a GPU start
 * one after another (vLLM checks at start that its share of the GPU is free).
 */
export async function engineRunners(settings: Settings, log: Logger, env: NodeJS.ProcessEnv): Promise<{ runners: EngineRunner[]; sequential: boolean }> {
  const found = await modelEntries(settings);
  if (!found) {
    return { runners: [settings.engineUrl !== undefined ? externalRunner({ ...settings, engineUrl: settings.engineUrl }, log) : await localRunner(settings, log, env)], sequential: false };
  }
  const plan = await planModelLaunches(settings, found, { enginePort: 0, dryRun: false, log: (l) => log.info(l), env, port: freePort });
  const runners = plan.models.map((m) => (m.plan ? planRunner(m.plan, log, m.task) : externalRunner({ ...m.settings, engineUrl: m.engineUrl! }, log, m.task)));
  return { runners, sequential: plan.mode === 'shared' };
}
