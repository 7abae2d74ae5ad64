// LoRA adapters while serving: the gateway's adapter models (gateway/lora-models.ts) filled from
// the launcher's scan of NIM_PEFT_SOURCE, and kept in step with the folder every
// NIM_PEFT_REFRESH_INTERVAL seconds, the way each engine allows:
//
//   vLLM          /v1/load_lora_adapter and /v1/unload_lora_adapter while it serves; the table is
//                 what the engine then lists (an adapter it refused is not served).
//   llama.cpp     llama-server reads adapter files only at start: the engine is restarted with the
//                 new list. Readiness goes 503 first, in-flight requests finish (at most
//                 NIM_SHUTDOWN_TIMEOUT), the engine is replaced on the same port, and the table
//                 (ids = positions in the list) changes together with the engine.
//   TensorRT-LLM  adapters are named per request (lora_request with the folder): the table is the scan.
import type { Settings } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { EngineKind } from '../core/engine.js';
import type { Admission } from '../gateway/admission.js';
import { LoraModels } from '../gateway/lora-models.js';
import type { Upstream } from '../gateway/upstream.js';
import { withLlamaCppLoras } from '../launcher/lora-llamacpp.js';
import { applyLoraChanges, reconcileLoras, VllmLoraClient } from '../launcher/lora-vllm.js';
import type { LoraPlan } from '../launcher/peft-plan.js';
import { startPeftRefresh, type PeftChanges, type PeftRefresh } from '../launcher/peft-refresh.js';
import { scanPeftSource, type PeftAdapter } from '../launcher/peft-scan.js';
import type { RestartableEngine } from '../launcher/restartable-engine.js';
import type { EngineProcess } from '../launcher/supervise.js';
import { waitHealthy } from '../launcher/supervise.js';

/** The adapter models the gateway starts with (before the engine is ready: requests wait for it anyway). */
export function initialLoraModels(plan: LoraPlan | undefined): LoraModels {
  const table = new LoraModels();
  table.set(toModels(plan?.adapters ?? []));
  return table;
}

export interface LoraServiceDeps {
  plan: LoraPlan | undefined;
  kind: EngineKind | undefined;
  engine: EngineProcess | undefined;
  engineUrl: string;
  upstream: Upstream;
  healthPath: string;
  table: LoraModels;
  admission: Admission;
  settings: Settings;
  log: Logger;
  /** Readiness while the llama.cpp engine restarts. */
  pause(reason: string): void;
  resume(): void;
  /** The restarted engine never became healthy: serving cannot go on. */
  fatal(err: unknown): void;
}

/**
 * Once the engine is ready (at start, or after it died and was started again with the plan's
 * adapters): the table is set back to those adapters, and the refresh loop starts from them.
 */
export function restartLoraRefresh(d: LoraServiceDeps): PeftRefresh | undefined {
  setTable(d, toModels(d.plan?.adapters ?? []));
  return startLoraRefresh(d);
}

/** Start the refresh loop once the engine is ready; undefined when adapters are not rescanned. */
export function startLoraRefresh(d: LoraServiceDeps): PeftRefresh | undefined {
  const plan = d.plan;
  const intervalS = d.settings.peft.refreshIntervalS;
  if (!plan || intervalS === undefined || !d.kind) return undefined;
  const apply = appliers[d.kind];
  const refused = new Map<string, string>();
  return startPeftRefresh({
    intervalMs: intervalS * 1000,
    initial: plan.adapters,
    initialSkipped: plan.skipped,
    scan: (serving) => scanPeftSource(plan.source, { ...plan.scanOptions, serving }),
    apply: (scanned, changes) => apply(d, scanned, changes, refused),
    log: { info: (m) => d.log.info(m), warn: (m) => d.log.warn(m) },
  });
}

/** `refused`: adapters the engine would not load, by name → fingerprint (not retried until their files change). */
type Applier = (d: LoraServiceDeps, scanned: PeftAdapter[], changes: PeftChanges, refused: Map<string, string>) => Promise<PeftAdapter[]>;

const appliers: Record<EngineKind, Applier> = {
  async vllm(d, scanned, changes, refused) {
    const client = new VllmLoraClient(d.engineUrl);
    const loaded = await client.list();
    const wanted = scanned.filter((a) => refused.get(a.name) !== a.fingerprint);
    const plan = reconcileLoras(wanted.map((a) => ({ name: a.name, path: a.path })), loaded);
    // An adapter refused before and unchanged since is neither retried nor unloaded.
    plan.unload = plan.unload.filter((name) => !scanned.some((a) => a.name === name && refused.get(name) === a.fingerprint));
    // Replaced weights under the same folder: unload and load again.
    for (const a of changes.changed.filter((c) => wanted.includes(c))) {
      if (loaded.some((l) => l.name === a.name) && !plan.unload.includes(a.name)) plan.unload.push(a.name);
      if (!plan.load.some((l) => l.name === a.name)) plan.load.push({ name: a.name, path: a.path });
    }
    for (const r of await applyLoraChanges(client, plan)) {
      if (r.result.ok) d.log.info(`LoRA: ${r.action === 'load' ? 'loaded' : 'unloaded'} adapter "${r.name}"`);
      else d.log.warn(`LoRA: vLLM refused to ${r.action} adapter "${r.name}" (${r.result.status}): ${r.result.message}`);
      const fp = scanned.find((a) => a.name === r.name)?.fingerprint;
      if (r.action === 'load' && !r.result.ok && fp) refused.set(r.name, fp);
      else if (r.action === 'load') refused.delete(r.name);
    }
    const now = await client.list();
    setTable(d, now.map((l) => ({ id: l.name, root: l.path })));
    return scanned.filter((a) => now.some((l) => l.name === a.name));
  },

  async tensorrt_llm(d, scanned) {
    setTable(d, toModels(scanned));
    return scanned;
  },

  async llamacpp(d, scanned) {
    const engine = d.engine as RestartableEngine | undefined;
    if (!engine || typeof engine.replace !== 'function') throw new Error('the engine cannot be restarted here');
    const timeoutS = d.settings.shutdownTimeoutS;
    d.pause('restarting the engine to change its LoRA adapters');
    d.log.info(`LoRA: restarting llama-server with ${scanned.length} adapter(s): ${scanned.map((a) => a.name).join(', ') || '-'}`);
    // In-flight requests finish first, within the shutdown drain bound.
    const deadline = Date.now() + timeoutS * 1000;
    while (d.admission.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (d.admission.inFlight > 0) d.log.warn(`LoRA: ${d.admission.inFlight} request(s) still in flight after ${timeoutS} s (NIM_SHUTDOWN_TIMEOUT); restarting anyway`);
    const adapters = scanned.flatMap((a) => (a.file ? [{ name: a.name, file: a.file }] : []));
    try {
      await engine.replace(withLlamaCppLoras(engine.command, adapters), 10_000);
      d.log.info(`engine pid ${engine.pid}`);
      await waitHealthy(d.upstream, d.healthPath, { timeoutMs: d.settings.engineStartTimeoutS * 1000, exited: engine.exited, log: d.log });
    } catch (err) {
      d.fatal(err);
      throw err;
    }
    setTable(d, toModels(scanned));
    d.resume();
    return scanned;
  },
};

function setTable(d: LoraServiceDeps, models: { id: string; root: string }[]): void {
  for (const name of d.table.set(models)) d.log.warn(`LoRA: adapter "${name}" is not served: another model already has that name`);
}

function toModels(adapters: readonly PeftAdapter[]) {
  return adapters.map((a) => ({ id: a.name, root: a.path }));
}
