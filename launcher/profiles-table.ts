// `list-model-profiles` output: NIM's sections ("Compatible with system and runnable",
// "Incompatible with system"), plus portico's "Compatible with system but low memory" with the
// max_model_len that would fit, the chosen profile marked, and one reason per profile.
import type { ListedProfile, ProfileListing } from './select.js';
import type { ModelLaunch, ModelsPlan } from './plan-models.js';
import { redactUrl } from './redact-url.js';

const gib = (mib: number) => `${(mib / 1024).toFixed(1)} GiB`;

function line(p: ListedProfile, detail: string): string {
  return `  - ${p.id} (${p.name})${p.selected ? ' [selected]' : ''}${detail ? `: ${detail}` : ''}`;
}

export function renderProfilesTable(l: ProfileListing): string {
  const out: string[] = [];
  out.push('MODEL');
  out.push(`- ${l.manifest.model}${l.manifest.servedName !== l.manifest.model ? ` (served as ${l.manifest.servedName})` : ''}`);
  out.push(`- manifest: ${l.manifest.file}${l.manifest.format === 'nim-v2' ? ' (NIM model_manifest v2)' : ''}`);
  out.push('SYSTEM INFO');
  if (l.system.gpus.length) {
    out.push('- GPUs:');
    for (const g of l.system.gpus) {
      const cc = g.computeCapability ? `, compute capability ${g.computeCapability}` : '';
      const mig = g.mig ? ` (${g.cudaId})` : '';
      out.push(`  - [${g.deviceId ?? 'unknown'}] (${g.index}) ${g.name}${mig}: ${gib(g.memoryMiB)}${cc}`);
    }
  } else {
    out.push(`- No GPU${l.system.gpuSource ? `: ${l.system.gpuSource}` : ''}`);
  }
  for (const n of l.system.notes) out.push(`- ${n}`);
  out.push('- Engines:');
  for (const [name, e] of Object.entries(l.system.engines)) out.push(`  - ${name}: ${e.available ? 'available' : 'not available'} (${e.detail})`);
  out.push(`MODEL PROFILES (preference: ${l.preference}; NIM_PROFILE_PREFERENCE)`);
  out.push('- Compatible with system and runnable:');
  if (!l.runnable.length) out.push('  (none)');
  for (const p of l.runnable) out.push(line(p, p.reason));
  if (l.lowMemory.length) {
    out.push('- Compatible with system but low memory:');
    for (const p of l.lowMemory) out.push(line(p, `max_model_len ${p.fitMaxModelLen} fits (set NIM_MAX_MODEL_LEN=${p.fitMaxModelLen}); ${p.reason.replace(/; max_model_len \d+ fits.*$/, '')}`));
  }
  if (l.incompatible.length) {
    out.push('- Incompatible with system:');
    for (const p of l.incompatible) out.push(line(p, p.reason));
  }
  if (l.selected) out.push(`SELECTED: ${l.selected.id} (${l.selected.name})${l.selected.how === 'automatic' ? '' : ` via NIM_MODEL_PROFILE${l.selected.how === 'forced' ? ' + NIM_MANIFEST_ALLOW_UNSAFE' : ''}`}`);
  else if (l.error) out.push(`NOT STARTABLE: ${l.error}`);
  return `${out.join('\n')}\n`;
}

/** `list-model-profiles --json`. */
export function renderProfilesJson(l: ProfileListing): string {
  return `${JSON.stringify(l, null, 2)}\n`;
}

/** Several models: each model's placement, then its own listing. */
export function renderModelsTable(plan: ModelsPlan): string {
  const out: string[] = [`MODELS (${plan.models.length}, from ${plan.source}${plan.mode === 'shared' ? '; engines share a GPU and start one after another' : ''})`];
  for (const m of plan.models) out.push(`- ${m.name} (${m.task}): ${placementText(m)}`);
  let text = `${out.join('\n')}\n`;
  for (const m of plan.models) {
    if (!m.listing) continue;
    text += `\n== ${m.name} ==\n${renderProfilesTable(m.listing)}`;
  }
  return text;
}

/** `list-model-profiles --json` with several models: the first model's listing (as with one), and `models`. */
export function renderModelsJson(plan: ModelsPlan): string {
  const first = plan.models.find((m) => m.listing)?.listing;
  const models = plan.models.map((m) => ({ name: m.name, task: m.task, placement: placementJson(m), listing: m.listing }));
  return `${JSON.stringify({ ...(first ?? {}), mode: plan.mode, models }, null, 2)}\n`;
}

/**
 * `serve --dry-run` with several models: every model's profile, engine argv and environment, and
 * (for tools reading the one-model shape) the first model's as `profile` / `engine`.
 */
export function renderModelsDryRun(plan: ModelsPlan): string {
  const engineOf = (m: ModelLaunch) => (m.plan ? { command: m.plan.engine.command, args: m.plan.engine.args, env: m.plan.engine.env } : undefined);
  const models = plan.models.map((m) => ({
    name: m.name,
    task: m.task,
    ...(m.plan ? { profile: m.plan.profile, engine: engineOf(m) } : { engine_url: redactUrl(m.engineUrl ?? '') }),
    ...placementJson(m),
  }));
  const first = plan.models.find((m) => m.plan);
  return `${JSON.stringify({ ...(first?.plan ? { profile: first.plan.profile, engine: engineOf(first) } : {}), mode: plan.mode, models }, null, 2)}\n`;
}

function placementJson(m: ModelLaunch): Record<string, unknown> {
  return {
    ...(m.cudaVisibleDevices !== undefined ? { cuda_visible_devices: m.cudaVisibleDevices } : {}),
    ...(m.gpuMemoryUtilization !== undefined ? { gpu_memory_utilization: m.gpuMemoryUtilization } : {}),
  };
}

function placementText(m: ModelLaunch): string {
  if (!m.plan) return `the engine at ${redactUrl(m.engineUrl ?? '')} (nothing spawned)`;
  const p = m.plan.profile as { id?: string; name?: string };
  const where = m.cudaVisibleDevices ? `GPU ${m.cudaVisibleDevices}${m.gpuMemoryUtilization !== undefined ? ` (shared: --gpu-memory-utilization ${m.gpuMemoryUtilization})` : ''}` : 'the CPU';
  return `${p.name} (${String(p.id).slice(0, 12)}) on ${where}`;
}
