// SIMULATION of the GPU engines' command lines: every argument the launcher emits for vLLM and
// trtllm-serve — every shipped profile, its LoRA variant, the tool/reasoning/template settings and
// the Ray head — is checked against the engines' own option tables (tests/data/engines/*.json,
// extracted from vLLM v0.11.0's and TensorRT-LLM 1.3.0rc3's source; provenance in its README). An
// unknown flag, a wrong spelling, a missing or extra value, or a value outside its choices fails.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { loadSettings } from '../core/config.js';
import type { EngineCommand } from '../core/engine.js';
import { loadShippedManifests, type Manifest, type Profile } from '../launcher/manifest.js';
import { buildEngineCommand, engineModelArg } from '../launcher/plan.js';
import { planRayHead } from '../launcher/ray.js';
import type { Evaluation } from '../launcher/select.js';
import { CLI, ROOT } from './helpers/stack.js';

const DATA = new URL('./data/engines/', import.meta.url);
const read = (f: string) => JSON.parse(readFileSync(new URL(f, DATA), 'utf8')) as Record<string, unknown>;

interface VllmFlag {
  flag: string;
  aliases?: string[];
  negation?: string;
  type?: string;
  choices?: string[] | string;
  nargs?: string;
  action?: string;
}
interface TrtParam {
  kind: 'argument' | 'option';
  flag?: string;
  aliases?: string[];
  type?: string;
  choices?: string[];
  is_flag?: boolean;
  multiple?: boolean;
}

const VLLM = read('vllm-v0.11.0.json') as { serve_flags: VllmFlag[]; quantization_values_accepted_after_parse: string[] };
const TRT = read('trtllm-serve-1.3.0rc3.json') as { serve_params: TrtParam[] };

// vLLM's parser registries are filled at run time (the JSON gives the expression); these are the
// names portico's manifests use, each registered in v0.11.0 (vllm/entrypoints/openai/tool_parsers,
// vllm/reasoning).
const VLLM_TOOL_PARSERS = ['hermes', 'llama3_json', 'mistral', 'pythonic', 'qwen3_coder', 'deepseek_v3'];
const VLLM_REASONING_PARSERS = ['deepseek_r1', 'qwen3'];
// LoRAConfig.__post_init__ (config/lora.py:104-109).
const VLLM_LORA_RANKS = ['8', '16', '32', '64', '128', '256', '320', '512'];

const isInt = (v: string) => /^\d+$/.test(v);

/** Problems with one `vllm …` argv (empty: vLLM v0.11.0 would parse it). */
export function checkVllmArgv(args: string[]): string[] {
  const errs: string[] = [];
  if (args[0] !== 'serve') errs.push(`expected "serve" first, got ${args[0]}`);
  if (!args[1] || args[1].startsWith('-')) errs.push('expected the model as the positional after "serve"');
  const byName = new Map<string, VllmFlag>();
  for (const f of VLLM.serve_flags) for (const n of [f.flag, ...(f.aliases ?? []), ...(f.negation ? [f.negation] : [])]) byName.set(n, f);
  for (let i = 2; i < args.length; i++) {
    const tok = args[i]!;
    if (!tok.startsWith('-')) {
      errs.push(`stray value ${JSON.stringify(tok)}`);
      continue;
    }
    let [name, inline] = tok.includes('=') ? [tok.slice(0, tok.indexOf('=')), tok.slice(tok.indexOf('=') + 1)] : [tok, undefined];
    // FlexibleArgumentParser: '_' → '-' up to the first '.', and dotted keys address a JSON field.
    const dot = name.indexOf('.');
    const base = (dot > 0 ? name.slice(0, dot) : name).replace(/^(--?)(.*)$/, (_, d: string, r: string) => d + r.replace(/_/g, '-'));
    const f = byName.get(base);
    if (!f) {
      errs.push(`unknown flag ${name}`);
      continue;
    }
    const noValue = f.action === 'BooleanOptionalAction' || f.action === 'store_true';
    if (noValue) {
      if (inline !== undefined) errs.push(`${name} takes no value`);
      continue;
    }
    const values: string[] = [];
    if (inline !== undefined) values.push(inline);
    else if (f.nargs === '+' || f.nargs === '*') while (i + 1 < args.length && !args[i + 1]!.startsWith('-')) values.push(args[++i]!);
    else if (i + 1 < args.length && !args[i + 1]!.startsWith('-')) values.push(args[++i]!);
    if (!values.length && f.nargs !== '?' && f.nargs !== '*') {
      errs.push(`${name} needs a value`);
      continue;
    }
    for (const v of values) errs.push(...checkVllmValue(f, v, dot > 0));
  }
  return errs;
}

function checkVllmValue(f: VllmFlag, v: string, dotted: boolean): string[] {
  const bad = (why: string) => [`${f.flag} ${JSON.stringify(v)}: ${why}`];
  if (f.action === 'LoRAParserAction') {
    if (v.includes('=') && !v.includes(',')) return v.split('=').length === 2 ? [] : bad('name=path with more than one "=" (a ValueError in LoRAParserAction)');
    try {
      const j = JSON.parse(v) as { name?: unknown; path?: unknown };
      return typeof j.name === 'string' && typeof j.path === 'string' ? [] : bad('JSON needs "name" and "path"');
    } catch {
      return bad('neither name=path nor JSON');
    }
  }
  if (Array.isArray(f.choices) && !f.choices.includes(v)) return bad(`not one of ${f.choices.join(', ')}`);
  if (f.flag === '--quantization' && !VLLM.quantization_values_accepted_after_parse.includes(v)) return bad('not a quantization method of v0.11.0');
  if (f.flag === '--max-lora-rank' && !VLLM_LORA_RANKS.includes(v)) return bad(`not one of ${VLLM_LORA_RANKS.join(', ')}`);
  if (f.flag === '--tool-call-parser' && !VLLM_TOOL_PARSERS.includes(v)) return bad('not a registered tool parser');
  if (f.flag === '--reasoning-parser' && !VLLM_REASONING_PARSERS.includes(v)) return bad('not a registered reasoning parser');
  if ((f.type === 'int' || f.type === 'human_readable_int') && !dotted && !isInt(v)) return bad('not an integer');
  if (f.type?.startsWith('json') && !dotted) {
    try {
      const j = JSON.parse(v) as unknown;
      if (typeof j !== 'object' || j === null) return bad('not a JSON object');
    } catch {
      return bad('not JSON');
    }
  }
  return [];
}

/** Problems with one `trtllm-serve …` argv (empty: trtllm-serve 1.3.0rc3's click would accept it). */
export function checkTrtllmArgv(args: string[]): string[] {
  const errs: string[] = [];
  if (!args[0] || args[0].startsWith('-')) errs.push('expected the model first (the group takes no options)');
  const byName = new Map<string, TrtParam>();
  for (const p of TRT.serve_params) if (p.kind === 'option') for (const n of [p.flag!, ...(p.aliases ?? [])]) byName.set(n, p);
  for (let i = 1; i < args.length; i++) {
    const tok = args[i]!;
    if (!tok.startsWith('-')) {
      errs.push(`stray value ${JSON.stringify(tok)}`);
      continue;
    }
    const [name, inline] = tok.includes('=') ? [tok.slice(0, tok.indexOf('=')), tok.slice(tok.indexOf('=') + 1)] : [tok, undefined];
    const p = byName.get(name); // click matches option names literally: no '-'/'_' folding
    if (!p) {
      errs.push(`unknown option ${name}`);
      continue;
    }
    if (p.is_flag) {
      if (inline !== undefined) errs.push(`${name} is a flag and takes no value`);
      continue;
    }
    const v = inline ?? (i + 1 < args.length ? args[++i] : undefined);
    if (v === undefined) {
      errs.push(`${name} needs a value`);
      continue;
    }
    if (p.choices && !p.choices.includes(v)) errs.push(`${name} ${JSON.stringify(v)}: not one of ${p.choices.join(', ')}`);
    if (p.type === 'int' && !isInt(v)) errs.push(`${name} ${JSON.stringify(v)}: not an integer`);
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------

const tmp = mkdtempSync(join(tmpdir(), 'portico-argv-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const CACHE = join(tmp, 'cache');
// Adapter directories whose paths would break vLLM's name=path form.
const PEFT = join(tmp, 'loras');
const ADAPTERS = ['sql', 'a=b', 'c,d'];
for (const a of ADAPTERS) {
  mkdirSync(join(PEFT, a), { recursive: true });
  writeFileSync(join(PEFT, a, 'adapter_config.json'), '{}');
}
const TEMPLATE = join(tmp, 'tools.jinja');
writeFileSync(TEMPLATE, '{{ messages }}');

const manifests = loadShippedManifests();
const gpuProfiles = manifests.flatMap((m) => m.profiles.filter((p) => p.tags.llm_engine !== 'llamacpp').map((p) => [m, p] as const));

function commandFor(m: Manifest, p: Profile, env: Record<string, string> = {}): EngineCommand {
  const settings = loadSettings({ NIM_CACHE_PATH: CACHE, ...env });
  const chosen: Evaluation = { profile: p, status: 'runnable', reason: '', tp: p.tags.tp, pp: p.tags.pp, maxModelLen: m.model.maxModelLen, gpus: [] };
  const loraModules = p.tags.feat_lora ? ADAPTERS.map((a) => ({ name: a, path: join(PEFT, a) })) : [];
  const model = engineModelArg(p.source ?? m.model.source);
  return buildEngineCommand({ manifest: m, chosen, settings, port: 8001, model, command: p.tags.llm_engine, loraModules, parentEnv: {}, checkpointQuantized: p.source !== undefined });
}

const check = (c: EngineCommand) => (c.kind === 'vllm' ? checkVllmArgv(c.args) : checkTrtllmArgv(c.args));

describe('engine argv against the engines’ own option tables (simulation)', () => {
  it('the checkers refuse what the engines refuse (simulation)', () => {
    expect(checkTrtllmArgv(['m', '--served_model_name', 'x'])[0]).toBe('unknown option --served_model_name');
    expect(checkTrtllmArgv(['m', '--tp-size', '2'])[0]).toBe('unknown option --tp-size');
    expect(checkTrtllmArgv(['m', '--tool_parser', 'llama3_json'])[0]).toMatch(/not one of qwen3/);
    expect(checkTrtllmArgv(['m', '--backend', 'pytorch', '--trust_remote_code', '--tp_size', 'two'])).toEqual(['--tp_size "two": not an integer']);
    expect(checkVllmArgv(['serve', 'm', '--lora-modules', 'a=/x=y'])[0]).toMatch(/more than one "="/);
    expect(checkVllmArgv(['serve', 'm', '--lora-modules', 'a=/x,y'])[0]).toMatch(/neither name=path nor JSON/);
    expect(checkVllmArgv(['serve', 'm', '--dtype', 'bf16'])[0]).toMatch(/not one of/);
    expect(checkVllmArgv(['serve', 'm', '--quantization', 'fp7'])[0]).toMatch(/quantization/);
    expect(checkVllmArgv(['serve', 'm', '--max-lora-rank', '24'])[0]).toMatch(/not one of 8/);
    expect(checkVllmArgv(['serve', 'm', '--enable-lora', 'yes'])).toEqual(['stray value "yes"']);
    expect(checkVllmArgv(['serve', 'm', '--no-such-flag'])).toEqual(['unknown flag --no-such-flag']);
    // vLLM folds '_' to '-'; dotted JSON keys address one field.
    expect(checkVllmArgv(['serve', 'm', '--served_model_name', 'x', '--limit-mm-per-prompt.image', '2', '--max-model-len', '4096'])).toEqual([]);
  });

  it.each(gpuProfiles.map(([m, p]) => [`${m.model.id} ${p.name}`, m, p] as const))('%s (simulation)', (_label, m, p) => {
    const c = commandFor(m, p);
    expect(check(c)).toEqual([]);
    if (c.kind === 'tensorrt_llm') {
      // LoRA and Prometheus metrics go through the --config YAML.
      const cfgPath = c.args[c.args.indexOf('--config') + 1];
      const file = c.files?.find((f) => f.path === cfgPath);
      expect(file).toBeDefined();
      const cfg = YAML.parse(file!.content) as { return_perf_metrics?: boolean; lora_config?: { lora_dir: string[] } };
      expect(cfg.return_perf_metrics).toBe(true);
      if (p.tags.feat_lora) expect(cfg.lora_config?.lora_dir).toEqual(ADAPTERS.map((a) => join(PEFT, a)));
      else expect(cfg.lora_config).toBeUndefined();
    }
    if (c.kind === 'vllm' && p.tags.feat_lora) {
      const i = c.args.indexOf('--lora-modules');
      expect(c.args.slice(i + 1, i + 1 + ADAPTERS.length).map((s) => JSON.parse(s) as unknown)).toEqual(ADAPTERS.map((a) => ({ name: a, path: join(PEFT, a) })));
    }
  });

  it('LoRA limits: NIM_MAX_GPU_LORAS / NIM_MAX_CPU_LORAS / NIM_MAX_LORA_RANK reach vLLM (rank rounded up to one it accepts) and TensorRT-LLM (simulation)', () => {
    const llama = manifests.find((m) => m.model.id === 'meta/llama-3.1-8b-instruct')!;
    const lora = (engine: string) => {
      const p = llama.profiles.find((x) => x.tags.llm_engine === engine)!;
      return { ...p, tags: { ...p.tags, feat_lora: true } };
    };
    const env = { NIM_MAX_GPU_LORAS: '3', NIM_MAX_CPU_LORAS: '12', NIM_MAX_LORA_RANK: '24' };
    const v = commandFor(llama, lora('vllm'), env);
    expect(check(v)).toEqual([]);
    const at = (flag: string) => v.args[v.args.indexOf(flag) + 1];
    expect([at('--max-loras'), at('--max-cpu-loras'), at('--max-lora-rank')]).toEqual(['3', '12', '32']);
    // Static adapters only: no runtime endpoints without NIM_PEFT_REFRESH_INTERVAL; with it, the env var that registers them.
    expect(v.env.VLLM_ALLOW_RUNTIME_LORA_UPDATING).toBeUndefined();
    expect(commandFor(llama, lora('vllm'), { ...env, NIM_PEFT_REFRESH_INTERVAL: '30' }).env.VLLM_ALLOW_RUNTIME_LORA_UPDATING).toBe('True');
    const t = commandFor(llama, lora('tensorrt_llm'), env);
    expect(check(t)).toEqual([]);
    const cfg = YAML.parse(t.files![0]!.content) as { lora_config: Record<string, unknown> };
    expect(cfg.lora_config).toEqual({ lora_dir: ADAPTERS.map((a) => join(PEFT, a)), lora_ckpt_source: 'hf', max_lora_rank: 24, max_loras: 3, max_cpu_loras: 12 });
  });

  it('a LoRA variant of every GPU profile (simulation)', () => {
    for (const [m, p] of gpuProfiles) {
      const lora = { ...p, tags: { ...p.tags, feat_lora: true } };
      expect([p.name, check(commandFor(m, lora))]).toEqual([p.name, []]);
    }
  });

  it('tool-call and reasoning parsers, chat template: declared and overridden (simulation)', () => {
    const llama = manifests.find((m) => m.model.id === 'meta/llama-3.1-8b-instruct')!;
    const vllm = llama.profiles.find((p) => p.tags.llm_engine === 'vllm')!;
    const c = commandFor(llama, vllm);
    expect(c.args.join(' ')).toContain('--enable-auto-tool-choice --tool-call-parser llama3_json');
    const o = commandFor(llama, vllm, { NIM_TOOL_CALL_PARSER: 'hermes', NIM_REASONING_PARSER: 'deepseek_r1', NIM_CHAT_TEMPLATE: TEMPLATE });
    expect(o.args.join(' ')).toContain(`--tool-call-parser hermes --reasoning-parser deepseek_r1 --chat-template ${TEMPLATE}`);
    expect(checkVllmArgv(o.args)).toEqual([]);
    const qwen = manifests.find((m) => m.model.id === 'qwen/qwen2.5-vl-7b-instruct')!;
    const trt = qwen.profiles.find((p) => p.tags.llm_engine === 'tensorrt_llm')!;
    const t = commandFor(qwen, trt, { NIM_REASONING_PARSER: 'deepseek-r1', NIM_CHAT_TEMPLATE: TEMPLATE });
    expect(t.args.join(' ')).toContain(`--tool_parser qwen3 --reasoning_parser deepseek-r1 --chat_template ${TEMPLATE}`);
    expect(checkTrtllmArgv(t.args)).toEqual([]);
    // A name trtllm-serve would refuse is refused at plan time, with the names it knows.
    expect(() => commandFor(qwen, trt, { NIM_TOOL_CALL_PARSER: 'llama3_json' })).toThrow(/not one trtllm-serve 1\.3\.0rc3 knows \(qwen3, qwen3_coder/);
  });

  it('the Ray head runs a valid vLLM command for every manifest with vLLM profiles (simulation)', () => {
    for (const m of manifests.filter((x) => x.profiles.some((p) => p.tags.llm_engine === 'vllm'))) {
      for (const lora of [false, true]) {
        const settings = loadSettings({
          NIM_CACHE_PATH: CACHE,
          NIM_MODEL_PATH: m.model.id,
          NIM_NUM_COMPUTE_NODES: '2',
          NIM_GPUS_PER_NODE: '4',
          ...(lora ? { NIM_PEFT_SOURCE: PEFT, NIM_MODEL_PROFILE: m.profiles.find((p) => p.tags.llm_engine === 'vllm' && p.tags.feat_lora)?.name ?? '' } : {}),
        });
        if (lora && !settings.modelProfile) continue;
        if (m.profiles.every((p) => p.unsupported)) {
          expect(() => planRayHead(settings, { enginePort: 8002, gpusPerNode: 4, env: { PATH: '' } })).toThrow(/no longer supports/);
          continue;
        }
        const plan = planRayHead(settings, { enginePort: 8002, gpusPerNode: 4, env: { PATH: '' } });
        expect([m.model.id, checkVllmArgv(plan.engine.args)]).toEqual([m.model.id, []]);
        expect(plan.engine.args).toContain('--distributed-executor-backend');
      }
    }
  });
});

describe('the vLLM metrics fixture is what v0.11.0 exports (simulation)', () => {
  it('every vllm: series in tests/helpers/engine-metrics.ts is exported by default in v0.11.0', async () => {
    const { VLLM_METRICS } = await import('./helpers/engine-metrics.js');
    const table = (read('vllm-v0.11.0.json') as { metrics: { name: string; type: string; hidden_unless_show_hidden_metrics_for_version?: boolean }[] }).metrics;
    const exported = new Set(table.filter((m) => !m.hidden_unless_show_hidden_metrics_for_version).flatMap((m) => (m.type === 'histogram' ? ['_bucket', '_sum', '_count'].map((s) => m.name + s) : m.type === 'counter' ? [`${m.name}_total`, `${m.name}_created`] : [m.name])));
    const names = [...new Set([...VLLM_METRICS.matchAll(/^(vllm:[\w:]+)/gm)].map((x) => x[1]!))];
    expect(names.length).toBeGreaterThan(3);
    expect(names.filter((n) => !exported.has(n))).toEqual([]);
  });
});

describe('the CLI shows the chat features (simulation)', () => {
  // A simulated 1× L40S with vLLM "installed": fake nvidia-smi and vllm first on PATH.
  const bin = join(tmp, 'bin');
  mkdirSync(bin, { recursive: true });
  const exe = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  exe('nvidia-smi', `echo '0, NVIDIA L40S, 0x26B910DE, 46068, 8.9'`);
  exe('vllm', 'exit 1');
  const env = (extra: Record<string, string>) => ({ HOME: tmp, PATH: `${bin}:${process.env.PATH ?? ''}`, NIM_CACHE_PATH: CACHE, NIM_MODEL_PATH: 'meta/llama-3.1-8b-instruct', ...extra });
  const cli = (args: string[], e: Record<string, string>) => execa('node', [CLI, ...args], { env: e, extendEnv: false, reject: false, timeout: 30_000, cwd: ROOT });

  it('serve --dry-run: profile.chat and the vLLM flags; NIM_* overrides win (simulation)', async () => {
    const r = await cli(['serve', '--dry-run'], env({}));
    expect(r.exitCode).toBe(0);
    const out = JSON.parse(r.stdout) as { profile: { chat: Record<string, string> }; engine: { args: string[] } };
    expect(out.profile.chat).toEqual({ toolCallParser: 'llama3_json' });
    expect(out.engine.args.join(' ')).toContain('--enable-auto-tool-choice --tool-call-parser llama3_json');
    expect(checkVllmArgv(out.engine.args)).toEqual([]);
    const o = await cli(['serve', '--dry-run'], env({ NIM_TOOL_CALL_PARSER: 'hermes', NIM_REASONING_PARSER: 'deepseek_r1', NIM_CHAT_TEMPLATE: TEMPLATE }));
    const oo = JSON.parse(o.stdout) as { profile: { chat: Record<string, string> }; engine: { args: string[] } };
    expect(oo.profile.chat).toEqual({ toolCallParser: 'hermes', reasoningParser: 'deepseek_r1', chatTemplate: TEMPLATE });
    expect(oo.engine.args.join(' ')).toContain(`--tool-call-parser hermes --reasoning-parser deepseek_r1 --chat-template ${TEMPLATE}`);
  });

  it('list-model-profiles --json: each profile’s chat features, per engine (simulation)', async () => {
    const r = await cli(['list-model-profiles', '--json'], env({ NIM_MODEL_PATH: 'qwen/qwen2.5-vl-7b-instruct' }));
    expect(r.exitCode).toBe(0);
    const l = JSON.parse(r.stdout) as Record<'runnable' | 'lowMemory' | 'incompatible', { name: string; chat: Record<string, string> }[]>;
    const all = [...l.runnable, ...l.lowMemory, ...l.incompatible];
    expect(all.find((p) => p.name.startsWith('vllm-'))!.chat).toEqual({ toolCallParser: 'hermes' });
    expect(all.find((p) => p.name.startsWith('tensorrt_llm-'))!.chat).toEqual({ toolCallParser: 'qwen3' });
  });

  it('a bad setting stops the start with one line naming it (simulation)', async () => {
    const r = await cli(['serve', '--dry-run'], env({ NIM_TOOL_CALL_PARSER: 'bad name;rm' }));
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/NIM_TOOL_CALL_PARSER="bad name;rm": expected a parser name/);
    const t = await cli(['serve', '--dry-run'], env({ NIM_CHAT_TEMPLATE: join(tmp, 'missing.jinja') }));
    expect(t.stderr).toMatch(/NIM_CHAT_TEMPLATE=.*missing\.jinja: no such file/);
  });
});
