// Which LoRA adapters the engine starts with: NIM_PEFT_SOURCE scanned for the chosen engine.
// llama.cpp serves adapters with any profile (llama-server always can); vLLM and TensorRT-LLM
// only with a feat_lora profile (the one whose engine flags enable LoRA).
import type { Settings } from '../core/config.js';
import type { EngineKind } from '../core/engine.js';
import { scanPeftSource, type PeftAdapter, type PeftScan, type PeftScanOptions } from './peft-scan.js';

export interface LoraPlan extends PeftScan {
  source: string;
  engine: EngineKind;
  /** How to rescan (the refresh loop's scan). */
  scanOptions: PeftScanOptions;
}

export async function planLoras(settings: Settings, engine: EngineKind, featLora: boolean, baseModel: string, log: (line: string) => void): Promise<LoraPlan | undefined> {
  const source = settings.peftSource;
  if (!source) return undefined;
  if (engine !== 'llamacpp' && !featLora) {
    log(`[lora] NIM_PEFT_SOURCE is set but the chosen profile has no feat_lora: adapters are not served`);
    return undefined;
  }
  const scanOptions: PeftScanOptions = {
    engine,
    maxRank: settings.peft.maxLoraRank,
    ...(engine === 'llamacpp' ? { baseModel, maxAdapters: settings.peft.maxCpuLoras } : {}),
  };
  const scan = await scanPeftSource(source, scanOptions);
  if (scan.problem) log(`[lora] ${scan.problem}: serving no adapters`);
  for (const s of scan.skipped) log(`[lora] skipping adapter folder "${s.name}": ${s.reason}`);
  log(`[lora] ${scan.adapters.length} adapter(s) from ${source}: ${scan.adapters.map((a) => a.name).join(', ') || '-'}` +
    (settings.peft.refreshIntervalS ? `; rescanned every ${settings.peft.refreshIntervalS} s` : ''));
  return { ...scan, source, engine, scanOptions };
}

export type { PeftAdapter };
