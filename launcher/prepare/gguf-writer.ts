// Minimal GGUF v3 writer (little endian), enough to produce the tiny test models.
// Layout (see ggml/src/gguf.cpp): header | KV pairs | tensor infos | pad | data.
// Tensor offsets are relative to the start of the data section, each tensor's
// data is padded to `general.alignment` (default 32), the section start too.

export const GGUF_MAGIC = "GGUF";
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** llama.cpp rejects tensor names of GGML_MAX_NAME (64) bytes or more. */
const GGML_MAX_NAME = 64;

/** GGUF metadata value types (gguf.h `enum gguf_type`). */
export enum GGUFValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** ggml tensor types we can write. */
export enum GGMLType {
  F32 = 0,
  F16 = 1,
}

type ScalarType = Exclude<GGUFValueType, GGUFValueType.ARRAY>;
type Scalar = number | bigint | boolean | string;

export type GGUFValue =
  | { type: ScalarType; value: Scalar }
  | { type: GGUFValueType.ARRAY; itemType: ScalarType; value: readonly Scalar[] };

// Constructors for metadata values, so call sites read like `u32(64)`.
export const u8 = (v: number): GGUFValue => ({ type: GGUFValueType.UINT8, value: v });
export const i8 = (v: number): GGUFValue => ({ type: GGUFValueType.INT8, value: v });
export const u16 = (v: number): GGUFValue => ({ type: GGUFValueType.UINT16, value: v });
export const i16 = (v: number): GGUFValue => ({ type: GGUFValueType.INT16, value: v });
export const u32 = (v: number): GGUFValue => ({ type: GGUFValueType.UINT32, value: v });
export const i32 = (v: number): GGUFValue => ({ type: GGUFValueType.INT32, value: v });
export const f32 = (v: number): GGUFValue => ({ type: GGUFValueType.FLOAT32, value: v });
export const f64 = (v: number): GGUFValue => ({ type: GGUFValueType.FLOAT64, value: v });
export const u64 = (v: bigint | number): GGUFValue => ({ type: GGUFValueType.UINT64, value: BigInt(v) });
export const i64 = (v: bigint | number): GGUFValue => ({ type: GGUFValueType.INT64, value: BigInt(v) });
export const bool = (v: boolean): GGUFValue => ({ type: GGUFValueType.BOOL, value: v });
export const str = (v: string): GGUFValue => ({ type: GGUFValueType.STRING, value: v });
export const arr = (itemType: ScalarType, value: readonly Scalar[]): GGUFValue => ({
  type: GGUFValueType.ARRAY,
  itemType,
  value,
});

export interface GGUFTensor {
  name: string;
  /** ggml order: ne0 (the contiguous, "input" dimension) first. */
  dims: readonly number[];
  /** F32 data; written as F16 if `type` is GGMLType.F16. Length must equal the product of dims. */
  data: Float32Array;
  type?: GGMLType;
}

export interface GGUFFile {
  /** Metadata in write order. `general.alignment` (uint32), if present, sets the alignment. */
  kv: ReadonlyArray<readonly [string, GGUFValue]>;
  tensors: readonly GGUFTensor[];
}

/** Growable little-endian byte sink. */
class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  u8(v: number): void { this.reserve(1); this.buf.writeUInt8(v, this.length); this.length += 1; }
  i8(v: number): void { this.reserve(1); this.buf.writeInt8(v, this.length); this.length += 1; }
  u16(v: number): void { this.reserve(2); this.buf.writeUInt16LE(v, this.length); this.length += 2; }
  i16(v: number): void { this.reserve(2); this.buf.writeInt16LE(v, this.length); this.length += 2; }
  u32(v: number): void { this.reserve(4); this.buf.writeUInt32LE(v, this.length); this.length += 4; }
  i32(v: number): void { this.reserve(4); this.buf.writeInt32LE(v, this.length); this.length += 4; }
  f32(v: number): void { this.reserve(4); this.buf.writeFloatLE(v, this.length); this.length += 4; }
  f64(v: number): void { this.reserve(8); this.buf.writeDoubleLE(v, this.length); this.length += 8; }
  u64(v: bigint): void { this.reserve(8); this.buf.writeBigUInt64LE(v, this.length); this.length += 8; }
  i64(v: bigint): void { this.reserve(8); this.buf.writeBigInt64LE(v, this.length); this.length += 8; }
  bytes(b: Uint8Array): void { this.reserve(b.length); this.buf.set(b, this.length); this.length += b.length; }
  /** GGUF string: uint64 byte length + UTF-8 bytes, no terminator. */
  string(s: string): void { const b = Buffer.from(s, "utf8"); this.u64(BigInt(b.length)); this.bytes(b); }
  pad(alignment: number): void { const n = (alignment - (this.length % alignment)) % alignment; this.bytes(new Uint8Array(n)); }
  toBuffer(): Buffer { return Buffer.from(this.buf.subarray(0, this.length)); }
}

function writeScalar(w: ByteWriter, type: ScalarType, v: Scalar, key: string): void {
  const num = (): number => {
    if (typeof v !== "number") throw new TypeError(`${key}: expected number, got ${typeof v}`);
    return v;
  };
  switch (type) {
    case GGUFValueType.UINT8: return w.u8(num());
    case GGUFValueType.INT8: return w.i8(num());
    case GGUFValueType.UINT16: return w.u16(num());
    case GGUFValueType.INT16: return w.i16(num());
    case GGUFValueType.UINT32: return w.u32(num());
    case GGUFValueType.INT32: return w.i32(num());
    case GGUFValueType.FLOAT32: return w.f32(num());
    case GGUFValueType.FLOAT64: return w.f64(num());
    case GGUFValueType.UINT64: return w.u64(BigInt(v as number | bigint));
    case GGUFValueType.INT64: return w.i64(BigInt(v as number | bigint));
    case GGUFValueType.BOOL:
      if (typeof v !== "boolean") throw new TypeError(`${key}: expected boolean`);
      return w.u8(v ? 1 : 0);
    case GGUFValueType.STRING:
      if (typeof v !== "string") throw new TypeError(`${key}: expected string`);
      return w.string(v);
  }
}

/** IEEE 754 binary16 from a number (round to nearest even). */
export function toF16Bits(value: number): number {
  const f = new Float32Array([value]);
  const x = new Uint32Array(f.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow -> signed zero
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++; // may carry into exponent: still correct
  return sign | half;
}

/** Serialize a complete GGUF v3 file into a Buffer. */
export function writeGGUF(file: GGUFFile): Buffer {
  const alignEntry = file.kv.find(([k]) => k === "general.alignment");
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (alignEntry) {
    const v = alignEntry[1];
    if (v.type !== GGUFValueType.UINT32 || typeof v.value !== "number") throw new TypeError("general.alignment must be uint32");
    alignment = v.value;
  }
  if (alignment <= 0 || (alignment & (alignment - 1)) !== 0) throw new RangeError(`alignment ${alignment} is not a power of 2`);

  const keys = new Set<string>();
  for (const [k] of file.kv) {
    if (keys.has(k)) throw new Error(`duplicate metadata key ${k}`);
    keys.add(k);
  }

  const w = new ByteWriter();
  w.bytes(Buffer.from(GGUF_MAGIC, "ascii"));
  w.u32(GGUF_VERSION);
  w.u64(BigInt(file.tensors.length));
  w.u64(BigInt(file.kv.length));

  for (const [key, v] of file.kv) {
    w.string(key);
    w.u32(v.type);
    if (v.type === GGUFValueType.ARRAY) {
      w.u32(v.itemType);
      w.u64(BigInt(v.value.length));
      for (const item of v.value) writeScalar(w, v.itemType, item, key);
    } else {
      writeScalar(w, v.type, v.value, key);
    }
  }

  // Tensor infos; offsets are cumulative padded sizes, as gguf.cpp requires.
  const names = new Set<string>();
  const sizes: number[] = [];
  let offset = 0;
  for (const t of file.tensors) {
    if (names.has(t.name)) throw new Error(`duplicate tensor ${t.name}`);
    names.add(t.name);
    if (Buffer.byteLength(t.name) >= GGML_MAX_NAME) throw new Error(`tensor name too long: ${t.name}`);
    if (t.dims.length < 1 || t.dims.length > 4) throw new Error(`${t.name}: 1..4 dims required`);
    const n = t.dims.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`${t.name}: dims ${t.dims.join("x")} need ${n} values, got ${t.data.length}`);
    const type = t.type ?? GGMLType.F32;
    const size = n * (type === GGMLType.F16 ? 2 : 4);
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(BigInt(d));
    w.u32(type);
    w.u64(BigInt(offset));
    sizes.push(size);
    offset += Math.ceil(size / alignment) * alignment;
  }

  w.pad(alignment);
  for (const t of file.tensors) {
    if ((t.type ?? GGMLType.F32) === GGMLType.F16) {
      for (const v of t.data) w.u16(toF16Bits(v));
    } else {
      for (const v of t.data) w.f32(v);
    }
    w.pad(alignment);
  }
  return w.toBuffer();
}
