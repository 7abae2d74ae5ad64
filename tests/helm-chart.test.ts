// The Helm chart (helm/portico) without a helm binary: values.yaml (and the example values in ci/)
// validate against values.schema.json; every .Values path the templates use exists in values.yaml;
// every include has its define and every block its end; the templates parse as YAML once the template
// actions are stubbed; and the values a nim-llm (nim-deploy) user knows are there with NIM's meaning.
// Users run the real thing: `helm lint helm/portico` and `helm template x helm/portico` (README).
import { Ajv } from 'ajv';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';

const CHART = fileURLToPath(new URL('../helm/portico/', import.meta.url));
const read = (p: string) => readFileSync(join(CHART, p), 'utf8');
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const values = YAML.parse(read('values.yaml')) as Obj;
const schema = JSON.parse(read('values.schema.json')) as Obj;
const validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(schema);

/** Helm's merge of user values over the chart's: maps merge, everything else is replaced. */
function merge(base: unknown, over: unknown): unknown {
  if (!isObj(base) || !isObj(over)) return over;
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? merge(base[k], v) : v;
  return out;
}
const withValues = (over: unknown) => merge(structuredClone(values), over);

const templateFiles = readdirSync(join(CHART, 'templates'), { recursive: true, withFileTypes: true })
  .filter((d) => d.isFile())
  .map((d) => join(d.parentPath, d.name).slice(join(CHART, 'templates').length + 1));
const templates = new Map(templateFiles.map((f) => [f, read(`templates/${f}`)]));
const manifests = [...templates.keys()].filter((f) => f.endsWith('.yaml'));

/**
 * Go-template actions → YAML: comments go; a line holding only actions (if/else/end/range/with/define,
 * include … | nindent, toYaml … | nindent, fail) goes; any other action becomes the scalar STUB.
 * Both branches of every if stay, so the templates are written to keep branches' keys distinct.
 */
function stub(text: string): string {
  return text
    .replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, '')
    .split('\n')
    .filter((line) => line.replace(/\{\{[\s\S]*?\}\}/g, '').trim() !== '' || !line.includes('{{'))
    .map((line) => line.replace(/\{\{[\s\S]*?\}\}/g, 'STUB'))
    .join('\n');
}

/** The chart's define names and their bodies (from _helpers.tpl). */
function defines(): Map<string, string> {
  const out = new Map<string, string>();
  for (const text of templates.values()) {
    for (const m of text.matchAll(/\{\{-?\s*define\s+"([^"]+)"\s*-?\}\}([\s\S]*?)\{\{-?\s*end\s*-?\}\}\n(?=\n|\{\{-?\s*define|\{\{\/\*|$)/g)) out.set(m[1]!, m[2]!);
  }
  return out;
}

describe('values.schema.json', () => {
  it('accepts the chart’s values.yaml', () => {
    expect(validate(values), JSON.stringify(validate.errors, null, 2)).toBe(true);
  });

  const examples = readdirSync(join(CHART, 'ci')).filter((f) => f.endsWith('.yaml'));
  it.each(examples)('accepts the example values ci/%s', (file) => {
    const v = withValues(YAML.parse(read(`ci/${file}`)));
    expect(validate(v), JSON.stringify(validate.errors, null, 2)).toBe(true);
  });

  it.each([
    ['a misspelt top-level key', { modle: { name: 'x' } }],
    ['a port that is not a number', { model: { openaiPort: '8000a' } }],
    ['a port out of range', { service: { openaiPort: 70000 } }],
    ['an env value that is not a string', { env: [{ name: 'NIM_MAX_MODEL_LEN', value: 8192 }] }],
    ['a zero failure threshold', { startupProbe: { failureThreshold: 0 } }],
    ['MPIJob multi-node', { multiNode: { enabled: true, leaderWorkerSet: { enabled: false } } }],
    ['a one-pod multi-node group', { multiNode: { workers: 1 } }],
    ['an unknown log level', { model: { logLevel: 'LOUD' } }],
    ['a bad GPU quantity', { resources: { limits: { 'nvidia.com/gpu': 'eight' } } }],
  ])('rejects %s', (_what, over) => {
    expect(validate(withValues(over))).toBe(false);
  });
});

describe('templates', () => {
  it('use only .Values paths that values.yaml defines', () => {
    const missing: string[] = [];
    for (const [file, text] of templates) {
      for (const m of text.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
        let node: unknown = values;
        for (const key of m[1]!.slice(1).split('.')) {
          if (!isObj(node) || !(key in node)) {
            missing.push(`${file}: .Values${m[1]}`);
            break;
          }
          node = node[key];
        }
      }
    }
    expect(missing).toEqual([]);
  });

  it('include only defined templates, and close every block', () => {
    const defined = defines();
    expect(defined.size).toBeGreaterThan(5);
    for (const [file, text] of templates) {
      for (const m of text.matchAll(/\b(?:include|template)\s+"([^"]+)"/g)) expect(defined.has(m[1]!), `${file}: ${m[1]}`).toBe(true);
      const opened = [...text.matchAll(/\{\{-?\s*(?:if|range|with|define)\b/g)].length;
      const closed = [...text.matchAll(/\{\{-?\s*end\s*-?\}\}/g)].length;
      expect(closed, `${file}: blocks opened vs. closed`).toBe(opened);
    }
  });

  it.each(manifests)('%s parses as YAML once actions are stubbed, each document a Kubernetes object', (file) => {
    const docs = YAML.parseAllDocuments(stub(templates.get(file)!));
    for (const d of docs) expect(d.errors.map((e) => e.message)).toEqual([]);
    const objects = docs.map((d) => d.toJS() as Obj | null).filter((o): o is Obj => o !== null);
    expect(objects.length).toBeGreaterThan(0);
    for (const o of objects) {
      expect(o.apiVersion, file).toBeTruthy();
      expect(o.kind, file).toBeTruthy();
      expect((o.metadata as Obj | undefined)?.name, file).toBeTruthy();
    }
  });

  it('the helpers’ bodies parse as YAML fragments once stubbed', () => {
    for (const [name, body] of defines()) {
      if (['portico.name', 'portico.fullname', 'portico.chart', 'portico.serviceAccountName', 'portico.image', 'portico.workloadKind'].includes(name)) continue; // scalars
      const doc = YAML.parseDocument(stub(body));
      expect(doc.errors.map((e) => e.message), name).toEqual([]);
    }
  });
});

describe('what a NIM user finds (nim-llm values) and what the chart does with them', () => {
  const at = (path: string): unknown => path.split('.').reduce<unknown>((n, k) => (isObj(n) ? n[k] : undefined), values);

  it('has nim-llm’s values where the two charts overlap', () => {
    const nimLlm = [
      'image.repository', 'image.tag', 'image.pullPolicy', 'imagePullSecrets', 'replicaCount', 'env', 'customCommand', 'customArgs',
      'extraVolumes', 'extraVolumeMounts', 'initContainers.extraInit', 'podSecurityContext.runAsUser', 'containerSecurityContext',
      'nodeSelector', 'affinity', 'tolerations', 'resources.limits', 'serviceAccount.create', 'statefulSet.enabled',
      'model.name', 'model.nimCache', 'model.ngcAPISecret', 'model.openaiPort', 'model.labels', 'model.jsonLogging', 'model.logLevel',
      'persistence.enabled', 'persistence.existingClaim', 'persistence.storageClass', 'persistence.accessMode', 'persistence.size',
      'persistence.stsPersistentVolumeClaimRetentionPolicy.whenDeleted', 'persistence.annotations', 'hostPath.enabled', 'nfs.enabled',
      'livenessProbe.path', 'livenessProbe.method', 'readinessProbe.path', 'startupProbe.path', 'startupProbe.failureThreshold',
      'service.type', 'service.openaiPort', 'service.name', 'ingress.enabled', 'ingress.hosts', 'ingress.tls',
      'metrics.enabled', 'metrics.serviceMonitor.enabled', 'metrics.serviceMonitor.additionalLabels',
      'autoscaling.enabled', 'autoscaling.minReplicas', 'autoscaling.maxReplicas', 'autoscaling.metrics',
      'multiNode.enabled', 'multiNode.workers', 'multiNode.gpusPerNode', 'multiNode.clusterStartTimeout', 'multiNode.leaderWorkerSet.enabled',
    ];
    expect(nimLlm.filter((p) => at(p) === undefined)).toEqual([]);
  });

  it('probes: liveness on nginx’s /v1/health/live; readiness and a long startup probe on /v1/health/ready', () => {
    expect(at('livenessProbe.path')).toBe('/v1/health/live');
    expect(at('readinessProbe.path')).toBe('/v1/health/ready');
    expect(at('startupProbe.path')).toBe('/v1/health/ready');
    // Big downloads: at least 30 minutes before the kubelet gives up on a starting pod.
    expect(Number(at('startupProbe.failureThreshold')) * Number(at('startupProbe.periodSeconds'))).toBeGreaterThanOrEqual(1800);
    const helpers = templates.get('_helpers.tpl')!;
    expect(helpers).toMatch(/livenessProbe:[\s\S]*?httpGet:[\s\S]*?path: \{\{ \.Values\.livenessProbe\.path \}\}/);
  });

  it('service on 8000, a GPU per pod, /dev/shm, the cache at NIM_CACHE_PATH=/opt/nim/.cache', () => {
    expect(at('service.openaiPort')).toBe(8000);
    expect(at('model.openaiPort')).toBe(8000);
    expect((at('resources.limits') as Obj)['nvidia.com/gpu']).toBe(1);
    expect(at('shm.enabled')).toBe(true);
    expect(at('model.nimCache')).toBe('/opt/nim/.cache');
    const helpers = templates.get('_helpers.tpl')!;
    expect(helpers).toContain('mountPath: /dev/shm');
    expect(helpers).toMatch(/- name: NIM_CACHE_PATH\n\s+value: \{\{ \.Values\.model\.nimCache \| quote \}\}/);
  });

  it('multi-node: a LeaderWorkerSet whose leader runs --ray-head and workers --ray-worker $(LWS_LEADER_ADDRESS)', () => {
    const [lws] = YAML.parseAllDocuments(stub(templates.get('leaderworkerset.yaml')!)).map((d) => d.toJS() as Obj);
    expect(lws).toMatchObject({ apiVersion: 'leaderworkerset.x-k8s.io/v1', kind: 'LeaderWorkerSet' });
    const tpl = (lws!.spec as Obj).leaderWorkerTemplate as Obj;
    const container = (t: string) => (((tpl[t] as Obj).spec as Obj).containers as Obj[])[0]!;
    expect(container('leaderTemplate').args).toEqual(['serve', '--ray-head']);
    expect(container('workerTemplate').args).toEqual(['serve', '--ray-worker', '$(LWS_LEADER_ADDRESS)']);
    const leaderEnv = (container('leaderTemplate').env as Obj[]).map((e) => e.name);
    expect(leaderEnv).toEqual(expect.arrayContaining(['NIM_NUM_COMPUTE_NODES', 'NIM_GPUS_PER_NODE', 'NIM_CLUSTER_START_TIMEOUT', 'NIM_RAY_PORT']));
    expect(tpl.restartPolicy).toBe('RecreateGroupOnPodRestart');
  });

  it('autoscaling defaults to the queue (num_requests_waiting), not CPU', () => {
    const metrics = at('autoscaling.metrics') as Obj[];
    expect(metrics[0]).toMatchObject({ type: 'Pods', pods: { metric: { name: 'num_requests_waiting' } } });
  });
});
