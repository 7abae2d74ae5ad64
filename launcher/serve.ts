// The start path, as one straight line:
// settings → plan (profile, engine argv) → gateway listens (live) → spawn engine → health → ready.
import { createServer } from 'node:net';
import type { Settings } from './config.js';
import type { Logger } from './logger.js';
import { planLaunch } from './plan.js';
import { spawnEngine, waitHealthy, isHealthy, EngineExitedError, type EngineProcess } from './supervise.js';
import type { EngineDialect, EngineKind, ServedModel } from './engines/types.js';
import { createApp, type Readiness } from '../gateway/app.js';
import { listen, type RunningServer } from '../gateway/server.js';
import { Upstream } from '../gateway/upstream.js';
import { PorticoError } from '../gateway/errors.js';
import { KeyStore } from '../gateway/auth.js';
import { tlsContextOptions, tlsServerOptions } from '../gateway/tls.js';
import { Metrics, engineMetricsPath } from '../gateway/metrics.js';
import { buildManagementInfo, porticoRelease } from './model-info.js';
import { startGpuPoller } from './gpu-metrics.js';
import { createMediaNormalizer, type Modalities } from '../gateway/media/normalize.js';
import { engineModalities } from '../gateway/media/modalities.js';
import { mediaProcessors } from '../gateway/media/processors.js';
import { redactUrl } from './redact-url.js';

const NOT_READY_WINDOW_MS = 1000;

export interface Serving {
  server: RunningServer;
  engine: EngineProcess | undefined;
  /** Resolves with the process exit code once serving has ended (engine died or shutdown). */
  done: Promise<number>;
  shutdown(reason: string): Promise<number>;
}

export async function serve(settings: Settings, log: Logger, env: NodeJS.ProcessEnv): Promise<Serving> {
  const external = settings.engineUrl !== undefined;
  const enginePort = external ? 0 : await freePort();
  const plan = external ? undefined : await planLaunch(settings, { enginePort, dryRun: false, log: (l) => log.info(l), env });
  // As many engine connections as requests admitted (+ a few for tokenize/render), so undici never
  // queues what admission let through.
  const connections = settings.maxConcurrentRequests > 0 ? settings.maxConcurrentRequests + 16 : null;
  const upstream = new Upstream(settings.engineUrl ?? `http://127.0.0.1:${enginePort}`, { connections });
  const healthPath = plan?.engine.healthPath ?? '/health';
  const model: ServedModel = plan?.model ?? {
    id: settings.servedModelName ?? 'unknown',
    root: settings.modelPath ?? (settings.engineUrl ? redactUrl(settings.engineUrl) : ''),
    maxModelLen: settings.maxModelLen ?? 0,
  };
  const engineInfo: { dialect: EngineDialect; kind?: EngineKind; modalities?: Modalities } = {
    dialect: plan?.engine.dialect ?? 'openai',
    ...(plan ? { kind: plan.engine.kind } : {}),
    ...(model.modalities ? { modalities: model.modalities } : {}),
  };

  let ready = false;
  let notReadyReason = 'the engine is starting';
  const readiness: Readiness = { isReady: () => ready, reason: () => notReadyReason };

  // API keys and TLS files are read now: a bad one stops the start with a line naming it.
  const keys = new KeyStore({ keys: settings.apiKeys, file: settings.apiKeysFile, defaults: { rpm: settings.rateLimitRpm, tpm: settings.rateLimitTpm }, log });
  keys.watch();
  const tls = tlsServerOptions(settings.ssl);
  // Observability (issue D): one registry for gateway, engine and GPU series; what the NIM
  // management endpoints describe.
  const release = porticoRelease();
  const metrics = new Metrics({ release, processMetrics: true, engineMetricsPath: engineMetricsPath(plan?.engine.kind) });
  const management = buildManagementInfo({ settings, plan, model, release });
  // Image URLs are fetched here, safely, and handed to the engine as data: URIs (issue C).
  const media = createMediaNormalizer(settings.media, { metrics: metrics.media, processors: mediaProcessors(settings.media) });
  const { app } = createApp({ settings, model, upstream, engine: engineInfo, readiness, keys, metrics, log, management, media });
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

  let engine: EngineProcess | undefined;
  if (plan) {
    log.info({ command: plan.engine.command, args: plan.engine.args }, `starting ${plan.engine.kind} engine on 127.0.0.1:${enginePort}`);
    engine = spawnEngine(plan.engine, log);
    log.info(`engine pid ${engine.pid}`);
  } else {
    log.info(`fronting the engine at ${redactUrl(settings.engineUrl ?? '')} (NIM_ENGINE_URL); spawning nothing`);
  }

  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  let stopping = false;

  const shutdown = async (reason: string, code = 0): Promise<number> => {
    if (stopping) return done;
    stopping = true;
    ready = false;
    notReadyReason = 'shutting down';
    process.off('SIGHUP', onHup);
    void gpuPoller.then((p) => p?.stop());
    keys.close();
    log.info(`shutting down (${reason}): draining in-flight requests for up to ${settings.shutdownTimeoutS} s`);
    await server.close(settings.shutdownTimeoutS * 1000, () =>
      upstream.abortAll(new PorticoError('engine_unavailable', 'the server is shutting down (NIM_SHUTDOWN_TIMEOUT reached)')),
    );
    if (engine) {
      const engineCode = await engine.stop(10_000);
      log.info(`engine stopped (exit ${engineCode})`);
    }
    await Promise.all([upstream.close(), media.close()]);
    resolveDone(code);
    return code;
  };

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

  const timeoutMs = settings.engineStartTimeoutS * 1000;
  void waitHealthy(upstream, healthPath, { timeoutMs, exited: engine?.exited, log })
    .then(async () => {
      if (external) await discover(upstream, model, engineInfo, settings, log);
      // llama-server tells what its model takes; parts it cannot take are refused before it is called.
      if (engineInfo.dialect === 'llamacpp') {
        const m = await engineModalities((p, t) => upstream.getText(p, t));
        if (m) engineInfo.modalities = m;
        log.info(`model modalities: ${m ? Object.entries(m).filter(([, v]) => v).map(([k]) => k).join(', ') || 'text only' : 'unknown'}`);
      }
      ready = true;
      log.info(`ready: serving model "${model.id}"`);
      if (external) watchHealth(upstream, healthPath, (ok) => {
        ready = ok && !stopping;
        notReadyReason = ok ? '' : 'the engine is not answering its health check';
      });
    })
    .catch(async (err: unknown) => {
      if (stopping || err instanceof EngineExitedError) return; // the exit handler reports it
      log.error((err as Error).message);
      await shutdown('engine start failed', 1);
    });

  return { server, engine, done, shutdown: (reason) => shutdown(reason) };
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

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}
