// Why portico could not start (or stopped serving), as one table: a stable code, the exit status
// it gives on every path (`serve`, `--ray-head`, `--ray-worker`, `list-model-profiles`, dry runs),
// and what it means. Statuses group by what an operator does next: 2-4 are configuration that a
// restart will not fix; 1 is the engine or the cluster, which a restart may.
// (HTTP refusals are in core/errors.ts.)

export const STARTUP_ERRORS = {
  internal: { exit: 1, meaning: 'an unexpected failure (a bug: the line says where)' },
  engine_failed: { exit: 1, meaning: 'the engine did not become healthy within NIM_ENGINE_START_TIMEOUT, or exited with status 0 while serving (a non-zero engine exit status is passed through as is)' },
  cluster_failed: { exit: 1, meaning: 'the Ray cluster did not form (`ray start` failed, too few nodes within NIM_CLUSTER_START_TIMEOUT, too few GPUs)' },
  prepare_failed: { exit: 1, meaning: 'building llama-server or generating the demo model failed' },
  usage: { exit: 2, meaning: 'an unknown verb or flag, or flags that exclude each other' },
  invalid_setting: { exit: 2, meaning: 'a setting is invalid or missing, or names something that does not exist (the line names the variable)' },
  invalid_models_file: { exit: 2, meaning: 'NIM_MODELS_FILE cannot be read or is not a valid list of models (the line names the file, the model and the field)' },
  invalid_manifest: { exit: 3, meaning: 'the model manifest or the GPU catalog cannot be read (the line names the file and field)' },
  no_profile: { exit: 3, meaning: 'no profile can run on this machine, or NIM_MODEL_PROFILE names none that can (the line lists what would run)' },
  invalid_credentials: { exit: 4, meaning: 'the API keys (NIM_API_KEYS, NIM_API_KEYS_FILE) or the TLS key and certificates cannot be used' },
} as const satisfies Record<string, { exit: number; meaning: string }>;

export type StartupCode = keyof typeof STARTUP_ERRORS;

/** A start-up failure with its code; the CLI prints its message as one line and exits with the code's status. */
export class StartupError extends Error {
  constructor(
    readonly startupCode: StartupCode,
    message: string,
    opts?: { cause?: unknown },
  ) {
    super(message, opts);
    this.name = 'StartupError';
  }
}

/** The code and exit status of anything thrown on the start path (plain errors are `internal`). */
export function startupFailure(err: unknown): { code: StartupCode; exit: number; message: string } {
  const code: StartupCode = err instanceof StartupError ? err.startupCode : 'internal';
  return { code, exit: STARTUP_ERRORS[code].exit, message: err instanceof Error ? err.message : String(err) };
}

/** The start-up table as Markdown (README "Start-up failures"; a test keeps them in step). */
export function startupTableMarkdown(): string {
  const rows = Object.entries(STARTUP_ERRORS)
    .sort(([, a], [, b]) => a.exit - b.exit)
    .map(([code, e]) => `| ${e.exit} | \`${code}\` | ${e.meaning.replace(/\|/g, '\\|')} |`);
  return ['| Exit | `code` | When |', '|---|---|---|', ...rows].join('\n');
}
