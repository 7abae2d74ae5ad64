// compose.yaml against the Compose Specification's JSON schema (vendored in tests/data, see its
// README), as written and after ${VAR:-default} interpolation (what `docker compose` validates), plus
// what the deployment promises: all GPUs reserved, the cache volume, /dev/shm, healthcheck on
// readiness, credentials from .env, the metrics and cpu profiles. .env.example names only known settings.
import { Ajv } from 'ajv';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { SETTING_NAMES } from '../core/config.js';
import { parseModelsFile } from '../launcher/models-file.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

type Service = Record<string, unknown> & {
  image?: string;
  build?: { context: string; target: string };
  profiles?: string[];
  environment?: Record<string, string | null>;
  env_file?: { path: string; required: boolean }[];
  volumes?: string[];
  ports?: string[];
  healthcheck?: { test: string[] };
  deploy?: { resources: { reservations: { devices: { driver: string; count: string | number; capabilities: string[] }[] } } };
};
interface Compose {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
  configs: Record<string, { content: string }>;
}

function validator() {
  const schema = JSON.parse(read('tests/data/compose-spec.json')) as Record<string, unknown>;
  // ajv's draft-07 meta-schema is registered as http://json-schema.org/draft-07/schema#; the file
  // names it with https and no '#', which ajv would try to resolve. The content is draft-07 as declared.
  delete schema.$schema;
  const ajv = new Ajv({ allErrors: true, strict: false });
  return ajv.compile(schema);
}

/** Compose's interpolation for what compose.yaml uses: ${VAR}, ${VAR:-default}, $$. Unset → default or "". */
function interpolate(text: string, env: Record<string, string> = {}): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (m: string, name?: string, def?: string) => {
    if (m === '$$') return '$';
    const v = env[name!];
    return v !== undefined && v !== '' ? v : (def ?? '');
  });
}

describe('compose.yaml', () => {
  const text = read('compose.yaml');
  const compose = YAML.parse(text) as Compose;
  const validate = validator();

  it('is valid against the Compose Specification schema, as written and interpolated', () => {
    expect(validate(YAML.parse(text)), JSON.stringify(validate.errors, null, 2)).toBe(true);
    expect(validate(YAML.parse(interpolate(text))), JSON.stringify(validate.errors, null, 2)).toBe(true);
    expect(validate(YAML.parse(interpolate(text, { PORTICO_PORT: '9000', PORTICO_SHM_SIZE: '32gb' }))), JSON.stringify(validate.errors)).toBe(true);
  });

  it('the schema catches mistakes (it is not vacuous)', () => {
    const bad = YAML.parse(text) as Compose;
    (bad.services.portico as Record<string, unknown>).shm_sise = '16gb';
    expect(validate(bad)).toBe(false);
    const bad2 = YAML.parse(text) as Compose;
    bad2.services.portico!.deploy!.resources.reservations.devices[0]!.capabilities = 'gpu' as unknown as string[];
    expect(validate(bad2)).toBe(false);
  });

  it('`docker compose up` runs portico on the GPU image with every GPU, the cache volume and a sized /dev/shm', () => {
    const p = compose.services.portico!;
    expect(p.profiles).toBeUndefined(); // started by a plain `docker compose up`
    expect(p.build?.target).toBe('gpu');
    expect(p.deploy?.resources.reservations.devices).toEqual([{ driver: 'nvidia', count: 'all', capabilities: ['gpu'] }]);
    expect(p.volumes).toContain('nim-cache:/opt/nim/.cache');
    expect(compose.volumes).toHaveProperty('nim-cache');
    expect(interpolate(String(p.shm_size))).toBe('16gb');
    expect(interpolate(p.ports![0]!)).toBe('8000:8000');
  });

  it('passes NGC_API_KEY, HF_TOKEN and NIM_* from .env (optional file) and from the shell', () => {
    const p = compose.services.portico!;
    expect(p.env_file).toEqual([{ path: '.env', required: false }]);
    expect(p.environment).toHaveProperty('NGC_API_KEY', null);
    expect(p.environment).toHaveProperty('HF_TOKEN', null);
  });

  it('has a healthcheck on /v1/health/ready with a start period for model downloads', () => {
    for (const name of ['portico', 'portico-cpu']) {
      const hc = compose.services[name]!.healthcheck as { test: string[]; start_period: string };
      expect(hc.test.join(' ')).toContain('http://127.0.0.1:8000/v1/health/ready');
      expect(Number.parseInt(hc.start_period, 10)).toBeGreaterThanOrEqual(600);
    }
  });

  it('the metrics profile adds Prometheus scraping portico’s /v1/metrics', () => {
    const prom = compose.services.prometheus!;
    expect(prom.profiles).toEqual(['metrics']);
    const cfg = YAML.parse(compose.configs.prometheus!.content) as { scrape_configs: { metrics_path: string; static_configs: { targets: string[] }[] }[] };
    expect(cfg.scrape_configs[0]!.metrics_path).toBe('/v1/metrics');
    expect(cfg.scrape_configs[0]!.static_configs[0]!.targets).toEqual(expect.arrayContaining(['portico:8000', 'portico-cpu:8000']));
  });

  it('the cpu profile runs the llama.cpp image without GPUs and without the GPU model from .env', () => {
    const cpu = compose.services['portico-cpu']!;
    expect(cpu.profiles).toEqual(['cpu']);
    expect(cpu.build?.target).toBe('cpu');
    expect(cpu.deploy).toBeUndefined();
    expect(cpu.environment).toMatchObject({ NIM_MODEL_NAME: '' });
  });

  it('the models profile runs portico with a models file mounted (the example by default) and names it in NIM_MODELS_FILE', () => {
    const m = compose.services['portico-models']! as Service & { extends?: { service: string } };
    expect(m.profiles).toEqual(['models']);
    expect(m.extends).toEqual({ service: 'portico' });
    expect(m.environment).toMatchObject({ NIM_MODELS_FILE: '/etc/portico/models.yaml' });
    const mount = m.volumes!.map((v) => interpolate(v)).find((v) => v.endsWith(':/etc/portico/models.yaml:ro'));
    expect(mount).toBe('./models.example.yaml:/etc/portico/models.yaml:ro');
    // The example is a valid models file (tests/models-simulation.test.ts plans it on a simulated L40S).
    const entries = parseModelsFile(read('models.example.yaml'), 'models.example.yaml');
    expect(entries.map((e) => [e.name, e.task])).toEqual([
      ['meta/llama-3.1-8b-instruct', 'chat'],
      ['nvidia/llama-3.2-nv-embedqa-1b-v2', 'embedding'],
    ]);
  });

  it('builds targets the Dockerfile defines', () => {
    const stages = [...read('Dockerfile').matchAll(/^FROM\s+\S+\s+AS\s+(\S+)/gim)].map((m) => m[1]);
    for (const s of Object.values(compose.services)) if (s.build) expect(stages).toContain(s.build.target);
  });
});

describe('.env.example', () => {
  // Names the container reads besides the launcher's NIM_* settings (core/config.ts).
  const OTHERS = [
    'HF_TOKEN',
    'NGC_API_KEY',
    // nginx/entrypoint.sh
    'NIM_GATEWAY_PORT',
    'NIM_NGINX',
    'NIM_NGINX_PROXY_TIMEOUT',
    'NIM_NGINX_ACCESS_LOG',
    'NIM_NGINX_WORKER_PROCESSES',
    // compose.yaml's own variables
    'PORTICO_PORT',
    'PORTICO_SHM_SIZE',
    'PORTICO_IMAGE',
    'PORTICO_CPU_IMAGE',
    'PORTICO_CPU_MODEL',
    'PORTICO_MODELS_FILE',
    'PORTICO_MODELS_RESTART',
    'PROMETHEUS_PORT',
    'PROMETHEUS_IMAGE',
  ];

  it('names only settings something reads (set or commented out)', () => {
    const names = [...read('.env.example').matchAll(/^#?\s?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(10);
    const known = new Set<string>([...SETTING_NAMES, ...OTHERS]);
    expect(names.filter((n) => !known.has(n))).toEqual([]);
  });

  it('every ${VAR} compose.yaml interpolates is described in .env.example', () => {
    const used = new Set([...read('compose.yaml').matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]!));
    const example = read('.env.example');
    for (const v of used) expect(example, v).toMatch(new RegExp(`^#?\\s?${v}=`, 'm'));
  });
});
