// The engine must die with the launcher, whatever ends the launcher — SIGKILL and the OOM killer
// included, where no exit handler runs. On Linux the engine is started through util-linux's
// `setpriv --pdeathsig SIGTERM`, which sets PR_SET_PDEATHSIG and then execs the engine: the kernel
// itself sends the engine SIGTERM when the launcher dies (same pid, no extra process, no native
// addon). The engine also leads its own process group so a stop reaches the workers it forks.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface Guarded {
  command: string;
  args: string[];
  /** true when the kernel will signal the engine on the launcher's death. */
  guarded: boolean;
}

export function guardEngine(command: string, args: string[], env: NodeJS.ProcessEnv, platform = process.platform): Guarded {
  const setpriv = platform === 'linux' ? findOnPath('setpriv', env.PATH) : undefined;
  if (!setpriv) return { command, args, guarded: false };
  return { command: setpriv, args: ['--pdeathsig', 'SIGTERM', '--', command, ...args], guarded: true };
}

function findOnPath(name: string, path = ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}
