// Multi-node serving: models too large for one node run on vLLM over Ray, an existing distributed
// engine, not on anything home-made. Two modes of `portico serve` (the Helm chart's LeaderWorkerSet
// runs one leader and N-1 workers per group):
//
//   portico serve --ray-head            ray start --head → wait until NIM_NUM_COMPUTE_NODES nodes have
//                                       joined → the gateway in front of `vllm serve ... --distributed-
//                                       executor-backend ray` with tp×pp across the nodes
//   portico serve --ray-worker ADDRESS  ray start --address ADDRESS:6379 --block (in the foreground
//                                       until Ray stops; vLLM's workers run inside it)
//
// The pure parts (argv, `ray status` parsing) are separate from the I/O (runRayHead,
// runRayWorker) so `--dry-run` can print the exact commands.
import { execa, type ResultPromise } from 'execa';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { ConfigError, type Settings } from '../core/config.js';
import type { EngineCommand, ServedModel } from '../core/engine.js';
import { vllmCommand } from './engines/vllm.js';
import { loadGpuCatalog, probeGpus, which } from './gpus.js';
import type { Logger } from '../core/logger.js';
import { StartupError } from '../core/startup-errors.js';
import { gpuCatalogFile, nimTags, type Profile } from './manifest.js';
import { chatFeatures } from './chat-features.js';
import { engineModelArg, findLoraAdapters, hasQuantizationConfig, PlanError, resolveManifest, splitPassthrough } from './plan.js';
import { freePort } from '../core/net.js';
import type { EngineRunner } from './runner.js';
import { spawnEngine } from './supervise.js';

export type RayRole = { role: 'head' } | { role: 'worker'; address: string };

/** The Ray settings: `settings.ray`, parsed with every other setting by loadSettings (config.ts). */
export type RaySettings = Settings['ray'];

export interface Command {
  command: string;
  args: string[];
}

/** `host`, `host:port`, `[v6]` or `[v6]:port` → `host:port` for `ray start --address`. */
export function headAddress(raw: string, port: number): string {
  const a = raw.trim();
  if (!a || /\s/.test(a) || a.startsWith('-')) throw new ConfigError(`--ray-worker ${JSON.stringify(raw)}: expected the head's address (host or host:port)`);
  if (/^\[[^\]]+\]:\d+$/.test(a) || /^[^:]+:\d+$/.test(a)) return a;
  if (/^\[[^\]]+\]$/.test(a) || !a.includes(':')) return `${a}:${port}`;
  return `[${a}]:${port}`; // a bare IPv6 literal
}

/** The `ray start` for a role. Usage stats are off: a self-hosted cluster reports nothing. */
export function rayStartCommand(role: RayRole, rs: RaySettings, ray = 'ray'): Command {
  const common = ['--disable-usage-stats', ...(rs.gpusPerNode ? [`--num-gpus=${rs.gpusPerNode}`] : [])];
  if (role.role === 'head') return { command: ray, args: ['start', '--head', `--port=${rs.port}`, ...common] };
  return { command: ray, args: ['start', `--address=${headAddress(role.address, rs.port)}`, '--block', ...common] };
}

export function rayStatusCommand(rs: RaySettings, ray = 'ray'): Command {
  return { command: ray, args: ['status', `--address=127.0.0.1:${rs.port}`] };
}

export interface ClusterStatus {
  /** Active nodes. */
  nodes: number;
  /** GPUs the cluster has in total (undefined when `ray status` lists none). */
  gpus: number | undefined;
}

/**
 * Parse `ray status`: the "Active:" block lists one line per node kind (` 1 node_ab12…`), and the
 * "Usage:" block has ` 0.0/16.0 GPU`.
 */
export function parseRayStatus(text: string): ClusterStatus {
  let nodes = 0;
  let section = '';
  let gpus: number | undefined;
  for (const line of text.split('\n')) {
    const head = /^\s*(Active|Pending|Recent failures|Usage|Demands|Resources|Node status)\s*:?\s*$/.exec(line);
    if (head) {
      section = head[1]!;
      continue;
    }
    if (section === 'Active') {
      const m = /^\s*(\d+)\s+\S+/.exec(line);
      if (m) nodes += Number(m[1]);
    }
    const g = /^\s*[\d.]+\/([\d.]+)\s+GPU\b/.exec(line);
    if (g) gpus = Number(g[1]);
  }
  return { nodes, gpus };
}

export interface RayHeadPlan {
  profile: Record<string, unknown>;
  engine: EngineCommand;
  model: ServedModel;
  ray: { role: 'head'; start: Command; status: Command; nodes: number; timeoutS: number; tp: number; pp: number };
}

/**
 * tp × pp across the cluster. Defaults: tensor parallel within a node (the GPUs of one node), pipeline
 * parallel across nodes, as vLLM recommends; NIM_TENSOR_PARALLEL_SIZE / NIM_PIPELINE_PARALLEL_SIZE win.
 */
export function rayParallelism(settings: Pick<Settings, 'tensorParallelSize' | 'pipelineParallelSize' | 'ray'>, gpusPerNode: number): { tp: number; pp: number } {
  return { tp: settings.tensorParallelSize ?? gpusPerNode, pp: settings.pipelineParallelSize ?? settings.ray.nodes };
}

/**
 * The leader's plan: the model's manifest (as `portico serve` resolves it) supplies weights, served
 * name and a vLLM profile's precision and arguments; tp/pp come from the cluster, not from what this
 * one node could run alone.
 */
export function planRayHead(
  settings: Settings,
  ctx: { enginePort: number; gpusPerNode: number; env: NodeJS.ProcessEnv; root?: string | undefined },
): RayHeadPlan {
  const rs = settings.ray;
  const { tp, pp } = rayParallelism(settings, ctx.gpusPerNode);
  if (!settings.modelPath && !settings.manifestPath) {
    throw new PlanError('--ray-head: set NIM_MODEL_PATH (or NIM_MODEL_NAME) to the model to serve across the Ray cluster');
  }
  const resolved = resolveManifest(settings, ctx.root);
  const { manifest } = resolved;
  const vllm = manifest.profiles.filter((p) => p.tags.llm_engine === 'vllm');
  let profile: Profile | undefined;
  if (settings.modelProfile) {
    profile = manifest.profiles.find((p) => p.id === settings.modelProfile || p.name === settings.modelProfile);
    if (!profile) throw new PlanError(`NIM_MODEL_PROFILE=${settings.modelProfile}: no such profile in ${manifest.file}`);
    if (profile.tags.llm_engine !== 'vllm') throw new PlanError(`NIM_MODEL_PROFILE=${settings.modelProfile}: --ray-head runs vLLM, this profile is ${profile.tags.llm_engine}`);
  } else {
    profile = vllm.find((p) => p.tags.tp * p.tags.pp === tp * pp) ?? vllm[0];
  }
  if (!profile) throw new PlanError(`--ray-head runs vLLM over Ray; ${manifest.file} has no vLLM profile (${resolved.how})`);
  if (profile.unsupported && !settings.manifestAllowUnsafe) throw new PlanError(`--ray-head: ${profile.name}: ${profile.unsupported} (NIM_MANIFEST_ALLOW_UNSAFE=1 starts it anyway)`);
  const source = resolved.sourceOverride ?? profile.source ?? manifest.model.source;
  if (/^(ngc|portico):\/\//i.test(source)) throw new PlanError(`${profile.name}: weights at ${source} cannot be served by vLLM over Ray; set NIM_MODEL_PATH to a local copy or a Hugging Face id`);
  const servedName = settings.servedModelName ?? manifest.model.servedName;
  const env: Record<string, string> = { ...profile.env };
  if (!ctx.env.HF_HOME) env.HF_HOME = join(settings.cachePath, 'huggingface');
  const engine = vllmCommand({
    command: which('vllm', ctx.env) ?? 'vllm',
    model: engineModelArg(source),
    servedName,
    port: ctx.enginePort,
    tp,
    pp,
    maxModelLen: settings.maxModelLen,
    precision: profile.tags.precision,
    checkpointQuantized: (profile.source !== undefined && !resolved.sourceOverride) || hasQuantizationConfig(engineModelArg(source)),
    lora: profile.tags.feat_lora,
    loraModules: profile.tags.feat_lora ? findLoraAdapters(settings.peftSource) : [],
    chat: chatFeatures(manifest, 'vllm', settings),
    profileArgs: [...profile.args, '--distributed-executor-backend', 'ray'],
    passthrough: splitPassthrough(settings.passthroughArgs),
    env,
  });
  const ray = which('ray', ctx.env) ?? 'ray';
  const tags = { ...nimTags({ ...profile.tags, tp, pp }), nodes: String(rs.nodes), distributed_executor_backend: 'ray' };
  return {
    profile: { id: profile.id, name: profile.name, tags, selected: 'ray-head', manifest: manifest.file, model: manifest.model.id },
    engine,
    model: { id: servedName, root: source, maxModelLen: settings.maxModelLen ?? manifest.model.maxModelLen ?? 0 },
    ray: { role: 'head', start: rayStartCommand({ role: 'head' }, rs, ray), status: rayStatusCommand(rs, ray), nodes: rs.nodes, timeoutS: rs.startTimeoutS, tp, pp },
  };
}

/** GPUs per node: NIM_GPUS_PER_NODE, else this node's visible GPUs (nvidia-smi), else 1. */
async function localGpus(settings: Settings, env: NodeJS.ProcessEnv): Promise<number> {
  const rs = settings.ray;
  if (rs.gpusPerNode) return rs.gpusPerNode;
  try {
    const inv = await probeGpus(env, loadGpuCatalog(gpuCatalogFile()), settings.visibleDevices);
    return inv.gpus.length || 1;
  } catch {
    return 1;
  }
}

// ---------------------------------------------------------------------------------------------
// I/O

export interface RayRunning {
  /** Resolves with the exit code once this node is done. */
  done: Promise<number>;
  shutdown(reason: string): Promise<number>;
}

export interface RayOptions {
  /** `ray status` polling interval (tests shorten it). */
  pollIntervalMs?: number;
}

function pipeLines(proc: ResultPromise, log: Logger): void {
  for (const stream of [proc.stdout, proc.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', (line) => {
      if (line.trim()) log.info(line);
    });
  }
}

async function runRay(cmd: Command, env: NodeJS.ProcessEnv, log: Logger, timeoutMs: number): Promise<{ code: number; output: string }> {
  const r = await execa(cmd.command, cmd.args, { env, reject: false, all: true, timeout: timeoutMs, stdin: 'ignore' });
  const output = String(r.all ?? '');
  if (r.failed) log.debug(`${cmd.command} ${cmd.args.join(' ')} failed: ${r.shortMessage}`);
  return { code: r.exitCode ?? 1, output };
}

/** Poll `ray status` until `nodes` nodes are active, or fail after the timeout. */
export async function waitForCluster(
  rs: RaySettings,
  env: NodeJS.ProcessEnv,
  log: Logger,
  opts: { intervalMs?: number; stopped?: () => boolean; ray?: string } = {},
): Promise<ClusterStatus> {
  const started = Date.now();
  const status = rayStatusCommand(rs, opts.ray);
  let last: ClusterStatus = { nodes: 0, gpus: undefined };
  let lastLog = 0;
  for (;;) {
    if (opts.stopped?.()) throw new StartupError('cluster_failed', 'stopped while waiting for the Ray cluster');
    const r = await runRay(status, env, log, 60_000);
    if (r.code === 0) last = parseRayStatus(r.output);
    if (last.nodes >= rs.nodes) return last;
    const elapsed = Date.now() - started;
    if (elapsed > rs.startTimeoutS * 1000) {
      throw new StartupError('cluster_failed', `the Ray cluster has ${last.nodes} of ${rs.nodes} nodes after ${rs.startTimeoutS} s (NIM_CLUSTER_START_TIMEOUT)`);
    }
    if (Date.now() - lastLog >= 15_000) {
      lastLog = Date.now();
      log.info(`waiting for the Ray cluster: ${last.nodes}/${rs.nodes} nodes (${Math.round(elapsed / 1000)} s)`);
    }
    await new Promise((res) => setTimeout(res, opts.intervalMs ?? 5000));
  }
}

async function rayStop(ray: string, env: NodeJS.ProcessEnv, log: Logger): Promise<void> {
  const r = await runRay({ command: ray, args: ['stop'] }, env, log, 60_000);
  if (r.code !== 0) log.warn(`ray stop exited with ${r.code}`);
}

/**
 * The leader's engine runner: the composition root drives it like any other (gateway live at once,
 * ready when vLLM answers /health). start() runs `ray start --head`, waits for every node, then
 * spawns vLLM across the cluster; release() stops Ray once vLLM has stopped.
 */
export async function rayHeadRunner(settings: Settings, log: Logger, env: NodeJS.ProcessEnv, opts: RayOptions = {}): Promise<EngineRunner> {
  if (settings.engineUrl) throw new ConfigError('NIM_ENGINE_URL: not with --ray-head (the leader starts vLLM itself)');
  const rs = settings.ray;
  const enginePort = await freePort();
  const gpusPerNode = await localGpus(settings, env);
  let plan = planRayHead(settings, { enginePort, gpusPerNode, env });
  const rlog = log.child({ component: 'ray' });
  let rayStarted = false;
  log.info(`Ray head for ${rs.nodes} nodes: the gateway fronts vLLM on 127.0.0.1:${enginePort}, started once the cluster is complete`);
  return {
    mode: 'ray-head',
    url: `http://127.0.0.1:${enginePort}`,
    healthPath: plan.engine.healthPath,
    model: plan.model,
    dialect: plan.engine.dialect,
    kind: plan.engine.kind,
    plan,
    stopGraceMs: 30_000,
    async start(stopped) {
      const start = plan.ray.start;
      log.info(`starting the Ray head: ${start.command} ${start.args.join(' ')}`);
      const r = await runRay(start, env, rlog, 120_000);
      if (r.code !== 0) throw new StartupError('cluster_failed', `ray start --head failed (exit ${r.code}): ${r.output.trim().split('\n').slice(-5).join(' | ')}`);
      rayStarted = true;
      const cluster = await waitForCluster(rs, env, rlog, { intervalMs: opts.pollIntervalMs, stopped, ray: start.command });
      log.info(`Ray cluster ready: ${cluster.nodes} nodes${cluster.gpus !== undefined ? `, ${cluster.gpus} GPUs` : ''}`);
      // Re-plan with what the cluster reports when neither the user nor nvidia-smi said how many GPUs a node has.
      if (!rs.gpusPerNode && cluster.gpus && !settings.tensorParallelSize) {
        const perNode = Math.max(1, Math.floor(cluster.gpus / cluster.nodes));
        if (perNode !== gpusPerNode) plan = planRayHead(settings, { enginePort, gpusPerNode: perNode, env });
      }
      const { tp, pp } = plan.ray;
      if (cluster.gpus !== undefined && tp * pp > cluster.gpus) {
        throw new StartupError('cluster_failed', `tensor parallel ${tp} × pipeline parallel ${pp} needs ${tp * pp} GPUs; the Ray cluster has ${cluster.gpus}`);
      }
      if (stopped()) return undefined;
      log.info({ command: plan.engine.command, args: plan.engine.args }, `starting vLLM over Ray (tp ${tp} × pp ${pp}) on 127.0.0.1:${enginePort}`);
      const engine = spawnEngine(plan.engine, log);
      log.info(`engine pid ${engine.pid}`);
      return engine;
    },
    async release() {
      if (rayStarted) await rayStop(plan.ray.start.command, env, rlog);
    },
  };
}

/**
 * A worker: `ray start --address … --block` in the foreground. Workers may start before the head
 * listens (LeaderWorkerSet starts the group's pods together), so a failed join is retried every few
 * seconds within NIM_CLUSTER_START_TIMEOUT; after that, Ray exiting (the head is gone) ends this
 * process non-zero and the orchestrator restarts the group.
 */
export function runRayWorker(address: string, rs: RaySettings, log: Logger, env: NodeJS.ProcessEnv, opts: { retryMs?: number } = {}): RayRunning {
  const ray = which('ray', env) ?? 'ray';
  const start = rayStartCommand({ role: 'worker', address }, rs, ray);
  const rlog = log.child({ component: 'ray' });
  const began = Date.now();
  let stopping = false;
  let child: ResultPromise | undefined;
  let wake: (() => void) | undefined;

  const run = async (): Promise<number> => {
    for (;;) {
      log.info(`joining the Ray cluster: ${start.command} ${start.args.join(' ')}`);
      child = execa(start.command, start.args, { env, reject: false, buffer: false, stdin: 'ignore', cleanup: true });
      pipeLines(child, rlog);
      const r = await child;
      if (stopping) return 0;
      if (r.exitCode === undefined && !r.signal) {
        log.error(`could not run ${start.command}: ${r.shortMessage}`);
        return 127;
      }
      const code = r.exitCode ?? 1;
      const elapsedS = (Date.now() - began) / 1000;
      if (elapsedS < rs.startTimeoutS) {
        log.warn(`ray start exited (code ${code}${r.signal ? `, ${r.signal}` : ''}) ${Math.round(elapsedS)} s after start: the head may not be up yet; retrying (NIM_CLUSTER_START_TIMEOUT=${rs.startTimeoutS})`);
        await new Promise<void>((res) => {
          wake = res;
          setTimeout(res, opts.retryMs ?? 5000);
        });
        if (stopping) return 0;
        continue;
      }
      log.error(`ray exited (code ${code}${r.signal ? `, ${r.signal}` : ''}): the head is gone or unreachable`);
      return code === 0 ? 1 : code;
    }
  };
  const done = run().then(async (code) => {
    await rayStop(ray, env, rlog);
    return code;
  });
  return {
    done,
    shutdown: async (reason) => {
      stopping = true;
      log.info(`worker stopping (${reason})`);
      wake?.();
      child?.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), 30_000);
      try {
        return await done;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** `portico serve --ray-head | --ray-worker ADDRESS --dry-run`: the exact commands, as JSON. */
export async function rayDryRun(role: RayRole, settings: Settings, env: NodeJS.ProcessEnv): Promise<string> {
  const rs = settings.ray;
  if (role.role === 'worker') {
    const start = rayStartCommand(role, rs, which('ray', env) ?? 'ray');
    return `${JSON.stringify({ ray: { role: 'worker', start } }, null, 2)}\n`;
  }
  const plan = planRayHead(settings, { enginePort: 0, gpusPerNode: await localGpus(settings, env), env });
  const { command, args, env: engineEnv } = plan.engine;
  return `${JSON.stringify({ profile: plan.profile, engine: { command, args, env: engineEnv }, ray: plan.ray }, null, 2)}\n`;
}
