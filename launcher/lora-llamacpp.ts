// LoRA adapters on llama.cpp's llama-server (de3ff81), as pure helpers: which folders of
// NIM_PEFT_SOURCE are adapters, the engine arguments that load them, and the per-request `lora`
// field that selects one. Facts (proven in tests/lora-engine.test.ts against the real engine):
//
// - Adapters can only be loaded at start (`--lora` / `--lora-scaled`). POST /lora-adapters takes
//   `[{id, scale}]` and only changes the scales of adapters loaded at start; a `path` or an unknown
//   id is silently ignored ({"success":true}). So NIM_PEFT_REFRESH_INTERVAL on llama.cpp means:
//   rescan, and when the set of folders changed, restart the engine with the new list (ids are
//   positions in that list, so the name → id map is rebuilt after each start).
// - `--lora-init-without-apply` does NOT make requests without `lora` use the base model: the
//   adapters keep their global scale 1.0 and every such request runs with all of them. Load them
//   with `--lora-scaled PATH:0,...` instead (global scale 0).
// - A request without `lora` (or with `lora: []`) reuses a slot's KV cache even when that cache was
//   computed under another adapter, so its answer depends on the previous request. Always send the
//   full vector: every loaded adapter with scale 0, except the selected one.
// - An unreadable or mismatched adapter file makes llama-server exit at start: folders are checked
//   here first, and a bad one is skipped with a reason instead of taking the engine down.
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { loraMismatch, loraRank, readGgufHeader, type GgufHeader } from './gguf-header.js';

export interface LoraAdapter {
  /** The folder name: the model name requests use. */
  name: string;
  /** The adapter GGUF inside the folder. */
  file: string;
  /** Its rank (the lora_a tensors' width). */
  rank?: number | undefined;
}

export interface LoraScan {
  adapters: LoraAdapter[];
  /** Folders that are not usable adapters, with one line each on why. */
  skipped: { name: string; reason: string }[];
}

/** Model names: what NIM accepts as a folder-named adapter, and safe in llama.cpp's CSV argument. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Scan NIM_PEFT_SOURCE: one adapter per folder holding exactly one `.gguf` file (NIM's layout;
 * `adapter_config.json` may sit beside it). Sorted by name, so the engine ids are stable for the
 * same set of folders. With `baseModel` (the GGUF llama-server serves), each adapter is checked
 * as llama.cpp will check it (gguf-header.ts's loraMismatch).
 */
export async function scanLlamaCppLoras(source: string, baseModel?: string): Promise<LoraScan> {
  const out: LoraScan = { adapters: [], skipped: [] };
  const base: GgufHeader | undefined = baseModel === undefined ? undefined : await readGgufHeader(baseModel);
  const entries = (await readdir(source, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  for (const name of entries) {
    const skip = (reason: string) => out.skipped.push({ name, reason });
    if (!NAME.test(name)) {
      skip('folder name is not a valid model name (letters, digits, ".", "_", "-"; at most 128)');
      continue;
    }
    const dir = path.join(source, name);
    const ggufs = (await readdir(dir)).filter((f) => f.toLowerCase().endsWith('.gguf'));
    if (ggufs.length !== 1) {
      skip(ggufs.length ? `holds ${ggufs.length} .gguf files; expected one` : 'holds no .gguf adapter (llama.cpp cannot use safetensors adapters)');
      continue;
    }
    const file = path.join(dir, ggufs[0]!);
    if (/[,:]/.test(file)) {
      skip('path contains "," or ":", which llama-server\'s --lora-scaled list cannot carry');
      continue;
    }
    if (!(await stat(file)).isFile()) {
      skip(`${ggufs[0]} is not a file`);
      continue;
    }
    let header: GgufHeader;
    try {
      header = await readGgufHeader(file);
    } catch (err) {
      skip(`${ggufs[0]}: ${(err as Error).message}`);
      continue;
    }
    const mismatch = base ? loraMismatch(header, base) : undefined;
    if (mismatch) {
      skip(`${ggufs[0]}: ${mismatch}`);
      continue;
    }
    out.adapters.push({ name, file, rank: loraRank(header) });
  }
  return out;
}

/** llama-server arguments loading every adapter at global scale 0 (base model unless a request selects one). */
export function llamaCppLoraArgs(adapters: readonly LoraAdapter[]): string[] {
  if (!adapters.length) return [];
  return ['--lora-scaled', adapters.map((a) => `${a.file}:0`).join(',')];
}

export interface LoraSelection {
  id: number;
  scale: number;
}

/**
 * The request body's `lora` field for llama-server: the whole vector, the selected adapter at
 * scale 1 and every other at 0 (`undefined` = the base model). Ids are positions in the list
 * given to llamaCppLoraArgs. Throws for a name that is not loaded (the gateway answers 404 first).
 */
export function llamaCppLoraField(adapters: readonly LoraAdapter[], selected: string | undefined): LoraSelection[] {
  if (selected !== undefined && !adapters.some((a) => a.name === selected)) throw new Error(`adapter ${selected} is not loaded`);
  return adapters.map((a, id) => ({ id, scale: a.name === selected ? 1 : 0 }));
}

/** The same llama-server command with `adapters` as its adapter list (replacing any it had). */
export function withLlamaCppLoras<T extends { args: string[] }>(cmd: T, adapters: readonly LoraAdapter[]): T {
  const args: string[] = [];
  for (let i = 0; i < cmd.args.length; i++) {
    if (cmd.args[i] === '--lora-scaled') i++;
    else args.push(cmd.args[i]!);
  }
  return { ...cmd, args: [...args, ...llamaCppLoraArgs(adapters)] };
}
