// GPU inventory: what `nvidia-smi` reports, narrowed to what CUDA will let the engine use.
// Parsing and filtering are pure; `probeGpus` is the one I/O edge (it runs nvidia-smi found on the
// PATH of the env it is given, so tests put a fake one first).
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { z } from 'zod';
import { StartupError } from '../core/startup-errors.js';

export interface GpuInfo {
  /** nvidia-smi index (PCI bus order). For a MIG slice: its parent GPU's index. */
  index: number;
  /** Name as nvidia-smi prints it, e.g. "NVIDIA H100 80GB HBM3". */
  name: string;
  /** Catalog product, the value of a profile's `gpu` tag: H100, A100, L40S, ... */
  product: string;
  /** PCI `device:vendor` id as NIM's `gpu_device` tag writes it, e.g. 2330:10de. */
  deviceId: string | undefined;
  /** Total memory in MiB (for a MIG slice: the slice's). 0 when unknown. */
  memoryMiB: number;
  /** "9.0"; undefined when neither nvidia-smi nor the catalog knows. */
  computeCapability: string | undefined;
  uuid?: string | undefined;
  /** Set when this device is a MIG slice: its profile (e.g. 3g.20gb) and UUID. */
  mig?: { profile: string; uuid?: string | undefined } | undefined;
  /** How CUDA_VISIBLE_DEVICES names this device for the engine (index, GPU- or MIG- UUID). */
  cudaId: string;
}

export interface GpuCatalogEntry {
  product: string;
  deviceIds: string[];
  namePattern: RegExp;
  computeCapability: string | undefined;
  memoryMiB: number | undefined;
}
export type GpuCatalog = GpuCatalogEntry[];

const catalogSchema = z.strictObject({
  gpus: z.array(
    z.strictObject({
      product: z.string().regex(/^[A-Za-z0-9_]+$/, 'letters, digits and _ only'),
      device_ids: z.array(z.string().regex(/^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$/, 'expected dddd:vvvv (hex)')).default([]),
      name_pattern: z.string().min(1),
      compute_capability: z.string().regex(/^\d+\.\d$/).optional(),
      memory_mib: z.number().int().positive().optional(),
    }),
  ),
});

/** Parse profiles/gpus.yaml text. Throws with `file: path: message` on a bad entry. */
export function parseGpuCatalog(text: string, file = 'profiles/gpus.yaml'): GpuCatalog {
  const doc = YAML.parse(text) as unknown;
  const r = catalogSchema.safeParse(doc);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new StartupError('invalid_manifest', `${file}: ${formatPath(issue.path)}: ${issue.message}`);
  }
  return r.data.gpus.map((g) => ({
    product: g.product,
    deviceIds: g.device_ids.map((d) => d.toLowerCase()),
    namePattern: new RegExp(g.name_pattern, 'i'),
    computeCapability: g.compute_capability,
    memoryMiB: g.memory_mib,
  }));
}

export function loadGpuCatalog(file: string): GpuCatalog {
  return parseGpuCatalog(readFileSync(file, 'utf8'), file);
}

function formatPath(path: PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('') || '(top level)';
}

/** `0x233010DE` → `2330:10de`; anything else (e.g. `[N/A]`) → undefined. */
export function pciDeviceId(raw: string): string | undefined {
  const m = /^(?:0x)?([0-9a-f]{4})([0-9a-f]{4})$/i.exec(raw.trim());
  return m ? `${m[1]!.toLowerCase()}:${m[2]!.toLowerCase()}` : undefined;
}

const NOT_AVAILABLE = /^\[?(N\/A|Not Supported|Unknown Error|Insufficient Permissions|GPU is lost)\]?$/i;

/** Memory of a MIG slice from its profile name: `3g.20gb` → ~19456 MiB (the slice is slightly under its label). */
export function migMemoryMiB(profile: string): number | undefined {
  const m = /(\d+)g\.(\d+)gb/i.exec(profile);
  return m ? Math.floor(Number(m[2]) * 1024 * 0.95) : undefined;
}

/** Product name for an nvidia-smi row: catalog by device id, then by name, else the name itself. */
export function productOf(name: string, deviceId: string | undefined, catalog: GpuCatalog): GpuCatalogEntry | string {
  const byId = deviceId ? catalog.find((c) => c.deviceIds.includes(deviceId)) : undefined;
  if (byId) return byId;
  const byName = catalog.find((c) => c.namePattern.test(name));
  if (byName) return byName;
  return name
    .replace(/\bMIG\s+\S+/i, '')
    .replace(/^(NVIDIA|Tesla|GeForce|Quadro)\s+/gi, '')
    .trim()
    .replace(/[\s-]+/g, '_')
    .toUpperCase();
}

/** Same product name, spelled loosely: `H100_NVL`, `h100-nvl` and `H100 NVL` are equal. */
export function sameProduct(a: string, b: string): boolean {
  const n = (s: string) => s.toLowerCase().replace(/[\s_-]+/g, '');
  return n(a) === n(b);
}

/**
 * Parse `nvidia-smi --query-gpu=index,name,pci.device_id,memory.total,compute_cap
 * --format=csv,noheader,nounits`. Tolerates a header line, `[N/A]` / `[Not Supported]` fields
 * (filled from the catalog), commas inside the name, and MIG rows (`0:1` indices or a name with
 * `MIG 3g.20gb`).
 */
export function parseNvidiaSmiCsv(text: string, catalog: GpuCatalog): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line) continue;
    const f = line.split(',').map((s) => s.trim());
    if (f.length < 5) continue;
    const idx = /^(\d+)(?::(\d+))?$/.exec(f[0]!);
    if (!idx) continue; // header or noise
    const name = f.slice(1, f.length - 3).join(', ');
    const [devRaw, memRaw, ccRaw] = f.slice(-3) as [string, string, string];
    const deviceId = NOT_AVAILABLE.test(devRaw) ? undefined : pciDeviceId(devRaw);
    const entry = productOf(name, deviceId, catalog);
    const cat = typeof entry === 'string' ? undefined : entry;
    const migProfile = /\bMIG\s+(\d+g\.\d+gb)/i.exec(name)?.[1] ?? (idx[2] !== undefined ? 'unknown' : undefined);
    const memParsed = /^\d+(\.\d+)?$/.test(memRaw) ? Math.floor(Number(memRaw)) : undefined;
    const memoryMiB = memParsed ?? (migProfile ? migMemoryMiB(migProfile) : undefined) ?? cat?.memoryMiB ?? 0;
    const computeCapability = /^\d+\.\d+$/.test(ccRaw) ? ccRaw : cat?.computeCapability;
    const index = Number(idx[1]);
    gpus.push({
      index,
      name,
      product: cat ? cat.product : (entry as string),
      deviceId,
      memoryMiB,
      computeCapability,
      ...(migProfile ? { mig: { profile: migProfile } } : {}),
      cudaId: idx[2] !== undefined ? `${idx[1]}:${idx[2]}` : String(index),
    });
  }
  return gpus;
}

export interface ListedMig {
  profile: string;
  device: number;
  uuid: string;
}
export interface ListedGpu {
  index: number;
  name: string;
  uuid: string;
  migs: ListedMig[];
}

/**
 * Parse `nvidia-smi -L`:
 *   GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5d5ba0d6-...)
 *     MIG 3g.20gb     Device  0: (UUID: MIG-c6d4f1ef-...)
 */
export function parseNvidiaSmiList(text: string): ListedGpu[] {
  const out: ListedGpu[] = [];
  for (const line of text.split(/\r?\n/)) {
    const g = /^\s*GPU\s+(\d+):\s*(.*?)\s*\(UUID:\s*(GPU-[^)\s]+)\)/i.exec(line);
    if (g) {
      out.push({ index: Number(g[1]), name: g[2]!, uuid: g[3]!, migs: [] });
      continue;
    }
    const m = /^\s*MIG\s+(\S+)\s+Device\s+(\d+):\s*\(UUID:\s*(MIG-[^)\s]+)\)/i.exec(line);
    const parent = out[out.length - 1];
    if (m && parent) parent.migs.push({ profile: m[1]!, device: Number(m[2]), uuid: m[3]! });
  }
  return out;
}

export interface VisibleDevices {
  /** CUDA_VISIBLE_DEVICES exactly as set (empty string hides every GPU, as in CUDA). */
  cuda?: string | undefined;
  /** NVIDIA_VISIBLE_DEVICES (container runtime). */
  nvidia?: string | undefined;
}

export interface VisibleResult {
  gpus: GpuInfo[];
  notes: string[];
}

/** Attach UUIDs from `nvidia-smi -L`, and turn MIG-enabled GPUs into their first MIG slice. */
export function mergeListing(gpus: GpuInfo[], listed: ListedGpu[]): GpuInfo[] {
  return gpus.map((g) => {
    const l = listed.find((x) => x.index === g.index);
    if (!l) return g;
    const withUuid: GpuInfo = { ...g, uuid: l.uuid };
    const first = l.migs[0];
    return first && !g.mig ? asMig(withUuid, first) : withUuid;
  });
}

function asMig(parent: GpuInfo, m: ListedMig): GpuInfo {
  return {
    ...parent,
    name: `${parent.name.replace(/\s+MIG\s+\S+$/i, '')} MIG ${m.profile}`,
    memoryMiB: migMemoryMiB(m.profile) ?? parent.memoryMiB,
    mig: { profile: m.profile, uuid: m.uuid },
    cudaId: m.uuid,
  };
}

type Resolved = GpuInfo | 'invalid' | 'unresolved';

function resolveToken(token: string, gpus: GpuInfo[], listed: ListedGpu[]): Resolved {
  if (/^\d+$/.test(token)) return gpus.find((g) => g.index === Number(token)) ?? 'invalid';
  if (/^GPU-/i.test(token)) {
    if (!listed.length) return 'unresolved';
    const l = listed.find((x) => x.uuid.toLowerCase().startsWith(token.toLowerCase()));
    const g = l && gpus.find((x) => x.index === l.index);
    if (!g) return 'invalid';
    // A whole GPU named by UUID: if it is in MIG mode, mergeListing already made it a slice.
    return { ...g, cudaId: g.mig?.uuid ?? l.uuid };
  }
  if (/^MIG-/i.test(token)) {
    if (!listed.length) return 'unresolved';
    for (const l of listed) {
      const m = l.migs.find((x) => x.uuid.toLowerCase().startsWith(token.toLowerCase()));
      const parent = gpus.find((x) => x.index === l.index);
      if (m && parent) return asMig(parent, m);
    }
    return 'invalid';
  }
  return 'invalid';
}

/**
 * Narrow the inventory to what the engine will see, following CUDA's rules: CUDA_VISIBLE_DEVICES
 * is a comma list of indices or (prefixes of) GPU-/MIG- UUIDs; enumeration stops at the first
 * entry that names no device (so `-1` or an empty value hides every GPU); only one MIG slice is
 * usable by a process. NVIDIA_VISIBLE_DEVICES is the container runtime's: `none`/`void` hide the
 * GPUs, `all` keeps them; a list is applied only when nvidia-smi still shows more GPUs than it
 * names (inside a container the runtime has already narrowed nvidia-smi's view).
 */
export function filterVisible(gpus: GpuInfo[], visible: VisibleDevices, listed: ListedGpu[] = []): VisibleResult {
  const notes: string[] = [];
  let current = gpus;
  const nv = visible.nvidia?.trim();
  if (nv !== undefined) {
    if (/^(none|void)$/i.test(nv) || nv === '') {
      notes.push(`NVIDIA_VISIBLE_DEVICES=${nv || '""'} hides every GPU`);
      current = [];
    } else if (!/^all$/i.test(nv)) {
      const tokens = nv.split(',').map((s) => s.trim()).filter(Boolean);
      const allIndices = tokens.every((t) => /^\d+$/.test(t));
      if (!allIndices || current.length > tokens.length) {
        const r = applyTokens(current, tokens, listed, 'NVIDIA_VISIBLE_DEVICES', false);
        notes.push(...r.notes);
        current = r.gpus;
      }
    }
  }
  if (visible.cuda !== undefined) {
    const tokens = visible.cuda.split(',').map((s) => s.trim());
    const r = applyTokens(current, tokens.length === 1 && tokens[0] === '' ? [] : tokens, listed, 'CUDA_VISIBLE_DEVICES', true);
    notes.push(...r.notes);
    current = r.gpus;
  }
  return { gpus: current, notes };
}

function applyTokens(gpus: GpuInfo[], tokens: string[], listed: ListedGpu[], varName: string, cudaRules: boolean): VisibleResult {
  const notes: string[] = [];
  if (!tokens.length) return { gpus: [], notes: [`${varName} is empty: no GPU is visible`] };
  const out: GpuInfo[] = [];
  for (const token of tokens) {
    const r = resolveToken(token, gpus, listed);
    if (r === 'unresolved') {
      notes.push(`${varName}=${tokens.join(',')}: cannot map UUIDs to GPUs (nvidia-smi -L gave none); assuming all GPUs are visible`);
      return { gpus, notes };
    }
    if (r === 'invalid') {
      if (cudaRules) {
        notes.push(`${varName}: "${token}" names no device; CUDA ignores it and everything after it`);
        break;
      }
      notes.push(`${varName}: "${token}" names no device`);
      continue;
    }
    if (!out.some((g) => g.cudaId === r.cudaId && g.index === r.index)) out.push(r);
  }
  const firstMig = out.find((g) => g.mig);
  if (firstMig && out.length > 1) {
    notes.push(`${varName} lists a MIG slice: a CUDA process can use only one device then (${firstMig.cudaId})`);
    return { gpus: [firstMig], notes };
  }
  return { gpus: out, notes };
}

/** "2× H100 (79.6 GiB), 1× L40S (45.0 GiB)" (MIG slices show their profile). */
export function describeGpus(gpus: GpuInfo[]): string {
  if (!gpus.length) return 'no GPU';
  const counts = new Map<string, number>();
  for (const g of gpus) {
    const key = g.mig ? `${g.product} MIG ${g.mig.profile}` : g.memoryMiB ? `${g.product} (${(g.memoryMiB / 1024).toFixed(1)} GiB)` : g.product;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${n}× ${k}`).join(', ');
}

/** First executable named `cmd` on env.PATH (or `cmd` itself when it is a path). */
export function which(cmd: string, env: NodeJS.ProcessEnv): string | undefined {
  const candidates = isAbsolute(cmd) || cmd.includes('/') ? [cmd] : (env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, cmd));
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) continue;
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export const NVIDIA_SMI_QUERY = [
  '--query-gpu=index,name,pci.device_id,memory.total,compute_cap',
  '--format=csv,noheader,nounits',
];

export interface GpuInventory {
  /** What the engine will see, after CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES. */
  gpus: GpuInfo[];
  /** Everything nvidia-smi reported. */
  all: GpuInfo[];
  /** One line on where the inventory came from, e.g. "nvidia-smi not found on PATH". */
  source: string;
  notes: string[];
}

/**
 * Run nvidia-smi (from env.PATH) and build the inventory. No nvidia-smi, or one that fails
 * (driver not loaded), means no GPU; the reason is kept in `source` for messages.
 */
/**
 * `visible` is settings.visibleDevices (parsed once with every setting); unit tests that pass a
 * bare env get it read from that env.
 */
export async function probeGpus(
  env: NodeJS.ProcessEnv,
  catalog: GpuCatalog,
  visible: { cuda: string | undefined; nvidia: string | undefined } = { cuda: env.CUDA_VISIBLE_DEVICES, nvidia: env.NVIDIA_VISIBLE_DEVICES },
  timeoutMs = 20_000,
): Promise<GpuInventory> {
  const smi = which('nvidia-smi', env);
  if (!smi) return { gpus: [], all: [], source: 'nvidia-smi not found on PATH', notes: [] };
  const run = (args: string[]) => execa(smi, args, { env, extendEnv: false, timeout: timeoutMs, reject: false, stdin: 'ignore' });
  const q = await run(NVIDIA_SMI_QUERY);
  if (q.failed) {
    const why = (q.stderr || q.stdout || q.shortMessage || '').toString().trim().split('\n')[0];
    return { gpus: [], all: [], source: `nvidia-smi failed: ${why}`, notes: [] };
  }
  let all = parseNvidiaSmiCsv(String(q.stdout), catalog);
  if (all.length) {
    const l = await run(['-L']);
    const listed = l.failed ? [] : parseNvidiaSmiList(String(l.stdout));
    all = mergeListing(all, listed);
    const v = filterVisible(all, visible, listed);
    return { gpus: v.gpus, all, source: `nvidia-smi: ${describeGpus(all)}`, notes: v.notes };
  }
  return { gpus: [], all, source: 'nvidia-smi lists no GPU', notes: [] };
}
