// The start-path decision: settings (+ inventory, manifest) → which engine to run and how.
// Issue A: llama.cpp only (demo model or a GGUF given by NIM_MODEL_PATH).
import { basename, join } from 'node:path';
import type { Settings } from './config.js';
import { llamaCppCommand } from './engines/llamacpp.js';
import type { EngineCommand, ServedModel } from './engines/types.js';
import { ensureLlamaServer, llamaServerPath } from '../scripts/build-engine.js';
import { ensureTinyModel } from '../scripts/tiny-model.js';

export interface LaunchPlan {
  profile: Record<string, unknown>;
  engine: EngineCommand;
  model: ServedModel;
}

export interface PlanContext {
  /** Port the engine should listen on (127.0.0.1). */
  enginePort: number;
  /** Dry run: describe, do not build or generate anything. */
  dryRun: boolean;
  log: (line: string) => void;
  /** Environment for probes (PATH for engine binaries, nvidia-smi). */
  env?: NodeJS.ProcessEnv;
}

export const DEMO_MODEL_NAME = 'portico/tiny-vlm';

export async function planLaunch(settings: Settings, ctx: PlanContext): Promise<LaunchPlan> {
  const binary = ctx.dryRun ? llamaServerPath(settings.cachePath) : await ensureLlamaServer(settings.cachePath, ctx.log);
  let model: string;
  let mmproj: string | undefined;
  let servedName: string;
  if (settings.modelPath) {
    model = settings.modelPath;
    servedName = settings.servedModelName ?? basename(model).replace(/\.gguf$/i, '');
  } else {
    const dir = join(settings.cachePath, 'models');
    const demo = ctx.dryRun
      ? { model: join(dir, 'portico-tiny-vlm.gguf'), mmproj: join(dir, 'portico-tiny-vlm-mmproj.gguf') }
      : await ensureTinyModel(dir);
    model = demo.model;
    mmproj = demo.mmproj;
    servedName = settings.servedModelName ?? DEMO_MODEL_NAME;
  }
  const maxModelLen = settings.maxModelLen ?? 2048;
  const engine = llamaCppCommand({
    binary,
    model,
    mmproj,
    servedName,
    port: ctx.enginePort,
    contextLength: maxModelLen,
    threads: settings.engineThreads,
  });
  return {
    profile: { name: 'llamacpp-generic-gguf-tp1-pp1-latency', tags: { llm_engine: 'llamacpp', precision: 'gguf', tp: 1, pp: 1 } },
    engine,
    model: { id: servedName, root: model, maxModelLen },
  };
}
