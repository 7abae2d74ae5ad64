import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  describeGpus,
  filterVisible,
  loadGpuCatalog,
  mergeListing,
  parseGpuCatalog,
  parseNvidiaSmiCsv,
  parseNvidiaSmiList,
  pciDeviceId,
  probeGpus,
  productOf,
  sameProduct,
  which,
} from './gpus.js';
import { gpuCatalogFile } from './manifest.js';

const catalog = loadGpuCatalog(gpuCatalogFile());

const EIGHT_H100 = Array.from({ length: 8 }, (_, i) => `${i}, NVIDIA H100 80GB HBM3, 0x233010DE, 81559, 9.0`).join('\n');

describe('catalog', () => {
  it('loads profiles/gpus.yaml', () => {
    expect(catalog.length).toBeGreaterThan(10);
    expect(catalog.find((c) => c.product === 'H100')?.deviceIds).toContain('2330:10de');
  });
  it('names the file and field of a bad entry', () => {
    expect(() => parseGpuCatalog('gpus:\n  - product: H100\n    device_ids: [nope]\n    name_pattern: H100\n', 'x.yaml')).toThrow(
      'x.yaml: gpus[0].device_ids[0]: expected dddd:vvvv (hex)',
    );
  });
});

describe('parseNvidiaSmiCsv', () => {
  it('parses the contract query output', () => {
    const gpus = parseNvidiaSmiCsv('0, NVIDIA H100 80GB HBM3, 0x233010DE, 81559, 9.0\n1, NVIDIA L40S, 0x26B910DE, 46068, 8.9\n', catalog);
    expect(gpus).toEqual([
      { index: 0, name: 'NVIDIA H100 80GB HBM3', product: 'H100', deviceId: '2330:10de', memoryMiB: 81559, computeCapability: '9.0', cudaId: '0' },
      { index: 1, name: 'NVIDIA L40S', product: 'L40S', deviceId: '26b9:10de', memoryMiB: 46068, computeCapability: '8.9', cudaId: '1' },
    ]);
  });

  it('fills [N/A] and [Not Supported] fields from the catalog', () => {
    const [g] = parseNvidiaSmiCsv('0, NVIDIA A100-SXM4-40GB, [N/A], [Not Supported], [N/A]', catalog);
    expect(g).toMatchObject({ product: 'A100', deviceId: undefined, memoryMiB: 40960, computeCapability: '8.0' });
  });

  it('skips a header line and blank lines, tolerates CRLF', () => {
    const gpus = parseNvidiaSmiCsv('index, name, pci.device_id, memory.total [MiB], compute_cap\r\n\r\n0, NVIDIA L4, 0x27B810DE, 23034, 8.9\r\n', catalog);
    expect(gpus.map((g) => g.product)).toEqual(['L4']);
  });

  it('keeps commas inside a name', () => {
    const [g] = parseNvidiaSmiCsv('0, NVIDIA Weird, Inc. Board, 0x27B810DE, 23034, 8.9', catalog);
    expect(g).toMatchObject({ name: 'NVIDIA Weird, Inc. Board', product: 'L4', memoryMiB: 23034 });
  });

  it('reads MIG rows: a `MIG 3g.20gb` name with [N/A] memory, and a gpu:instance index', () => {
    const gpus = parseNvidiaSmiCsv('0, NVIDIA A100-SXM4-40GB MIG 3g.20gb, 0x20B010DE, [N/A], 8.0\n1:2, NVIDIA H100 80GB HBM3 MIG 1g.10gb, 0x233010DE, [N/A], 9.0', catalog);
    expect(gpus[0]).toMatchObject({ product: 'A100', mig: { profile: '3g.20gb' }, memoryMiB: 19456, cudaId: '0' });
    expect(gpus[1]).toMatchObject({ index: 1, product: 'H100', mig: { profile: '1g.10gb' }, memoryMiB: 9728, cudaId: '1:2' });
  });

  it('names unknown GPUs after nvidia-smi', () => {
    const [g] = parseNvidiaSmiCsv('0, NVIDIA RTX PRO 9000 Blackwell, 0x999910DE, 98000, 12.0', catalog);
    expect(g).toMatchObject({ product: 'RTX_PRO_9000_BLACKWELL', computeCapability: '12.0' });
  });

  it('tells H100 NVL and H100 apart by device id and by name', () => {
    expect(productOf('NVIDIA H100 NVL', '2321:10de', catalog)).toMatchObject({ product: 'H100_NVL' });
    expect(productOf('NVIDIA H100 NVL', undefined, catalog)).toMatchObject({ product: 'H100_NVL' });
    expect(productOf('NVIDIA H100 PCIe', undefined, catalog)).toMatchObject({ product: 'H100' });
    expect(productOf('NVIDIA L40', undefined, catalog)).toMatchObject({ product: 'L40' });
    expect(productOf('NVIDIA L40S', undefined, catalog)).toMatchObject({ product: 'L40S' });
    expect(sameProduct('H100_NVL', 'h100 nvl')).toBe(true);
    expect(sameProduct('L40', 'L40S')).toBe(false);
  });

  it('converts PCI ids', () => {
    expect(pciDeviceId('0x233010DE')).toBe('2330:10de');
    expect(pciDeviceId('[N/A]')).toBeUndefined();
  });
});

const LIST = `GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77)
  MIG 3g.20gb     Device  0: (UUID: MIG-c6d4f1ef-42e4-5de3-91c7-45d71585b1c5)
  MIG 2g.10gb     Device  1: (UUID: MIG-0a1b2c3d-0000-5de3-91c7-45d71585b1c5)
GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-77777777-d33d-2b2c-524d-9e3d8d2b8a77)
`;

describe('nvidia-smi -L and visible devices', () => {
  const eight = parseNvidiaSmiCsv(EIGHT_H100, catalog);

  it('parses GPU and MIG lines', () => {
    const l = parseNvidiaSmiList(LIST);
    expect(l).toHaveLength(2);
    expect(l[0]).toMatchObject({ index: 0, uuid: 'GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77' });
    expect(l[0]!.migs).toEqual([
      { profile: '3g.20gb', device: 0, uuid: 'MIG-c6d4f1ef-42e4-5de3-91c7-45d71585b1c5' },
      { profile: '2g.10gb', device: 1, uuid: 'MIG-0a1b2c3d-0000-5de3-91c7-45d71585b1c5' },
    ]);
  });

  it('CUDA_VISIBLE_DEVICES by index keeps that subset, in that order', () => {
    const r = filterVisible(eight, { cuda: '5,3' });
    expect(r.gpus.map((g) => g.cudaId)).toEqual(['5', '3']);
    expect(r.notes).toEqual([]);
  });

  it('CUDA_VISIBLE_DEVICES stops at the first entry naming no device, as CUDA does', () => {
    expect(filterVisible(eight, { cuda: '1,9,2' }).gpus.map((g) => g.index)).toEqual([1]);
    const none = filterVisible(eight, { cuda: '-1' });
    expect(none.gpus).toEqual([]);
    expect(none.notes[0]).toBe('CUDA_VISIBLE_DEVICES: "-1" names no device; CUDA ignores it and everything after it');
    expect(filterVisible(eight, { cuda: '' }).gpus).toEqual([]);
  });

  it('CUDA_VISIBLE_DEVICES by GPU UUID (prefix) via nvidia-smi -L', () => {
    const two = parseNvidiaSmiCsv('0, NVIDIA A100-SXM4-40GB, 0x20B010DE, 40960, 8.0\n1, NVIDIA A100-SXM4-40GB, 0x20B010DE, 40960, 8.0', catalog);
    const listed = parseNvidiaSmiList(LIST.replace(/  MIG.*\n/g, ''));
    const r = filterVisible(mergeListing(two, listed), { cuda: 'GPU-7777' }, listed);
    expect(r.gpus).toHaveLength(1);
    expect(r.gpus[0]).toMatchObject({ index: 1, cudaId: 'GPU-77777777-d33d-2b2c-524d-9e3d8d2b8a77' });
  });

  it('UUIDs without nvidia-smi -L: keep all GPUs and say why', () => {
    const r = filterVisible(eight, { cuda: 'GPU-1234' });
    expect(r.gpus).toHaveLength(8);
    expect(r.notes[0]).toMatch(/cannot map UUIDs/);
  });

  it('a MIG slice by UUID becomes one device with the slice memory', () => {
    const two = parseNvidiaSmiCsv('0, NVIDIA A100-SXM4-40GB, 0x20B010DE, 40960, 8.0\n1, NVIDIA A100-SXM4-40GB, 0x20B010DE, 40960, 8.0', catalog);
    const listed = parseNvidiaSmiList(LIST);
    const r = filterVisible(mergeListing(two, listed), { cuda: 'MIG-0a1b2c3d,1' }, listed);
    expect(r.gpus).toHaveLength(1);
    expect(r.gpus[0]).toMatchObject({ product: 'A100', memoryMiB: 9728, mig: { profile: '2g.10gb' }, cudaId: 'MIG-0a1b2c3d-0000-5de3-91c7-45d71585b1c5' });
    expect(r.gpus[0]!.name).toBe('NVIDIA A100-SXM4-40GB MIG 2g.10gb');
  });

  it('a GPU in MIG mode (seen in -L) is its first slice', () => {
    const one = parseNvidiaSmiCsv('0, NVIDIA A100-SXM4-40GB, 0x20B010DE, 40960, 8.0', catalog);
    const merged = mergeListing(one, parseNvidiaSmiList(LIST));
    expect(merged[0]).toMatchObject({ memoryMiB: 19456, mig: { profile: '3g.20gb' }, cudaId: 'MIG-c6d4f1ef-42e4-5de3-91c7-45d71585b1c5' });
    expect(describeGpus(merged)).toBe('1× A100 MIG 3g.20gb');
  });

  it('NVIDIA_VISIBLE_DEVICES: none/void hide, all keeps, a list applies only outside a container', () => {
    expect(filterVisible(eight, { nvidia: 'none' }).gpus).toEqual([]);
    expect(filterVisible(eight, { nvidia: 'void' }).gpus).toEqual([]);
    expect(filterVisible(eight, { nvidia: 'all' }).gpus).toHaveLength(8);
    expect(filterVisible(eight, { nvidia: '2,3' }).gpus.map((g) => g.index)).toEqual([2, 3]);
    // Inside a container given GPUs 4,6 nvidia-smi shows 2 GPUs numbered 0 and 1: nothing to do.
    const two = eight.slice(0, 2);
    expect(filterVisible(two, { nvidia: '4,6' }).gpus).toHaveLength(2);
    // CUDA_VISIBLE_DEVICES applies on top.
    expect(filterVisible(eight, { nvidia: '2,3,4', cuda: '3' }).gpus.map((g) => g.index)).toEqual([3]);
  });

  it('describes inventories', () => {
    expect(describeGpus([])).toBe('no GPU');
    expect(describeGpus(eight)).toBe('8× H100 (79.6 GiB)');
  });
});

describe('probeGpus (fake nvidia-smi on PATH)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portico-gpus-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const fake = (name: string, script: string) => {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'nvidia-smi'), `#!/bin/sh\n${script}\n`);
    chmodSync(join(d, 'nvidia-smi'), 0o755);
    return d;
  };

  it('no nvidia-smi on PATH means no GPU', async () => {
    const inv = await probeGpus({ PATH: dir }, catalog);
    expect(inv).toEqual({ gpus: [], all: [], source: 'nvidia-smi not found on PATH', notes: [] });
  });

  it('runs the contract query and honours CUDA_VISIBLE_DEVICES', async () => {
    const d = fake(
      'ok',
      `case "$1" in
  --query-gpu=index,name,pci.device_id,memory.total,compute_cap) [ "$2" = "--format=csv,noheader,nounits" ] || exit 3
    printf '0, NVIDIA L4, 0x27B810DE, 23034, 8.9\\n1, NVIDIA L4, 0x27B810DE, 23034, 8.9\\n' ;;
  -L) printf 'GPU 0: NVIDIA L4 (UUID: GPU-aaaa)\\nGPU 1: NVIDIA L4 (UUID: GPU-bbbb)\\n' ;;
  *) exit 9 ;;
esac`,
    );
    const inv = await probeGpus({ PATH: d, CUDA_VISIBLE_DEVICES: 'GPU-bbbb' }, catalog);
    expect(inv.all).toHaveLength(2);
    expect(inv.gpus).toHaveLength(1);
    expect(inv.gpus[0]).toMatchObject({ index: 1, uuid: 'GPU-bbbb', cudaId: 'GPU-bbbb' });
    expect(inv.source).toBe('nvidia-smi: 2× L4 (22.5 GiB)');
  });

  it('a failing nvidia-smi (no driver) means no GPU, with its message', async () => {
    const d = fake('broken', `echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." >&2; exit 9`);
    const inv = await probeGpus({ PATH: d }, catalog);
    expect(inv.gpus).toEqual([]);
    expect(inv.source).toBe("nvidia-smi failed: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.");
  });

  it('which() finds executables on the given PATH only', () => {
    const d = fake('which', 'exit 0');
    expect(which('nvidia-smi', { PATH: `/nonexistent:${d}` })).toBe(join(d, 'nvidia-smi'));
    expect(which('nvidia-smi', { PATH: '/nonexistent' })).toBeUndefined();
  });
});
