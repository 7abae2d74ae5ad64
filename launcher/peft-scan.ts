// NIM_PEFT_SOURCE → the LoRA adapters an engine can serve. One adapter per folder, named after
// it (NIM's layout):
//
//   NIM_PEFT_SOURCE/<name>/adapter_config.json + adapter_model.safetensors (or .bin)  vLLM, TensorRT-LLM
//   NIM_PEFT_SOURCE/<name>/<one>.gguf (adapter_config.json optional)                    llama.cpp
//
// A folder that is not a usable adapter is skipped with one line on why, never an error: a bad
// folder must not stop serving. The limits are applied here for what the engine cannot evict
// itself: NIM_MAX_LORA_RANK everywhere (vLLM refuses a larger rank at load; llama.cpp would
// accept it), NIM_MAX_CPU_LORAS on llama.cpp (llama-server keeps every adapter it was started
// with in memory; vLLM and TensorRT-LLM keep that many cached and evict the least recently used).
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { EngineKind } from '../core/engine.js';
import { scanLlamaCppLoras } from './lora-llamacpp.js';

export interface PeftAdapter {
  /** The folder name: the model name requests use. */
  name: string;
  /** The folder (vLLM's lora_path, TensorRT-LLM's lora_dir entry). */
  path: string;
  /** llama.cpp: the adapter GGUF inside the folder. */
  file?: string | undefined;
  rank: number | undefined;
  /** Sizes and modification times of its files: a changed adapter is reloaded under the same name. */
  fingerprint: string;
}

export interface PeftScan {
  adapters: PeftAdapter[];
  skipped: { name: string; reason: string }[];
  /** Set when NIM_PEFT_SOURCE itself cannot be read (no adapters then). */
  problem?: string | undefined;
}

export interface PeftScanOptions {
  engine: EngineKind;
  /** llama.cpp: the base model GGUF, to skip adapters llama-server would refuse (and exit on). */
  baseModel?: string | undefined;
  maxRank: number;
  /** llama.cpp: NIM_MAX_CPU_LORAS. */
  maxAdapters?: number | undefined;
  /** Adapters served now: they keep their place when the limit leaves out others. */
  serving?: readonly string[] | undefined;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const HF_WEIGHTS = ['adapter_model.safetensors', 'adapter_model.bin'];

export async function scanPeftSource(source: string, o: PeftScanOptions): Promise<PeftScan> {
  try {
    if (!(await stat(source)).isDirectory()) return { adapters: [], skipped: [], problem: `NIM_PEFT_SOURCE=${source} is not a directory` };
  } catch (err) {
    return { adapters: [], skipped: [], problem: `NIM_PEFT_SOURCE=${source} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  }
  const found = o.engine === 'llamacpp' ? await scanGguf(source, o.baseModel) : await scanHf(source);
  const skipped = [...found.skipped];
  const ok: PeftAdapter[] = [];
  for (const a of found.adapters) {
    if (a.rank !== undefined && a.rank > o.maxRank) skipped.push({ name: a.name, reason: `rank ${a.rank} is above NIM_MAX_LORA_RANK=${o.maxRank}` });
    else ok.push(a);
  }
  if (o.maxAdapters === undefined || ok.length <= o.maxAdapters) return { adapters: ok, skipped: sortByName(skipped) };
  // Over the limit: adapters already served keep their place, then the rest in name order.
  const serving = new Set(o.serving ?? []);
  const ranked = [...ok].sort((a, b) => Number(serving.has(b.name)) - Number(serving.has(a.name)) || cmp(a.name, b.name));
  const kept = new Set(ranked.slice(0, o.maxAdapters).map((a) => a.name));
  for (const a of ranked.slice(o.maxAdapters)) skipped.push({ name: a.name, reason: `over NIM_MAX_CPU_LORAS=${o.maxAdapters}: llama.cpp holds at most that many adapters` });
  return { adapters: ok.filter((a) => kept.has(a.name)), skipped: sortByName(skipped) };
}

async function scanGguf(source: string, baseModel: string | undefined): Promise<{ adapters: PeftAdapter[]; skipped: PeftScan['skipped'] }> {
  // The base model is checked only when it exists (a dry run names a demo model not generated yet).
  const base = baseModel !== undefined && (await stat(baseModel).catch(() => undefined))?.isFile() ? baseModel : undefined;
  const scan = await scanLlamaCppLoras(source, base);
  const adapters: PeftAdapter[] = [];
  for (const a of scan.adapters) {
    const dir = path.dirname(a.file);
    adapters.push({ name: a.name, path: dir, file: a.file, rank: a.rank, fingerprint: await fingerprint(dir, [path.basename(a.file)]) });
  }
  return { adapters, skipped: scan.skipped };
}

async function scanHf(source: string): Promise<{ adapters: PeftAdapter[]; skipped: PeftScan['skipped'] }> {
  const adapters: PeftAdapter[] = [];
  const skipped: PeftScan['skipped'] = [];
  const dirs = (await readdir(source, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort(cmp);
  for (const name of dirs) {
    const skip = (reason: string) => skipped.push({ name, reason });
    if (!NAME.test(name)) {
      skip('folder name is not a valid model name (letters, digits, ".", "_", "-"; at most 128)');
      continue;
    }
    const dir = path.resolve(source, name);
    const files = new Set(await readdir(dir).catch(() => [] as string[]));
    const weights = HF_WEIGHTS.find((f) => files.has(f));
    if (!files.has('adapter_config.json')) {
      skip('holds no adapter_config.json');
      continue;
    }
    if (!weights) {
      skip(`holds no ${HF_WEIGHTS.join(' or ')}`);
      continue;
    }
    let config: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(await readFile(path.join(dir, 'adapter_config.json'), 'utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
      config = parsed as Record<string, unknown>;
    } catch (err) {
      skip(`adapter_config.json: ${(err as Error).message}`);
      continue;
    }
    if (config.peft_type !== undefined && String(config.peft_type).toUpperCase() !== 'LORA') {
      skip(`adapter_config.json: peft_type is ${JSON.stringify(config.peft_type)}, not "LORA"`);
      continue;
    }
    const r = config.r;
    if (r !== undefined && !(Number.isInteger(r) && (r as number) > 0)) {
      skip(`adapter_config.json: r is ${JSON.stringify(r)}, not a positive whole number`);
      continue;
    }
    adapters.push({ name, path: dir, rank: r as number | undefined, fingerprint: await fingerprint(dir, ['adapter_config.json', weights]) });
  }
  return { adapters, skipped };
}

async function fingerprint(dir: string, files: string[]): Promise<string> {
  const parts: string[] = [];
  for (const f of files) {
    const s = await stat(path.join(dir, f)).catch(() => undefined);
    parts.push(s ? `${f}:${s.size}:${Math.round(s.mtimeMs)}` : `${f}:-`);
  }
  return parts.join(',');
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const sortByName = <T extends { name: string }>(l: T[]) => l.sort((a, b) => cmp(a.name, b.name));
