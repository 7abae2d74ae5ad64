// The composition root, the one place that knows both the launcher and the gateway. The start
// path as one straight line, the same for a local engine, vLLM over Ray and NIM_ENGINE_URL:
// settings → runners (plan, prepare) → gateway listens (live) → each runner.start → health →
// ready → (signal or engine exit) drain → stop the engines → runner.release.
// Several models (NIM_MODELS_FILE, the CPU demo) are one runner each, filling the gateway's model
// registry; one model is a registry of one.
import type { Settings } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { StartupError, startupFailure } from '../core/startup-errors.js';
import { rayHeadRunner, type RayOptions } from '../launcher/ray.js';
import { engineRunners, type EngineRunner } from '../launcher/runner.js';
import { waitHealthy, isHealthy, EngineExitedError, type EngineProcess } from '../launcher/supervise.js';
import type { EngineDialect, EngineKind, ServedModel } from '../core/engine.js';
import { createApp } from '../gateway/app.js';
import { Admission } from '../gateway/admission.js';
import { ModelRegistry, type ServedEntry } from '../gateway/models.js';
import { restartDelayMs } from './restart.js';
import { listen, type RunningServer } from '../gateway/server.js';
import { Upstream } from '../gateway/upstream.js';
import { PorticoError } from '../core/errors.js';
import { KeyStore } from '../gateway/auth.js';
import { tlsContextOptions, tlsServerOptions } from '../gateway/tls.js';
import { Metrics, engineMetricsPath } from '../gateway/metrics.js';
import { buildManagementInfo, porticoRelease } from './model-info.js';
import { startGpuPoller } from './gpu-metrics.js';
import { createMediaNormalizer, type Modalities } from '../gateway/media/normalize.js';
import { engineModalities } from '../gateway/media/modalities.js';
import { mediaProcessors } from '../gateway/media/processors.js';
import { initialLoraModels, restartLoraRefresh } from './loras.js';
import type { LoraModels } from '../gateway/lora-models.js';

const NOT_READY_WINDOW_MS = 1000;

export interface Serving {
  server: RunningServer;
  /** Resolves with the process exit code once serving has ended (engine died or shutdown). */
  done: Promise<number>;
  shutdown(reason: string): Promise<number>;
}

export async function serve(settings: Settings, log: Logger, env: NodeJS.ProcessEnv, given?: EngineRunner): Promise<Serving> {
  // API keys and TLS files are read first: a bad one stops the start with a line naming it,
  // before an engine build or a model download.
  const keys = credentials(() => new KeyStore({ keys: settings.apiKeys, file: settings.apiKeysFile, defaults: { rpm: settings.rateLimitRpm, tpm: settings.rateLimitTpm }, log }));
  const tls = credentials(() => tlsServerOptions(settings.ssl));
  // local | Ray head | external: one runner shape, one lifecycle below; one runner per model.
  const { runners, sequential } = given ? { runners: [given], sequential: false } : await engineRunners(settings, log, env);
  const several = runners.length > 1;
  // As many engine connections as requests admitted (+ a few for tokenize/render), so undici never
  // queues what admission let through.
  const connections = settings.maxConcurrentRequests > 0 ? settings.maxConcurrentRequests + 16 : null;
  const served: Served[] = runners.map((runner) => {
    const model: ServedModel = runner.model;
    return {
      runner,
      model,
      upstream: new Upstream(runner.url, {
        connections,
        onRetry: (err) => log.warn(`${model.id}: the engine closed a connection before answering (${(err as { code?: string }).code ?? 'error'}); the request was sent once more`),
      }),
      engineInfo: { dialect: runner.dialect, ...(runner.kind ? { kind: runner.kind } : {}), ...(model.modalities ? { modalities: model.modalities } : {}) },
      ready: false,
      reason: 'the engine is starting',
    };
  });
  const registry = new ModelRegistry();
  for (const m of served) {
    m.entry = registry.add({
      served: m.model,
      task: m.runner.task,
      upstream: m.upstream,
      engine: m.engineInfo,
      // Each model its own in-flight limit: one busy model never refuses another's requests.
      admission: new Admission({ maxConcurrent: settings.maxConcurrentRequests, maxQueue: settings.maxQueue, queueTimeoutMs: settings.queueTimeoutMs }),
      readiness: { isReady: () => m.ready, reason: () => m.reason },
    });
  }
  const first = served[0]!;

  // Observability: one registry for gateway, engine and GPU series; what the NIM management
  // endpoints describe (the first model's deployment; /v1/metadata lists every model).
  keys.watch();
  const release = porticoRelease();
  const metrics = new Metrics({ release, processMetrics: true, engineMetricsPath: engineMetricsPath(first.runner.kind) });
  const management = buildManagementInfo({ settings, plan: first.runner.plan, model: first.model, release });
  // Image URLs are fetched here, safely, and handed to the engine as data: URIs.
  const media = createMediaNormalizer(settings.media, { metrics: metrics.media, processors: mediaProcessors(settings.media) });
  // LoRA adapters (NIM_PEFT_SOURCE, a models file's peft_source): models whose parent is their model.
  for (const m of served) {
    if (!m.runner.plan?.loras) continue;
    m.loras = initialLoraModels(m.runner.plan.loras);
    m.loras.bind(registry, m.entry!);
  }
  const { app } = createApp({ settings, registry, keys, metrics, log, management, media, loras: served.flatMap((m) => (m.loras ? [m.loras] : [])) });
  const server = await listen(app, { port: settings.port, host: settings.host, tls, limits: settings, log });
  // SIGHUP re-reads the API keys file and the TLS key and certificates.
  const onHup = () => {
    keys.reload('SIGHUP');
    if (!server.setSecureContext) return;
    try {
      server.setSecureContext(tlsContextOptions(settings.ssl));
      log.info('TLS certificates reloaded (SIGHUP)');
    } catch (err) {
      log.error(`TLS certificates not reloaded, keeping the current ones: ${(err as Error).message}`);
    }
  };
  process.on('SIGHUP', onHup);
  // GPU gauges from nvidia-smi in the background (nothing when there is no GPU).
  const gpuPoller = startGpuPoller({ env, log, onSamples: (samples) => metrics.setGpus(samples) }).catch(() => undefined);
  log.info({ port: server.port, tls: settings.ssl.mode }, `gateway listening on ${settings.host}:${server.port} (live; ready once the engine${several ? 's are' : ' is'})`);

  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  let stopping = false;
  const restarts: NodeJS.Timeout[] = [];

  const shutdown = async (reason: string, code = 0): Promise<number> => {
    if (stopping) return done;
    stopping = true;
    for (const m of served) {
      m.ready = false;
      m.reason = 'shutting down';
    }
    for (const t of restarts) clearTimeout(t);
    process.off('SIGHUP', onHup);
    void gpuPoller.then((p) => p?.stop());
    keys.close();
    for (const m of served) void m.loraRefresh?.stop(); // a llama.cpp restart under way sees the engine stop and gives up
    log.info(`shutting down (${reason}): draining in-flight requests for up to ${settings.shutdownTimeoutS} s`);
    await server.close(settings.shutdownTimeoutS * 1000, () => {
      for (const m of served) m.upstream.abortAll(new PorticoError('engine_unavailable', 'the server is shutting down (NIM_SHUTDOWN_TIMEOUT reached)'));
    });
    await Promise.all(
      served.map(async (m) => {
        const engine = await m.starting?.catch(() => undefined);
        if (engine) {
          const engineCode = await engine.stop(m.runner.stopGraceMs);
          log.info(`engine stopped (exit ${engineCode})${several ? ` (model ${m.model.id})` : ''}`);
        }
      }),
    );
    await Promise.all(served.map((m) => m.runner.release()));
    await Promise.all([...served.map((m) => m.upstream.close()), media.close()]);
    resolveDone(code);
    return code;
  };

  /** An engine died while serving: its model answers 503 at once; then restart it, or end the process. */
  const onEngineExit = async (m: Served, code: number, upSince: number): Promise<void> => {
    if (stopping) return;
    m.ready = false;
    m.reason = `the engine exited (code ${code})`;
    const which = several ? ` (model ${m.model.id})` : '';
    log.error(`the engine exited unexpectedly with code ${code}${which}`);
    if (settings.modelsRestart) {
      m.failures = Date.now() - upSince > RESTART_RESET_MS ? 1 : (m.failures ?? 0) + 1;
      const delay = restartDelayMs(m.failures);
      m.reason = `the engine exited (code ${code}); restarting in ${Math.round(delay / 100) / 10} s (NIM_MODELS_RESTART)`;
      log.warn(`restarting the engine${which} in ${delay} ms (attempt ${m.failures}; NIM_MODELS_RESTART)`);
      const t = setTimeout(() => {
        restarts.splice(restarts.indexOf(t), 1);
        if (stopping) return;
        m.reason = 'the engine is restarting';
        bringUp(m).catch((err: unknown) => {
          if (stopping || err instanceof EngineExitedError) return; // its exit handler schedules the next attempt
          log.error(`the engine did not come back${which}: ${(err as Error).message}`);
          void m.starting?.then((e) => e?.stop(m.runner.stopGraceMs));
        });
      }, delay);
      restarts.push(t);
      return;
    }
    // Keep answering 503 briefly so probes and load balancers see "not ready", not a refused port.
    await new Promise((r) => setTimeout(r, NOT_READY_WINDOW_MS));
    await shutdown('engine exited', code === 0 ? 1 : code);
  };

  /** Start one model's engine (a Ray head first waits for its cluster) and wait until it serves. */
  const bringUp = async (m: Served): Promise<void> => {
    const external = m.runner.mode === 'external';
    m.starting = m.runner.start(() => stopping);
    const engine = await m.starting;
    if (stopping) return;
    const upSince = Date.now();
    void engine?.exited.then((code) => onEngineExit(m, code, upSince));
    await waitHealthy(m.upstream, m.runner.healthPath, { timeoutMs: settings.engineStartTimeoutS * 1000, exited: engine?.exited, log });
    if (stopping) return;
    if (external) await discover(m.upstream, m.model, m.engineInfo, settings, log, m.runner.task !== undefined);
    // llama-server tells what its model takes; parts it cannot take are refused before it is called.
    if (m.engineInfo.dialect === 'llamacpp') {
      const mods = await engineModalities((p, t) => m.upstream.getText(p, t));
      if (mods) m.engineInfo.modalities = mods;
      log.info(`model modalities: ${mods ? Object.entries(mods).filter(([, v]) => v).map(([k]) => k).join(', ') || 'text only' : 'unknown'}${several ? ` (model ${m.model.id})` : ''}`);
    }
    if (m.loras && m.runner.plan?.loras) {
      // The engine (re)started with the plan's adapters: the table follows it, then the folder.
      const engine = await m.starting;
      void m.loraRefresh?.stop();
      m.loraRefresh = restartLoraRefresh({
        plan: m.runner.plan.loras, kind: m.runner.kind, engine, engineUrl: m.runner.url, upstream: m.upstream, healthPath: m.runner.healthPath,
        table: m.loras, admission: m.entry!.admission, settings, log,
        pause: (reason) => ((m.ready = false), (m.reason = reason)),
        resume: () => ((m.ready = !stopping), (m.reason = '')),
        fatal: (err) => void shutdown(`the engine did not come back after a LoRA restart: ${(err as Error).message}`, 1),
      });
    }
    m.ready = true;
    m.reason = '';
    const adapters = m.loras?.all().length ?? 0;
    log.info(`ready: serving model "${m.model.id}"${adapters ? ` and ${adapters} LoRA adapter(s)` : ''}`);
    if (external && !m.watching) {
      m.watching = true;
      watchHealth(m.upstream, m.runner.healthPath, (ok) => {
        if (stopping) return;
        m.ready = ok;
        m.reason = ok ? '' : 'the engine is not answering its health check';
      });
    }
  };

  // All engines start at once (each waits for its own health), except engines sharing a GPU.
  const startAll = async () => {
    if (!sequential) return Promise.all(served.map(bringUp));
    for (const m of served) await bringUp(m);
    return undefined;
  };
  void startAll()
    .then(() => {
      if (several && !stopping) log.info(`ready: serving ${served.length} models (${served.map((m) => m.model.id).join(', ')})`);
    })
    .catch(async (err: unknown) => {
      if (stopping || err instanceof EngineExitedError) return; // the exit handler reports it
      const failure = startupFailure(err);
      log.error(failure.message);
      await shutdown('engine start failed', failure.exit);
    });

  return { server, done, shutdown: (reason) => shutdown(reason) };
}

/** After this long serving, an engine's next death starts its restart backoff afresh. */
const RESTART_RESET_MS = 60_000;

/** One model's engine and the state the gateway reads (readiness) and the lifecycle keeps. */
interface Served {
  runner: EngineRunner;
  model: ServedModel;
  upstream: Upstream;
  engineInfo: { dialect: EngineDialect; kind?: EngineKind; modalities?: Modalities };
  ready: boolean;
  reason: string;
  /** The engine being started (resolves once spawned). */
  starting?: Promise<EngineProcess | undefined>;
  /** Consecutive deaths (restart backoff). */
  failures?: number;
  watching?: boolean;
  /** Its registry entry. */
  entry?: ServedEntry;
  /** Its LoRA adapters (gateway/lora-models.ts) and the loop that keeps them in step with the folder. */
  loras?: LoraModels;
  loraRefresh?: { stop(): Promise<void> } | undefined;
}

/** `portico serve --ray-head`: the same serving lifecycle, with vLLM over Ray as the engine runner. */
export async function runRayHead(settings: Settings, log: Logger, env: NodeJS.ProcessEnv, opts: RayOptions = {}): Promise<Serving> {
  return serve(settings, log, env, await rayHeadRunner(settings, log, env, opts));
}

/** The gateway's key and TLS loaders throw plain errors; at start-up they are `invalid_credentials`. */
function credentials<T>(load: () => T): T {
  try {
    return load();
  } catch (err) {
    throw new StartupError('invalid_credentials', (err as Error).message, { cause: err });
  }
}

/** An engine we did not start: learn its model name (unless named: settings, models file), context length and dialect. */
async function discover(
  upstream: Upstream,
  model: ServedModel,
  info: { dialect: EngineDialect },
  settings: Settings,
  log: Logger,
  named: boolean,
): Promise<void> {
  try {
    const r = await upstream.getText('/v1/models', 5000);
    const card = (JSON.parse(r.text) as { data?: { id?: string; max_model_len?: number; meta?: { n_ctx_train?: number } }[] }).data?.[0];
    if (card?.id && !settings.servedModelName && !named) model.id = card.id;
    if (named ? !model.maxModelLen : !settings.maxModelLen) model.maxModelLen = card?.max_model_len ?? card?.meta?.n_ctx_train ?? model.maxModelLen;
  } catch (err) {
    log.warn(`could not list the engine's models: ${(err as Error).message}`);
  }
  // llama-server has /props; vLLM and trtllm-serve do not.
  const props = await upstream.getText('/props', 2000).catch(() => undefined);
  if (props?.status === 200) info.dialect = 'llamacpp';
}

function watchHealth(upstream: Upstream, path: string, set: (ok: boolean) => void): void {
  const timer = setInterval(() => void isHealthy(upstream, path).then(set), 5000);
  timer.unref();
}
