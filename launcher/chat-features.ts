// Which tool-call parser, reasoning parser and chat template the engine starts with: the model's
// manifest declares them per engine, NIM_TOOL_CALL_PARSER / NIM_REASONING_PARSER /
// NIM_CHAT_TEMPLATE override them. Pure, except that a template file must exist.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, type Settings } from '../core/config.js';
import { TRTLLM_REASONING_PARSERS, TRTLLM_TOOL_PARSERS } from './engines/trtllm.js';
import type { ChatFeatures, EngineKind } from '../core/engine.js';
import type { Manifest } from './manifest.js';

export function chatFeatures(manifest: Manifest, engine: EngineKind, settings: Pick<Settings, 'chat'>): ChatFeatures {
  const declared = manifest.model.chat?.[engine] ?? {};
  const o = settings.chat;
  const f: ChatFeatures = {
    toolCallParser: o.toolCallParser ?? declared.toolCallParser,
    reasoningParser: o.reasoningParser ?? declared.reasoningParser,
    chatTemplate: o.chatTemplate ? resolve(o.chatTemplate) : declared.chatTemplate,
  };
  if (o.chatTemplate && !existsSync(f.chatTemplate!)) throw new ConfigError(`NIM_CHAT_TEMPLATE=${o.chatTemplate}: no such file`);
  // trtllm-serve's click.Choice would refuse anything else after a long container start: say it now.
  if (engine === 'tensorrt_llm') {
    if (f.toolCallParser && !(TRTLLM_TOOL_PARSERS as readonly string[]).includes(f.toolCallParser)) {
      throw new ConfigError(`tool-call parser "${f.toolCallParser}" is not one trtllm-serve 1.3.0rc3 knows (${TRTLLM_TOOL_PARSERS.join(', ')}); set NIM_TOOL_CALL_PARSER or pick a vLLM profile`);
    }
    if (f.reasoningParser && !(TRTLLM_REASONING_PARSERS as readonly string[]).includes(f.reasoningParser)) {
      throw new ConfigError(`reasoning parser "${f.reasoningParser}" is not one trtllm-serve 1.3.0rc3 knows (${TRTLLM_REASONING_PARSERS.join(', ')}); set NIM_REASONING_PARSER`);
    }
  }
  return Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined)) as ChatFeatures;
}
