// The engine's own exposition (vLLM's `vllm:*`, llama-server's `llamacpp:*`), appended to /v1/metrics
// unchanged except for families the gateway already exports.

/** Engine series the NIM gauges are derived from (first present wins). */
export const ENGINE_RUNNING = ['vllm:num_requests_running', 'llamacpp:requests_processing'];
export const ENGINE_WAITING = ['vllm:num_requests_waiting', 'llamacpp:requests_deferred'];
export const ENGINE_KV_USAGE = ['vllm:gpu_cache_usage_perc', 'vllm:kv_cache_usage_perc', 'llamacpp:kv_cache_usage_ratio'];
const ENGINE_WANTED = new Set([...ENGINE_RUNNING, ...ENGINE_WAITING, ...ENGINE_KV_USAGE]);

const SAMPLE_SUFFIXES = ['_bucket', '_sum', '_count', '_total', '_created', '_info', '_gcount', '_gsum'];

/** Family a sample line belongs to, given the family declared just before it. */
function familyOf(sample: string, current: string | undefined): string {
  if (current && (sample === current || (sample.startsWith(current) && SAMPLE_SUFFIXES.includes(sample.slice(current.length))))) return current;
  return sample;
}

export interface FilteredExposition {
  /** The engine's lines, unchanged, without families in `taken`, repeated metadata or `# EOF`. */
  text: string;
  /** Values of the samples the NIM gauges derive from, by metric name. */
  samples: Map<string, number[]>;
}

/**
 * Prepare the engine's text exposition for appending to the gateway's: drop families whose name
 * the gateway already declares (promtool and Prometheus reject a name declared twice), drop a
 * second `# HELP`/`# TYPE` of one family and an OpenMetrics `# EOF`; keep everything else
 * byte for byte. Also picks out the few engine samples the NIM gauges are derived from.
 */
export function filterEngineExposition(text: string, taken: ReadonlySet<string>): FilteredExposition {
  const out: string[] = [];
  const samples = new Map<string, number[]>();
  const seenMeta = new Set<string>();
  let family: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)/.exec(line);
      if (!m) {
        if (!/^#\s*EOF\s*$/.test(line)) out.push(line);
        continue;
      }
      family = m[2]!;
      const key = `${m[1]} ${family}`;
      if (taken.has(family) || seenMeta.has(key)) continue;
      seenMeta.add(key);
      out.push(line);
      continue;
    }
    const name = /^[^\s{]+/.exec(line)?.[0];
    if (!name) continue;
    const fam = familyOf(name, family);
    if (fam !== family) family = undefined;
    if (taken.has(fam)) continue;
    out.push(line);
    if (ENGINE_WANTED.has(name)) {
      const close = line.lastIndexOf('}');
      const v = Number((close >= 0 ? line.slice(close + 1) : line.slice(name.length)).trim().split(/\s+/)[0]);
      if (Number.isFinite(v)) samples.set(name, [...(samples.get(name) ?? []), v]);
    }
  }
  return { text: out.length ? `${out.join('\n')}\n` : '', samples };
}

/**
 * Several engines' filtered expositions as one: each family once (its HELP/TYPE from the first
 * engine that declares it, then every engine's samples together, as the text format requires),
 * each sample labelled with its engine's `model_name` unless it already carries one (vLLM's do).
 */
export function mergeExpositions(parts: readonly { text: string; model: string }[]): string {
  const families = new Map<string, { meta: string[]; samples: string[] }>();
  const fam = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { meta: [], samples: [] }));
    return f;
  };
  const seenMeta = new Set<string>();
  for (const { text, model } of parts) {
    let family: string | undefined;
    const label = `model_name="${model.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const m = /^#\s+(HELP|TYPE)\s+(\S+)/.exec(line);
      if (m) {
        family = m[2]!;
        const key = `${m[1]} ${family}`;
        if (!seenMeta.has(key)) {
          seenMeta.add(key);
          fam(family).meta.push(line);
        }
        continue;
      }
      if (line.startsWith('#')) continue;
      const name = /^[^\s{]+/.exec(line)?.[0];
      if (!name) continue;
      const f = familyOf(name, family);
      if (f !== family) family = undefined;
      fam(f).samples.push(withLabel(line, name, label));
    }
  }
  const out: string[] = [];
  for (const f of families.values()) out.push(...f.meta, ...f.samples);
  return out.length ? `${out.join('\n')}\n` : '';
}

function withLabel(line: string, name: string, label: string): string {
  const rest = line.slice(name.length);
  if (rest.startsWith('{')) {
    const close = rest.indexOf('}');
    if (/(^|[{,\s])model_name\s*=/.test(rest.slice(0, close))) return line;
    return `${name}{${label}${close > 1 ? ',' : ''}${rest.slice(1)}`;
  }
  return `${name}{${label}}${rest}`;
}

/** Which engine path serves Prometheus text. trtllm-serve keeps JSON stats at /metrics. */
export function engineMetricsPath(kind: string | undefined): string {
  return kind === 'tensorrt_llm' ? '/prometheus/metrics' : '/metrics';
}
