// NIM's `nvext` request extension → what the serving engine understands, or a clear 400.
//
//   nvext field          vLLM v0.11.0 (top level)   llama-server                     trtllm-serve 1.3.0rc3
//   guided_json          guided_json                json_schema                      400
//   guided_regex         guided_regex               400 (no regex constraint)        400
//   guided_choice        guided_choice              grammar: root ::= "a" | "b"      400
//   guided_grammar       guided_grammar (EBNF)      grammar (GBNF)                   400
//   top_k, min_p         top_k, min_p               top_k, min_p                     top_k, min_p
//   repetition_penalty   repetition_penalty         repeat_penalty                   repetition_penalty
//   ignore_eos           ignore_eos                 ignore_eos                       ignore_eos
//   max_thinking_tokens  400 (not in v0.11.0)       reasoning_budget_tokens          400
//
// vLLM v0.11.0 still reads the guided_* fields (deprecated there in favour of structured_outputs).
import type { EngineDialect } from '../core/engine.js';
import { PorticoError } from '../core/errors.js';

type Json = Record<string, unknown>;
type Rule = Partial<Record<EngineDialect, string | null>>; // target field; null: refused

const RULES: Record<string, Rule> = {
  guided_json: { openai: 'guided_json', llamacpp: 'json_schema', trtllm: null },
  guided_regex: { openai: 'guided_regex', llamacpp: null, trtllm: null },
  guided_choice: { openai: 'guided_choice', llamacpp: 'grammar', trtllm: null },
  guided_grammar: { openai: 'guided_grammar', llamacpp: 'grammar', trtllm: null },
  top_k: { openai: 'top_k', llamacpp: 'top_k', trtllm: 'top_k' },
  min_p: { openai: 'min_p', llamacpp: 'min_p', trtllm: 'min_p' },
  repetition_penalty: { openai: 'repetition_penalty', llamacpp: 'repeat_penalty', trtllm: 'repetition_penalty' },
  ignore_eos: { openai: 'ignore_eos', llamacpp: 'ignore_eos', trtllm: 'ignore_eos' },
  max_thinking_tokens: { openai: null, llamacpp: 'reasoning_budget_tokens', trtllm: null },
};

const ENGINE_NAME: Record<EngineDialect, string> = { openai: 'vLLM v0.11.0', llamacpp: 'llama.cpp', trtllm: 'TensorRT-LLM 1.3.0rc3' };

const CHECK: Record<string, (v: unknown) => boolean> = {
  guided_json: (v) => (typeof v === 'object' && v !== null && !Array.isArray(v)) || typeof v === 'string',
  guided_regex: (v) => typeof v === 'string',
  guided_choice: (v) => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string'),
  guided_grammar: (v) => typeof v === 'string',
  top_k: (v) => Number.isInteger(v) && (v as number) >= -1,
  min_p: (v) => typeof v === 'number' && v >= 0 && v <= 1,
  repetition_penalty: (v) => typeof v === 'number' && v > 0,
  ignore_eos: (v) => typeof v === 'boolean',
  max_thinking_tokens: (v) => Number.isInteger(v) && (v as number) >= 0,
};

/** GBNF string literal. */
const gbnf = (s: string) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')}"`;

/** Move `nvext` fields onto the body in the engine's terms (in place). True when the body changed. */
export function applyNvext(body: Json, dialect: EngineDialect): boolean {
  if (body.nvext === undefined || body.nvext === null) return false;
  const nv = body.nvext;
  if (typeof nv !== 'object' || Array.isArray(nv)) throw new PorticoError('invalid_parameter', 'nvext must be an object', { param: 'nvext' });
  const out: Json = {};
  for (const [k, v] of Object.entries(nv as Json)) {
    if (v === undefined || v === null) continue;
    const rule = RULES[k];
    if (!rule) throw new PorticoError('invalid_parameter', `nvext.${k} is not supported (supported: ${Object.keys(RULES).join(', ')})`, { param: `nvext.${k}` });
    if (!CHECK[k]!(v)) throw new PorticoError('invalid_parameter', `nvext.${k} has the wrong type or range`, { param: `nvext.${k}` });
    const target = rule[dialect];
    if (!target) throw new PorticoError('invalid_parameter', `nvext.${k} is not supported by the running engine (${ENGINE_NAME[dialect]})`, { param: `nvext.${k}` });
    let value: unknown = v;
    if (dialect === 'llamacpp' && k === 'guided_choice') value = `root ::= ${(v as string[]).map(gbnf).join(' | ')}`;
    if (dialect === 'llamacpp' && k === 'guided_json' && typeof v === 'string') {
      try {
        value = JSON.parse(v) as unknown;
      } catch {
        throw new PorticoError('invalid_parameter', 'nvext.guided_json is not valid JSON', { param: 'nvext.guided_json' });
      }
    }
    if (out[target] !== undefined) throw new PorticoError('invalid_parameter', `nvext: only one of guided_choice / guided_grammar may be given on ${ENGINE_NAME[dialect]}`, { param: `nvext.${k}` });
    out[target] = value;
  }
  delete body.nvext;
  Object.assign(body, out);
  return true;
}
