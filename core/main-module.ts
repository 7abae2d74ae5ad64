// Whether a module is the one node was asked to run (`node dist/x.js`): the CLI entry points of
// generators and tools run their main block only then, never when imported.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** True when `metaUrl` (a module's `import.meta.url`) is the script node started, symlinks resolved. */
export function isMainModule(metaUrl: string): boolean {
  const arg = process.argv[1];
  if (!arg) return false;
  try {
    return realpathSync(arg) === realpathSync(fileURLToPath(metaUrl));
  } catch {
    return false;
  }
}
