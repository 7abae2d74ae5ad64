// llama.cpp's llama-server: the CPU engine. Pure: inputs → argv.
import type { ChatFeatures, EngineCommand } from '../../core/engine.js';

export interface LlamaCppInput {
  binary: string;
  model: string;
  mmproj?: string | undefined;
  servedName: string;
  port: number;
  contextLength: number;
  /** Parallel slots: each gets contextLength / parallel tokens of context. */
  parallel?: number;
  threads?: number | undefined;
  /** llama.cpp reads tool calls and reasoning from the chat template itself; only a template file applies. */
  chat?: ChatFeatures | undefined;
  extraArgs?: string[];
}

export function llamaCppCommand(i: LlamaCppInput): EngineCommand {
  const parallel = i.parallel ?? 2;
  const args = [
    '-m', i.model,
    ...(i.mmproj ? ['--mmproj', i.mmproj] : []),
    // -c is the total KV size shared by the slots; give each slot the full context length.
    '-c', String(i.contextLength * parallel),
    '-np', String(parallel),
    ...(i.threads ? ['-t', String(i.threads)] : []),
    '--host', '127.0.0.1',
    '--port', String(i.port),
    '--alias', i.servedName,
    '--no-ui',
    '--metrics',
    '--slots',
    // The Jinja engine renders `tools` and parses tool calls and <think> blocks (it is this build's
    // default; said explicitly so a newer build's default cannot silently drop tool support).
    '--jinja',
    ...(i.chat?.chatTemplate ? ['--chat-template-file', i.chat.chatTemplate] : []),
    ...(i.extraArgs ?? []),
  ];
  return {
    kind: 'llamacpp',
    command: i.binary,
    args,
    env: {},
    host: '127.0.0.1',
    port: i.port,
    healthPath: '/health',
    dialect: 'llamacpp',
  };
}
