// One pino logger for launcher, gateway and the engine's captured output. NIM_JSONL_LOGGING=1
// gives one JSON object per line (for log shippers); otherwise a compact human line.
import pino, { type Logger } from 'pino';
import type { Settings } from './config.js';

export type { Logger };

const LABELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARNING', 50: 'ERROR', 60: 'CRITICAL' };

export function createLogger(
  settings: Pick<Settings, 'logLevel' | 'jsonlLogging'>,
  out: NodeJS.WritableStream = process.stdout,
): Logger {
  const opts: pino.LoggerOptions = {
    level: settings.logLevel,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (_label, n) => ({ level: LABELS[n] ?? String(n) }) },
  };
  if (settings.jsonlLogging) return pino(opts, out as pino.DestinationStream);
  return pino(opts, { write: (line: string) => out.write(humanLine(line)) });
}

/**
 * `2026-11-22T00:00:00.000Z INFO  [engine] message key=value`. Request-derived text (paths,
 * headers, model names, engine output) is escaped as JSONL escapes it: a control character — a
 * newline that would forge a log line, an ANSI escape that would repaint the terminal — is
 * written as `\n`, `\u001b`..., so every entry stays one line.
 */
export function humanLine(json: string): string {
  const { time, level, msg, component, ...rest } = JSON.parse(json) as Record<string, unknown>;
  const extra = Object.entries(rest)
    .map(([k, v]) => `${escapeControls(k)}=${escapeControls(typeof v === 'string' ? v : JSON.stringify(v))}`)
    .join(' ');
  const comp = component ? `[${escapeControls(String(component))}] ` : '';
  return `${String(time)} ${String(level).padEnd(8)}${comp}${escapeControls(String(msg ?? ''))}${extra ? ` ${extra}` : ''}\n`;
}

// C0 and C1 controls, DEL, and the Unicode line/paragraph separators.
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

export function escapeControls(s: string): string {
  return s.replace(CONTROLS, (ch) => SHORT[ch] ?? `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
