// The context length a GGUF model was trained for (`<general.architecture>.context_length`, as
// llama.cpp's llama_model_loader reads it into n_ctx_train): what a `.gguf` NIM_MODEL_PATH serves
// when NIM_MAX_MODEL_LEN does not say otherwise. Synchronous: manifests are resolved synchronously.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parseGgufHeader } from './gguf-header.js';

const MAX_HEADER_BYTES = 64 * 1024 * 1024;

/** The file's training context length; undefined when the file or the key cannot be read. */
export function ggufContextLength(file: string): number | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const size = fstatSync(fd).size;
    // Headers are mostly small, but a tokenizer's vocabulary can take megabytes: grow the window.
    for (let want = 1 << 20; ; want *= 4) {
      const n = Math.min(want, size, MAX_HEADER_BYTES);
      const buf = Buffer.alloc(n);
      readSync(fd, buf, 0, n, 0);
      try {
        const { kv } = parseGgufHeader(buf);
        const arch = kv.get('general.architecture');
        const v = typeof arch === 'string' ? kv.get(`${arch}.context_length`) : undefined;
        const len = typeof v === 'bigint' ? Number(v) : v;
        return typeof len === 'number' && Number.isSafeInteger(len) && len > 0 ? len : undefined;
      } catch (err) {
        if ((err as Error).message !== 'truncated GGUF header' || n === size || n === MAX_HEADER_BYTES) return undefined;
      }
    }
  } finally {
    closeSync(fd);
  }
}
