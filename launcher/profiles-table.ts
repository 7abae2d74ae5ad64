// `list-model-profiles` output: NIM's sections ("Compatible with system and runnable",
// "Incompatible with system"), plus portico's "Compatible with system but low memory" with the
// max_model_len that would fit, the chosen profile marked, and one reason per profile.
import type { ListedProfile, ProfileListing } from './select.js';

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
