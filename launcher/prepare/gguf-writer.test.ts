import { gguf, GGUFValueType as HFType } from '@huggingface/gguf';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  arr,
  bool,
  f32,
  f64,
  GGMLType,
  GGUFValueType,
  i16,
  i32,
  i64,
  i8,
  str,
  toF16Bits,
  u16,
  u32,
  u64,
  u8,
  writeGGUF,
  type GGUFFile,
} from './gguf-writer.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gguf-writer-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function roundTrip(file: GGUFFile, name: string) {
  const path = join(dir, name);
  const bytes = writeGGUF(file);
  await writeFile(path, bytes);
  const parsed = await gguf(path, { allowLocalFile: true, typedMetadata: true });
  return { bytes, parsed };
}

const seq = (n: number, scale = 1) => Float32Array.from({ length: n }, (_, i) => (i - n / 2) * scale);

describe('writeGGUF', () => {
  it('writes a v3 header with uint64 counts', () => {
    const bytes = writeGGUF({ kv: [['a', u32(1)], ['b', str('x')]], tensors: [{ name: 't', dims: [3], data: seq(3) }] });
    expect(bytes.subarray(0, 4).toString('ascii')).toBe('GGUF');
    expect(bytes.readUInt32LE(4)).toBe(3);
    expect(bytes.readBigUInt64LE(8)).toBe(1n); // tensors
    expect(bytes.readBigUInt64LE(16)).toBe(2n); // kv pairs
  });

  it('round-trips every metadata value type through @huggingface/gguf', async () => {
    const { parsed } = await roundTrip(
      {
        kv: [
          ['general.architecture', str('llama')],
          ['t.u8', u8(250)],
          ['t.i8', i8(-100)],
          ['t.u16', u16(65000)],
          ['t.i16', i16(-32000)],
          ['t.u32', u32(4_000_000_000)],
          ['t.i32', i32(-2_000_000_000)],
          ['t.f32', f32(0.5)],
          ['t.f64', f64(Math.PI)],
          ['t.u64', u64(2n ** 63n)],
          ['t.i64', i64(-(2n ** 62n))],
          ['t.bool', bool(true)],
          ['t.str', str('héllo <|im_start|>\n')],
          ['t.arr_str', arr(GGUFValueType.STRING, ['a', 'Ġb', ''])],
          ['t.arr_i32', arr(GGUFValueType.INT32, [1, -2, 3])],
          ['t.arr_f32', arr(GGUFValueType.FLOAT32, [0.25, -1.5])],
          ['t.arr_empty', arr(GGUFValueType.INT32, [])],
        ],
        tensors: [],
      },
      'kv.gguf',
    );
    const m = parsed.typedMetadata;
    expect(m.version.value).toBe(3);
    expect(m.tensor_count.value).toBe(0n);
    expect(m.kv_count.value).toBe(17n);
    const expectKV = (key: string, value: unknown, type: HFType, subType?: HFType) => {
      expect(m[key], key).toEqual(subType === undefined ? { value, type } : { value, type, subType });
    };
    expectKV('general.architecture', 'llama', HFType.STRING);
    expectKV('t.u8', 250, HFType.UINT8);
    expectKV('t.i8', -100, HFType.INT8);
    expectKV('t.u16', 65000, HFType.UINT16);
    expectKV('t.i16', -32000, HFType.INT16);
    expectKV('t.u32', 4_000_000_000, HFType.UINT32);
    expectKV('t.i32', -2_000_000_000, HFType.INT32);
    expectKV('t.f32', 0.5, HFType.FLOAT32);
    expectKV('t.f64', Math.PI, HFType.FLOAT64);
    expectKV('t.u64', 2n ** 63n, HFType.UINT64);
    expectKV('t.i64', -(2n ** 62n), HFType.INT64);
    expectKV('t.bool', true, HFType.BOOL);
    expectKV('t.str', 'héllo <|im_start|>\n', HFType.STRING);
    expectKV('t.arr_str', ['a', 'Ġb', ''], HFType.ARRAY, HFType.STRING);
    expectKV('t.arr_i32', [1, -2, 3], HFType.ARRAY, HFType.INT32);
    expectKV('t.arr_f32', [0.25, -1.5], HFType.ARRAY, HFType.FLOAT32);
    expectKV('t.arr_empty', [], HFType.ARRAY, HFType.INT32);
  });

  it.each([32, 64])('writes tensor infos and %i-byte aligned data', async (alignment) => {
    const a = seq(5 * 3, 0.1); // 60 bytes: forces padding before the next tensor
    const b = seq(7, 3);
    const c = seq(2 * 2 * 3 * 2, -0.5);
    const kv: GGUFFile['kv'] = alignment === 32 ? [] : [['general.alignment', u32(alignment)]];
    const { bytes, parsed } = await roundTrip(
      {
        kv,
        tensors: [
          { name: 'a.weight', dims: [5, 3], data: a },
          { name: 'b.bias', dims: [7], data: b },
          { name: 'c.conv', dims: [2, 2, 3, 2], data: c },
        ],
      },
      `tensors-${alignment}.gguf`,
    );
    expect(parsed.tensorInfos.map((t) => [t.name, t.n_dims, t.shape, t.dtype])).toEqual([
      ['a.weight', 2, [5n, 3n], 0],
      ['b.bias', 1, [7n], 0],
      ['c.conv', 4, [2n, 2n, 3n, 2n], 0],
    ]);
    const start = Number(parsed.tensorDataOffset);
    expect(start % alignment).toBe(0);
    const padA = alignment * Math.ceil(60 / alignment); // b (28 bytes) then pads to one alignment unit
    expect(parsed.tensorInfos.map((t) => Number(t.offset))).toEqual([0, padA, padA + alignment]);
    for (const [i, want] of [a, b, c].entries()) {
      const off = start + Number(parsed.tensorInfos[i]!.offset);
      const got = Float32Array.from({ length: want.length }, (_, k) => bytes.readFloatLE(off + 4 * k));
      expect(got).toEqual(want);
    }
    expect(bytes.length % alignment).toBe(0); // the last tensor is padded too, like ggml's writer
  });

  it('writes F16 tensors', async () => {
    const data = Float32Array.from([1, -2, 0.5, 65504]);
    const { bytes, parsed } = await roundTrip({ kv: [], tensors: [{ name: 'h', dims: [4], data, type: GGMLType.F16 }] }, 'f16.gguf');
    expect(parsed.tensorInfos[0]!.dtype).toBe(1);
    const off = Number(parsed.tensorDataOffset);
    expect([0, 1, 2, 3].map((i) => bytes.readUInt16LE(off + 2 * i))).toEqual([0x3c00, 0xc000, 0x3800, 0x7bff]);
  });

  it('converts to binary16 with round-to-nearest-even', () => {
    expect(toF16Bits(0)).toBe(0);
    expect(toF16Bits(-0)).toBe(0x8000);
    expect(toF16Bits(0.1)).toBe(0x2e66);
    expect(toF16Bits(1e-8)).toBe(0); // underflow
    expect(toF16Bits(6e-8)).toBe(1); // smallest subnormal
    expect(toF16Bits(1e6)).toBe(0x7c00); // overflow to inf
    expect(toF16Bits(Number.NaN) & 0x7c00).toBe(0x7c00);
    expect(toF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(toF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
  });

  it('rejects malformed input', () => {
    const t = { name: 't', dims: [2, 2], data: seq(3) };
    expect(() => writeGGUF({ kv: [], tensors: [t] })).toThrow(/need 4 values/);
    expect(() => writeGGUF({ kv: [], tensors: [{ ...t, data: seq(4) }, { ...t, data: seq(4) }] })).toThrow(/duplicate tensor/);
    expect(() => writeGGUF({ kv: [['k', u32(1)], ['k', u32(2)]], tensors: [] })).toThrow(/duplicate metadata/);
    expect(() => writeGGUF({ kv: [['general.alignment', u32(24)]], tensors: [] })).toThrow(/power of 2/);
    expect(() => writeGGUF({ kv: [], tensors: [{ name: 'x'.repeat(64), dims: [1], data: seq(1) }] })).toThrow(/too long/);
    expect(() => writeGGUF({ kv: [['k', { type: GGUFValueType.UINT32, value: 'no' }]], tensors: [] })).toThrow(TypeError);
  });

  it('is deterministic', async () => {
    const file: GGUFFile = { kv: [['a', f32(1.5)]], tensors: [{ name: 't', dims: [9], data: seq(9) }] };
    const path = join(dir, 'det.gguf');
    await writeFile(path, writeGGUF(file));
    expect((await readFile(path)).equals(writeGGUF(file))).toBe(true);
  });
});
