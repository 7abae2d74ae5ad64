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

/** `2026-11-22T00:00:00.000Z INFO  [engine] message key=value` */
export function humanLine(json: string): string {
  const { time, level, msg, component, ...rest } = JSON.parse(json) as Record<string, unknown>;
  const extra = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${String(time)} ${String(level).padEnd(8)}${component ? `[${String(component)}] ` : ''}${String(msg ?? '')}${extra ? ` ${extra}` : ''}\n`;
}
