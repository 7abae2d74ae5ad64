// Deterministic randomness for generated test models: mulberry32 + an Irwin-Hall approximate
// normal (only + and sqrt, so identical floats on every platform). Every generated model
// (tiny VLM, embedding model, LoRA adapters) draws from this one copy.

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SQRT3 = Math.sqrt(3);
/** Mean 0, variance 1. */
export function normal(rand: () => number): number {
  return (rand() + rand() + rand() + rand() - 2) * SQRT3;
}

export const randVec = (rand: () => number, n: number, std: number): Float32Array =>
  Float32Array.from({ length: n }, () => normal(rand) * std);
