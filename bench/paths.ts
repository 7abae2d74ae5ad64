// The four ways a request reaches the fake upstream, each started as its own process:
//   direct  — the client talks to the upstream itself (the floor every other path is held to)
//   nginx   — Debian's nginx, proxy_pass with upstream keepalive, one worker
//   portico — `node dist/serve/main.js serve` with NIM_ENGINE_URL (spawns no engine)
//   portkey — Portkey's gateway from npm, provider openai, custom host = the upstream
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { benchConfig, porticoEntry } from './config.js';
import { BENCH_MODEL } from './fake-upstream.js';
import { freePort, httpStatus, startChild, waitUntil, type Child } from './proc.js';

/** `candidate`: a second portico build (BENCH_CANDIDATE_DIST=/path/to/dist), measured interleaved with the first. */
/** `floor`: bench/floor.ts, Hono + node-server + undici with nothing else (only with --paths …,floor). */
export type PathName = 'direct' | 'nginx' | 'portico' | 'candidate' | 'floor' | 'portkey';
export const PATH_LABELS: Record<PathName, string> = {
  direct: 'direct',
  nginx: 'nginx',
  portico: 'portico',
  candidate: 'portico′',
  floor: 'Hono floor',
  portkey: 'Portkey',
};

export interface BenchPath {
  name: PathName;
  /** Origin the client talks to, e.g. http://127.0.0.1:8001 */
  origin: string;
  /** Headers every request on this path carries (Portkey's routing headers). */
  headers: Record<string, string>;
  /** The process whose memory is the path's cost (nginx: the master, its workers are summed). */
  pid: number;
  child?: Child;
  stop(): Promise<void>;
}

export const CHAT_PATH = '/v1/chat/completions';
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export function chatBody(opts: { stream?: boolean; maxTokens?: number } = {}): string {
  return JSON.stringify({
    model: BENCH_MODEL,
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: 'Say hello in one short sentence.' },
    ],
    max_tokens: opts.maxTokens ?? 16,
    ...(opts.stream ? { stream: true } : {}),
  });
}

export function direct(upstreamPort: number, upstreamPid: number): BenchPath {
  return { name: 'direct', origin: `http://127.0.0.1:${upstreamPort}`, headers: {}, pid: upstreamPid, stop: async () => {} };
}

export async function startNginx(nginx: string, workDir: string, upstreamPort: number, maxFiles: number): Promise<BenchPath> {
  const port = await freePort();
  const dir = join(workDir, 'nginx');
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const conf = nginxConf({ port, upstreamPort, dir, maxFiles });
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child = startChild('nginx', nginx, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')]);
  const origin = `http://127.0.0.1:${port}`;
  await waitUntil('nginx to answer', async () => (await httpStatus(`${origin}/health`)) === 200, 10_000, child);
  return { name: 'nginx', origin, headers: {}, pid: child.pid, child, stop: () => child.stop() };
}

/**
 * The baseline a user would write: proxy_pass with an upstream keepalive pool, HTTP/1.1 to the
 * upstream, no response buffering (streams must flow), no access log. One worker: each gateway
 * measured here is one process on one event loop, so each gets the same share of the 2 cores.
 */
export function nginxConf(o: { port: number; upstreamPort: number; dir: string; maxFiles: number }): string {
  const user = userInfo().username;
  return `# portico bench baseline (generated): nginx proxy_pass with upstream keepalive
daemon off;
master_process on;
worker_processes 1;
${user === 'root' ? 'user root;' : ''}
pid ${o.dir}/nginx.pid;
error_log ${o.dir}/error.log error;
worker_rlimit_nofile ${o.maxFiles};
events {
  worker_connections ${Math.max(1024, o.maxFiles - 100)};
}
http {
  access_log off;
  client_body_temp_path ${o.dir}/tmp/body;
  proxy_temp_path ${o.dir}/tmp/proxy;
  fastcgi_temp_path ${o.dir}/tmp/fastcgi;
  uwsgi_temp_path ${o.dir}/tmp/uwsgi;
  scgi_temp_path ${o.dir}/tmp/scgi;
  keepalive_requests 1000000;
  upstream fake_openai {
    server 127.0.0.1:${o.upstreamPort};
    keepalive 256;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${o.port} backlog=4096;
    location / {
      proxy_pass http://fake_openai;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 600s;
    }
  }
}
`;
}

export async function startPortico(upstreamPort: number, as: 'portico' | 'candidate' = 'portico'): Promise<BenchPath> {
  const port = await freePort();
  const env = {
    ...process.env,
    NIM_ENGINE_URL: `http://127.0.0.1:${upstreamPort}`,
    NIM_SERVED_MODEL_NAME: BENCH_MODEL,
    NIM_SERVER_HOST: '127.0.0.1',
    NIM_SERVER_PORT: String(port),
    NIM_LOG_LEVEL: 'ERROR',
    // The 2,000-stream figure needs 2,000 admitted at once (the default admits 256).
    NIM_MAX_CONCURRENT_REQUESTS: '4096',
  };
  // BENCH_PORTICO_DIST: measure another build as `portico`; BENCH_CANDIDATE_DIST: add one beside it.
  const cfg = benchConfig();
  const dist = (as === 'candidate' ? cfg.BENCH_CANDIDATE_DIST : cfg.BENCH_PORTICO_DIST) ?? join(ROOT, 'dist');
  const child = startChild(as, process.execPath, [...nodeFlags(as), porticoEntry(dist), 'serve'], { env });
  const origin = `http://127.0.0.1:${port}`;
  await waitUntil(`${as} to be ready (/v1/health/ready)`, async () => (await httpStatus(`${origin}/v1/health/ready`)) === 200, 30_000, child);
  return { name: as, origin, headers: {}, pid: child.pid, child, stop: () => child.stop() };
}

export async function startFloor(upstreamPort: number): Promise<BenchPath> {
  const port = await freePort();
  const env = { ...process.env, NIM_ENGINE_URL: `http://127.0.0.1:${upstreamPort}`, NIM_SERVER_HOST: '127.0.0.1', NIM_SERVER_PORT: String(port) };
  const child = startChild('floor', process.execPath, [join(ROOT, 'dist/bench/floor.js')], { env });
  const origin = `http://127.0.0.1:${port}`;
  await waitUntil('the floor app to answer', async () => (await httpStatus(`${origin}/v1/health/ready`)) === 200, 30_000, child);
  return { name: 'floor', origin, headers: {}, pid: child.pid, child, stop: () => child.stop() };
}

export async function startPortkey(entry: string, cwd: string, upstreamPort: number): Promise<BenchPath> {
  const port = await freePort();
  const child = startChild('portkey', process.execPath, [...nodeFlags('portkey'), entry, `--port=${port}`, '--headless'], { cwd });
  const origin = `http://127.0.0.1:${port}`;
  const headers = {
    'x-portkey-provider': 'openai',
    'x-portkey-custom-host': `http://127.0.0.1:${upstreamPort}/v1`,
    authorization: 'Bearer sk-bench-not-a-key',
  };
  await waitUntil(
    'Portkey to answer',
    async () => {
      const r = await request(`${origin}${CHAT_PATH}`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: chatBody(),
        headersTimeout: 2000,
      });
      await r.body.text();
      return r.statusCode === 200;
    },
    30_000,
    child,
  );
  return { name: 'portkey', origin, headers, pid: child.pid, child, stop: () => child.stop() };
}

/** Where BENCH_CPU_PROF profiles land (outside the repository: they are large). */
export const PROFILE_DIR = join(tmpdir(), 'portico-bench-profiles');

/** `--cpu-prof` for the gateway named in BENCH_CPU_PROF (portico or portkey). */
function nodeFlags(name: string): string[] {
  const want = benchConfig().BENCH_CPU_PROF;
  if (want !== name) return [];
  const dir = PROFILE_DIR;
  mkdirSync(dir, { recursive: true });
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`];
}

/** One request of each kind through the path: a wrong answer must fail the run, not be timed. */
export async function checkPath(p: BenchPath): Promise<void> {
  const json = await request(`${p.origin}${CHAT_PATH}`, {
    method: 'POST',
    headers: { ...p.headers, 'content-type': 'application/json' },
    body: chatBody(),
  });
  const text = await json.body.text();
  if (json.statusCode !== 200 || !text.includes('"chat.completion"')) {
    throw new Error(`${p.name}: chat completion answered ${json.statusCode}: ${text.slice(0, 300)}`);
  }
  const sse = await request(`${p.origin}${CHAT_PATH}`, {
    method: 'POST',
    headers: { ...p.headers, 'content-type': 'application/json' },
    body: chatBody({ stream: true, maxTokens: 3 }),
  });
  const events = await sse.body.text();
  const chunks = events.match(/"content":"@\d+"/g)?.length ?? 0;
  if (sse.statusCode !== 200 || chunks !== 3 || !events.includes('[DONE]')) {
    throw new Error(`${p.name}: stream answered ${sse.statusCode} with ${chunks} of 3 chunks: ${events.slice(0, 300)}`);
  }
}
