// NIM_MODELS_RESTART's backoff: how long to wait before restarting an engine that died, by how
// many times in a row it has died (1, 2, 4, 8, 16, then 30 s), so a model that cannot start
// does not spin the CPU while the other models serve.
const FIRST_MS = 1_000;
const MAX_MS = 30_000;

export function restartDelayMs(failures: number): number {
  return Math.min(MAX_MS, FIRST_MS * 2 ** Math.max(0, failures - 1));
}
