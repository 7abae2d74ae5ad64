// Debian's `prometheus` package in tests: `promtool check metrics` on an exposition, and a real
// Prometheus server (loopback, temporary storage) that scrapes a target and answers queries.
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../core/net.js';

export const PROMETHEUS_HINT = 'needs Debian\'s prometheus package (promtool, prometheus): apt-get install -y prometheus (.ci/run does)';

export interface PromtoolResult {
  /** 0: clean; 3: lint problems only; 1: the text does not parse. */
  exitCode: number;
  /** One entry per lint problem: `<metric> <text>`. */
  problems: string[];
  /** Parse errors ("error while linting: ..."). */
  errors: string[];
}

export async function promtoolCheck(text: string): Promise<PromtoolResult> {
  const r = await execa('promtool', ['check', 'metrics'], { input: text, reject: false });
  if (r.failed && r.exitCode === undefined) throw new Error(`promtool did not run (${r.shortMessage}): ${PROMETHEUS_HINT}`);
  const lines = `${r.stderr}\n${r.stdout}`.split('\n').map((l) => l.trim()).filter(Boolean);
  const errors = lines.filter((l) => /^error while linting/i.test(l));
  return { exitCode: r.exitCode ?? -1, problems: lines.filter((l) => !errors.includes(l)), errors };
}


export interface PrometheusServer {
  url: string;
  proc: ResultPromise;
  output(): string;
  /** PromQL instant query → the result vector. */
  query(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** Poll (bounded) until `q` returns at least one series. */
  waitFor(q: string, attempts?: number): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  stop(): Promise<void>;
}

export interface ScrapeTarget {
  /** host:port */
  target: string;
  metricsPath: string;
  bearer?: string;
}

/** Start Prometheus scraping one target every second. */
export async function startPrometheus(t: ScrapeTarget): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), 'portico-prom-'));
  const port = await freePort();
  const auth = t.bearer ? `    authorization:\n      type: Bearer\n      credentials: ${JSON.stringify(t.bearer)}\n` : '';
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: portico\n    metrics_path: ${t.metricsPath}\n${auth}    static_configs:\n      - targets: [${JSON.stringify(t.target)}]\n`,
  );
  let out = '';
  const proc = execa(
    'prometheus',
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { reject: false, all: true, buffer: false, forceKillAfterDelay: 5000 },
  );
  proc.all?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const url = `http://127.0.0.1:${port}`;
  let exited = false;
  void proc.then(() => (exited = true));
  const query = async (q: string) => {
    const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(q)}`);
    const j = (await r.json()) as { status: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] }; error?: string };
    if (j.status !== 'success') throw new Error(`prometheus query ${q}: ${j.error ?? r.status}`);
    return j.data?.result ?? [];
  };
  const server: PrometheusServer = {
    url,
    proc,
    output: () => out,
    query,
    async waitFor(q, attempts = 300) {
      for (let i = 0; i < attempts; i++) {
        if (exited) throw new Error(`prometheus exited:\n${out}`);
        const r = await query(q).catch(() => []);
        if (r.length) return r;
        await new Promise((res) => setTimeout(res, 200));
      }
      throw new Error(`prometheus never returned ${q}; targets: ${await fetch(`${url}/api/v1/targets`).then((r) => r.text(), () => '?')}\n${out}`);
    },
    async stop() {
      if (!exited) proc.kill('SIGTERM');
      await proc;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  for (let i = 0; i < 300; i++) {
    if (exited) throw new Error(`prometheus exited at start:\n${out}`);
    if (await fetch(`${url}/-/ready`).then((r) => r.ok, () => false)) return server;
    await new Promise((res) => setTimeout(res, 100));
  }
  await server.stop();
  throw new Error(`prometheus was not ready in 30 s:\n${out}`);
}
