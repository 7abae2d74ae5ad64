// The composition root, the one place that knows both the launcher and the gateway. The start
// path as one straight line, the same for a local engine, vLLM over Ray and NIM_ENGINE_URL:
// settings → runner (plan, prepare) → gateway listens (live) → runner.start → health → ready
// → (signal or engine exit) drain → stop the engine → runner.release.
import type { Settings } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import { StartupError, startupFailure } from '../core/startup-errors.js';
import { rayHeadRunner, type RayOptions } from '../launcher/ray.js';
import { externalRunner, localRunner, type EngineRunner } from '../launcher/runner.js';
import { waitHealthy, isHealthy, EngineExitedError } from '../launcher/supervise.js';
import type { EngineDialect, EngineKind, ServedModel } from '../core/engine.js';
import { createApp, type Readiness } from '../gateway/app.js';
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
import { Admission } from '../gateway/admission.js';
import { initialLoraModels, startLoraRefresh } from './loras.js';

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
  // local | Ray head | external: one runner shape, one lifecycle below.
  const runner = given ?? (settings.engineUrl !== undefined ? externalRunner({ ...settings, engineUrl: settings.engineUrl }, log) : await localRunner(settings, log, env));
  const external = runner.mode === 'external';
  // As many engine connections as requests admitted (+ a few for tokenize/render), so undici never
  // queues what admission let through.
  const connections = settings.maxConcurrentRequests > 0 ? settings.maxConcurrentRequests + 16 : null;
  const upstream = new Upstream(runner.url, { connections });
  const model: ServedModel = runner.model;
  const engineInfo: { dialect: EngineDialect; kind?: EngineKind; modalities?: Modalities } = {
    dialect: runner.dialect,
    ...(runner.kind ? { kind: runner.kind } : {}),
    ...(model.modalities ? { modalities: model.modalities } : {}),
  };

  let ready = false;
  let notReadyReason = 'the engine is starting';
  const readiness: Readiness = { isReady: () => ready, reason: () => notReadyReason };

  // Observability: one registry for gateway, engine and GPU series; what the NIM management
  // endpoints describe.
  keys.watch();
  const release = porticoRelease();
  const metrics = new Metrics({ release, processMetrics: true, engineMetricsPath: engineMetricsPath(runner.kind) });
  const management = buildManagementInfo({ settings, plan: runner.plan, model, release });
  // Image URLs are fetched here, safely, and handed to the engine as data: URIs.
  const media = createMediaNormalizer(settings.media, { metrics: metrics.media, processors: mediaProcessors(settings.media) });
  // LoRA adapters are models too; a llama.cpp restart to change them waits for admitted requests.
  const loras = initialLoraModels(runner.plan?.loras);
  const admission = new Admission({ maxConcurrent: settings.maxConcurrentRequests, maxQueue: settings.maxQueue, queueTimeoutMs: settings.queueTimeoutMs });
  const { app } = createApp({ settings, model, upstream, engine: engineInfo, readiness, keys, metrics, log, management, media, loras, admission });
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
  log.info({ port: server.port, tls: settings.ssl.mode }, `gateway listening on ${settings.host}:${server.port} (live; ready once the engine is)`);

  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  let stopping = false;
  // The engine, once the runner has spawned it (a Ray head first waits for its cluster).
  const starting = runner.start(() => stopping);
  let loraRefresh: { stop(): Promise<void> } | undefined;

  const shutdown = async (reason: string, code = 0): Promise<number> => {
    if (stopping) return done;
    stopping = true;
    ready = false;
    notReadyReason = 'shutting down';
    process.off('SIGHUP', onHup);
    void gpuPoller.then((p) => p?.stop());
    keys.close();
    void loraRefresh?.stop(); // a restart under way sees the engine stop and gives up
    log.info(`shutting down (${reason}): draining in-flight requests for up to ${settings.shutdownTimeoutS} s`);
    await server.close(settings.shutdownTimeoutS * 1000, () =>
      upstream.abortAll(new PorticoError('engine_unavailable', 'the server is shutting down (NIM_SHUTDOWN_TIMEOUT reached)')),
    );
    const engine = await starting.catch(() => undefined);
    if (engine) {
      const engineCode = await engine.stop(runner.stopGraceMs);
      log.info(`engine stopped (exit ${engineCode})`);
    }
    await runner.release();
    await Promise.all([upstream.close(), media.close()]);
    resolveDone(code);
    return code;
  };

  void starting
    .then(async (engine) => {
      if (stopping) return;
      // The engine dying is fatal: report not-ready, end, and exit non-zero so an orchestrator restarts us.
      void engine?.exited.then(async (code) => {
        if (stopping) return;
        ready = false;
        notReadyReason = `the engine exited (code ${code})`;
        log.error(`the engine exited unexpectedly with code ${code}`);
        // Keep answering 503 briefly so probes and load balancers see "not ready", not a refused port.
        await new Promise((r) => setTimeout(r, NOT_READY_WINDOW_MS));
        await shutdown('engine exited', code === 0 ? 1 : code);
      });
      await waitHealthy(upstream, runner.healthPath, { timeoutMs: settings.engineStartTimeoutS * 1000, exited: engine?.exited, log });
      if (stopping) return;
      if (external) await discover(upstream, model, engineInfo, settings, log);
      // llama-server tells what its model takes; parts it cannot take are refused before it is called.
      if (engineInfo.dialect === 'llamacpp') {
        const m = await engineModalities((p, t) => upstream.getText(p, t));
        if (m) engineInfo.modalities = m;
        log.info(`model modalities: ${m ? Object.entries(m).filter(([, v]) => v).map(([k]) => k).join(', ') || 'text only' : 'unknown'}`);
      }
      ready = true;
      log.info(`ready: serving model "${model.id}"${loras.all().length ? ` and ${loras.all().length} LoRA adapter(s)` : ''}`);
      loraRefresh = startLoraRefresh({
        plan: runner.plan?.loras, kind: runner.kind, engine, engineUrl: runner.url, upstream, healthPath: runner.healthPath, table: loras, admission, settings, log,
        pause: (reason) => ((ready = false), (notReadyReason = reason)),
        resume: () => (ready = !stopping),
        fatal: (err) => void shutdown(`the engine did not come back after a LoRA restart: ${(err as Error).message}`, 1),
      });
      if (external) watchHealth(upstream, runner.healthPath, (ok) => {
        ready = ok && !stopping;
        notReadyReason = ok ? '' : 'the engine is not answering its health check';
      });
    })
    .catch(async (err: unknown) => {
      if (stopping || err instanceof EngineExitedError) return; // the exit handler reports it
      const failure = startupFailure(err);
      log.error(failure.message);
      await shutdown('engine start failed', failure.exit);
    });

  return { server, done, shutdown: (reason) => shutdown(reason) };
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

/** An engine we did not start: learn its model name, context length and dialect. */
async function discover(
  upstream: Upstream,
  model: ServedModel,
  info: { dialect: EngineDialect },
  settings: Settings,
  log: Logger,
): Promise<void> {
  try {
    const r = await upstream.getText('/v1/models', 5000);
    const card = (JSON.parse(r.text) as { data?: { id?: string; max_model_len?: number; meta?: { n_ctx_train?: number } }[] }).data?.[0];
    if (card?.id && !settings.servedModelName) model.id = card.id;
    if (!settings.maxModelLen) model.maxModelLen = card?.max_model_len ?? card?.meta?.n_ctx_train ?? model.maxModelLen;
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
