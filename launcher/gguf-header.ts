// Reads a GGUF file's header (metadata and tensor infos, not the data) at run time: enough to
// check a LoRA adapter against its base model before llama-server is given it, since a bad one
// makes the engine exit at start. The format is the one launcher/prepare/gguf-writer.ts writes
// (ggml/src/gguf.cpp); @huggingface/gguf is a dev dependency only, and this needs ~60 lines.
import { open } from 'node:fs/promises';

export interface GgufHeader {
  /** Scalar metadata (arrays are skipped: the checks need none). */
  kv: Map<string, string | number | bigint | boolean>;
  /** name → dims, ggml order (ne0 first). */
  tensors: Map<string, number[]>;
}

const SCALAR_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const STRING = 8;
const ARRAY = 9;
/** Headers are small; a limit keeps a hostile file from making us read gigabytes. */
const MAX_HEADER_BYTES = 64 * 1024 * 1024;

class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}
  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new Error('truncated GGUF header');
  }
  u32(): number { this.need(4); const v = this.buf.readUInt32LE(this.pos); this.pos += 4; return v; }
  u64(): bigint { this.need(8); const v = this.buf.readBigUInt64LE(this.pos); this.pos += 8; return v; }
  count(): number {
    const v = this.u64();
    if (v > BigInt(MAX_HEADER_BYTES)) throw new Error('implausible count in GGUF header');
    return Number(v);
  }
  string(): string { const n = this.count(); this.need(n); const s = this.buf.toString('utf8', this.pos, this.pos + n); this.pos += n; return s; }
  scalar(type: number): string | number | bigint | boolean {
    if (type === STRING) return this.string();
    const size = SCALAR_SIZE[type];
    if (size === undefined) throw new Error(`unknown GGUF value type ${type}`);
    this.need(size);
    const b = this.buf;
    const p = this.pos;
    this.pos += size;
    switch (type) {
      case 0: return b.readUInt8(p);
      case 1: return b.readInt8(p);
      case 2: return b.readUInt16LE(p);
      case 3: return b.readInt16LE(p);
      case 4: return b.readUInt32LE(p);
      case 5: return b.readInt32LE(p);
      case 6: return b.readFloatLE(p);
      case 7: return b.readUInt8(p) !== 0;
      case 10: return b.readBigUInt64LE(p);
      case 11: return b.readBigInt64LE(p);
      default: return b.readDoubleLE(p);
    }
  }
}

/** Parse the header from the first bytes of a file; throws with a short reason. */
export function parseGgufHeader(buf: Buffer): GgufHeader {
  const r = new Reader(buf);
  r.need(4);
  if (buf.toString('latin1', 0, 4) !== 'GGUF') throw new Error('not a GGUF file');
  r.pos = 4;
  const version = r.u32();
  if (version !== 2 && version !== 3) throw new Error(`GGUF version ${version} is not supported`);
  const nTensors = r.count();
  const nKv = r.count();
  const kv = new Map<string, string | number | bigint | boolean>();
  for (let i = 0; i < nKv; i++) {
    const key = r.string();
    const type = r.u32();
    if (type === ARRAY) {
      const itemType = r.u32();
      const n = r.count();
      for (let j = 0; j < n; j++) r.scalar(itemType);
    } else {
      kv.set(key, r.scalar(type));
    }
  }
  const tensors = new Map<string, number[]>();
  for (let i = 0; i < nTensors; i++) {
    const name = r.string();
    const nDims = r.u32();
    if (nDims < 1 || nDims > 4) throw new Error(`tensor ${name}: ${nDims} dims`);
    const dims = Array.from({ length: nDims }, () => r.count());
    r.u32(); // type
    r.u64(); // offset
    tensors.set(name, dims);
  }
  return { kv, tensors };
}

/** Read a file's GGUF header, growing the read window until the header fits. */
export async function readGgufHeader(file: string): Promise<GgufHeader> {
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    for (let want = 1 << 20; ; want *= 4) {
      const n = Math.min(want, size, MAX_HEADER_BYTES);
      const buf = Buffer.alloc(n);
      await fh.read(buf, 0, n, 0);
      try {
        return parseGgufHeader(buf);
      } catch (err) {
        if ((err as Error).message !== 'truncated GGUF header' || n === size || n === MAX_HEADER_BYTES) throw err;
      }
    }
  } finally {
    await fh.close();
  }
}

/**
 * The checks llama.cpp's llama_adapter_lora_init (src/llama-adapter.cpp, de3ff81) makes when it
 * loads an adapter, so that a bad one is skipped instead of stopping the engine. Returns the first
 * problem, or undefined when the adapter fits the base model.
 */
export function loraMismatch(adapter: GgufHeader, base: GgufHeader): string | undefined {
  if (adapter.kv.get('general.type') !== 'adapter') return `general.type is ${JSON.stringify(adapter.kv.get('general.type') ?? '')}, not "adapter"`;
  if (adapter.kv.get('adapter.type') !== 'lora') return `adapter.type is ${JSON.stringify(adapter.kv.get('adapter.type') ?? '')}, not "lora"`;
  const arch = adapter.kv.get('general.architecture');
  if (arch !== base.kv.get('general.architecture')) return `architecture ${String(arch)} does not match the base model's ${String(base.kv.get('general.architecture'))}`;
  const pairs = new Map<string, { a?: number[]; b?: number[] }>();
  for (const [name, dims] of adapter.tensors) {
    const m = /^(.*)\.lora_(a|b)$/.exec(name);
    if (!m) {
      if (name.endsWith('_norm.weight')) continue; // llama.cpp ignores these
      return `tensor ${name} is neither .lora_a nor .lora_b`;
    }
    const p = pairs.get(m[1]!) ?? {};
    p[m[2] as 'a' | 'b'] = dims;
    pairs.set(m[1]!, p);
  }
  if (!pairs.size) return 'holds no LoRA tensors';
  for (const [name, { a, b }] of pairs) {
    if (!a || !b) return `${name} lacks its lora_${a ? 'b' : 'a'} tensor`;
    const w = base.tensors.get(name);
    if (!w) return `${name} is not a tensor of the base model`;
    const ok = name.endsWith('token_embd.weight') ? w[0] === b[1] && w[1] === a[1] : w[0] === a[0] && w[1] === b[1] && a[1] === b[0];
    if (!ok) return `${name}: shapes a ${a.join('x')}, b ${b.join('x')} do not fit the base tensor ${w.join('x')}`;
  }
  return undefined;
}

/** A LoRA adapter's rank: the widest lora_a (ggml dims [n_in, rank]); undefined without any. */
export function loraRank(adapter: GgufHeader): number | undefined {
  let rank: number | undefined;
  for (const [name, dims] of adapter.tensors) if (name.endsWith('.lora_a') && dims[1] !== undefined) rank = Math.max(rank ?? 0, dims[1]);
  return rank;
}
