// API keys (NIM_API_KEYS, NIM_API_KEYS_FILE): who may call portico, which models each key may use,
// and each key's rate limits. Deny by default: when keys are configured, every request needs one
// except the routes the table marks `public` (health probes), unknown paths included, so routes
// cannot be probed. Keys are held and compared as SHA-256 digests in constant time; only a short
// fingerprint (8 hex digits of the digest) is ever logged.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Context } from 'hono';
import { PorticoError } from '../core/errors.js';

export interface ApiKey {
  /** Fingerprint: the first 8 hex digits of the key's SHA-256. Safe to log. */
  id: string;
  /** Full SHA-256 hex of the key: identifies it across reloads (rate-limit buckets). */
  hash: string;
  /** Optional label from the keys file (`name=...`). */
  name?: string;
  /** Models this key may use; null = every model. */
  models: readonly string[] | null;
  /** Requests per minute; 0 = unlimited. */
  rpm: number;
  /** Tokens per minute; 0 = unlimited. */
  tpm: number;
}

declare module 'hono' {
  interface ContextVariableMap {
    /** The caller's key, set by the auth middleware when keys are configured. */
    apiKey: ApiKey | undefined;
  }
}

/** Paths of the metrics routes, opened without a key by NIM_METRICS_PUBLIC=1. */
export const METRICS_PATHS: ReadonlySet<string> = new Set(['/v1/metrics', '/metrics']);

interface LogLike {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

interface Entry {
  digest: Buffer;
  key: ApiKey;
}

export interface KeyStoreOptions {
  /** Keys from NIM_API_KEYS: unscoped, with the default limits. */
  keys?: readonly string[];
  /** NIM_API_KEYS_FILE: one key per line, see parseKeysFile. */
  file?: string;
  /** Default per-key limits (NIM_RATE_LIMIT_RPM / _TPM). */
  defaults?: { rpm?: number; tpm?: number };
  log?: LogLike;
}

const signature = (st: Stats): string => `${st.mtimeMs}:${st.ctimeMs}:${st.size}:${st.ino}`;
const digestOf = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest();
/** Keys and bearer tokens: visible ASCII, no spaces. */
const KEY_CHARS = /^[\x21-\x7e]+$/;

export class KeyStore {
  private entries: Entry[] = [];
  private readonly opts: KeyStoreOptions;
  /** The keys file's identity (mtime, size, inode) when last read: a change means reload. */
  private fileSig: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;

  /** Throws (with a message naming the file and line, never a key) if the keys file is unusable. */
  constructor(opts: KeyStoreOptions = {}) {
    this.opts = opts;
    this.entries = this.load();
    this.started = true;
    this.opts.log?.info(this.describe());
  }
  private started = false;

  /** Auth is on when any key is given or a keys file is configured (an empty file locks everything). */
  get enabled(): boolean {
    return this.entries.length > 0 || this.opts.file !== undefined;
  }

  get size(): number {
    return this.entries.length;
  }

  /** Fingerprints of the loaded keys. */
  fingerprints(): string[] {
    return this.entries.map((e) => e.key.id);
  }

  /** The key whose digest equals the token's; every stored digest is compared (constant time). */
  verify(token: string): ApiKey | undefined {
    const d = digestOf(token);
    let found: ApiKey | undefined;
    for (const e of this.entries) {
      if (timingSafeEqual(e.digest, d) && found === undefined) found = e.key;
    }
    return found;
  }

  /**
   * Re-read the keys file (SIGHUP or a change on disk). A file that cannot be read or parsed keeps
   * the keys already loaded: a broken edit must not open (or lock) the server. Returns success.
   */
  reload(reason = 'reload'): boolean {
    try {
      this.entries = this.load();
      this.opts.log?.info(`${this.describe()} (${reason})`);
      return true;
    } catch (err) {
      this.opts.log?.error(`API keys not reloaded (${reason}), keeping the ${this.entries.length} loaded: ${(err as Error).message}`);
      return false;
    }
  }

  /**
   * Reload when the keys file changes. Polls the file's mtime/size/inode against what was last
   * read (robust across editors' rename-on-save, ConfigMap symlink swaps and network volumes;
   * no change can slip between reading and watching). A broken file is reported once per change.
   */
  watch(intervalMs = 2000): void {
    if (!this.opts.file || this.timer) return;
    this.timer = setInterval(() => void this.poll(), intervalMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async poll(): Promise<void> {
    const file = this.opts.file;
    if (!file || this.polling) return;
    this.polling = true;
    try {
      const sig = await stat(file).then(signature, () => 'missing');
      if (sig !== this.fileSig) {
        this.fileSig = sig; // even if the reload fails: report a broken file once, not every poll
        this.reload('file changed');
      }
    } finally {
      this.polling = false;
    }
  }

  private load(): Entry[] {
    const rpm = this.opts.defaults?.rpm ?? 0;
    const tpm = this.opts.defaults?.tpm ?? 0;
    const byHash = new Map<string, Entry>();
    const add = (secret: string, spec: Omit<ApiKey, 'id' | 'hash'>) => {
      const digest = digestOf(secret);
      const hash = digest.toString('hex');
      byHash.set(hash, { digest, key: { id: hash.slice(0, 8), hash, ...spec } });
    };
    for (const [i, k] of (this.opts.keys ?? []).entries()) {
      if (!KEY_CHARS.test(k)) throw new Error(`NIM_API_KEYS: key #${i + 1} has spaces or non-ASCII characters`);
      add(k, { models: null, rpm, tpm });
    }
    if (this.opts.file !== undefined) {
      let text: string;
      try {
        this.fileSig = signature(statSync(this.opts.file));
        text = readFileSync(this.opts.file, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        // Deleted (or a dangling link) after start: fail closed, as an empty file would, not keep
        // the keys of a file someone removed. At start, a missing file stops the launch.
        if (code !== 'ENOENT' || !this.started) throw new Error(`NIM_API_KEYS_FILE=${this.opts.file}: cannot read (${code})`);
        this.fileSig = 'missing';
        this.opts.log?.error(`NIM_API_KEYS_FILE=${this.opts.file} is gone (deleted or a dangling link): its keys are revoked, protected routes refuse them until the file is back`);
        text = '';
      }
      // A key listed again (or also in NIM_API_KEYS) takes the file's last line for it.
      for (const line of parseKeysFile(text, this.opts.file, { rpm, tpm })) add(line.secret, line.spec);
    }
    return [...byHash.values()];
  }

  private describe(): string {
    const src = [this.opts.keys?.length ? 'NIM_API_KEYS' : '', this.opts.file ? this.opts.file : ''].filter(Boolean).join(' + ');
    if (!this.enabled) return 'API keys: none configured, authentication is off';
    return `API keys: ${this.entries.length} loaded from ${src} [${this.fingerprints().join(', ')}]`;
  }
}

export interface KeyLine {
  secret: string;
  spec: Omit<ApiKey, 'id' | 'hash'>;
}

/**
 * The keys file: one key per line; blank lines and `#` comments (whole line, or after a space)
 * are ignored. Options may follow the key, separated by spaces:
 *
 *     sk-team-a-0123456789                       # any model, default limits
 *     sk-team-b-abcdef     models=llama-3.1-8b,llama-3.1-8b-lora  rpm=60 tpm=100000 name=team-b
 *
 * models= comma-separated model names the key may use (others: 403); rpm= / tpm= requests and
 * tokens per minute (0 = unlimited; absent: NIM_RATE_LIMIT_RPM / _TPM); name= a label for logs.
 * Errors name the line number, never the key.
 */
export function parseKeysFile(text: string, source = 'keys file', defaults: { rpm: number; tpm: number } = { rpm: 0, tpm: 0 }): KeyLine[] {
  const out: KeyLine[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (const [i, rawLine] of lines.entries()) {
    const line = rawLine.replace(/(^|\s)#.*$/, '').trim();
    if (line === '') continue;
    const where = `${source} line ${i + 1}`;
    const [secret, ...opts] = line.split(/\s+/);
    if (!secret || !KEY_CHARS.test(secret)) throw new Error(`${where}: the key has non-ASCII characters`);
    const spec: KeyLine['spec'] = { models: null, rpm: defaults.rpm, tpm: defaults.tpm };
    for (const opt of opts) {
      const eq = opt.indexOf('=');
      const name = eq > 0 ? opt.slice(0, eq) : opt;
      const value = eq > 0 ? opt.slice(eq + 1) : '';
      switch (name) {
        case 'models': {
          const models = value.split(',').map((m) => m.trim()).filter(Boolean);
          if (models.length === 0) throw new Error(`${where}: models= needs at least one model name`);
          spec.models = models;
          break;
        }
        case 'rpm':
        case 'tpm': {
          if (!/^\d{1,12}$/.test(value)) throw new Error(`${where}: ${name}= must be a whole number`);
          spec[name] = Number(value);
          break;
        }
        case 'name':
          if (value === '') throw new Error(`${where}: name= is empty`);
          spec.name = value;
          break;
        default:
          // Never echo the word: a key with a space in it would print its second half.
          throw new Error(`${where}: word ${opts.indexOf(opt) + 2} is not an option (expected models=, rpm=, tpm=, name=); the key must be one word`);
      }
    }
    out.push({ secret, spec });
  }
  return out;
}

const REALM = 'Bearer realm="portico"';

/**
 * The auth check (the request's guard runs it, gateway/lifecycle.ts): throws the 401 unless the
 * request carries a valid key, and records the caller's key. `publicPaths`: the paths the route
 * table marks public (plus the metrics paths under NIM_METRICS_PUBLIC=1); everything else,
 * unknown paths included, needs a valid key.
 */
export function authCheck(store: KeyStore | undefined, publicPaths: ReadonlySet<string>): (c: Context) => void {
  return (c) => {
    if (!store?.enabled || publicPaths.has(c.req.path)) return;
    const header = c.req.header('authorization');
    // Anthropic clients send the key as `x-api-key` (Authorization wins when both are sent).
    const apiKey = header === undefined ? c.req.header('x-api-key') : undefined;
    if (apiKey !== undefined) {
      const key = KEY_CHARS.test(apiKey.trim()) ? store.verify(apiKey.trim()) : undefined;
      if (!key) throw new PorticoError('invalid_api_key', '', { headers: { 'www-authenticate': `${REALM}, error="invalid_token"` } });
      c.set('apiKey', key);
      return;
    }
    if (header === undefined) {
      throw new PorticoError('missing_api_key', '', { headers: { 'www-authenticate': REALM } });
    }
    const m = /^Bearer +([\x21-\x7e]+) *$/i.exec(header);
    if (!m) {
      throw new PorticoError('invalid_api_key', '', {
        message: 'Malformed Authorization header: expected "Bearer <key>"',
        headers: { 'www-authenticate': `${REALM}, error="invalid_request"` },
      });
    }
    const key = store.verify(m[1]!);
    if (!key) throw new PorticoError('invalid_api_key', '', { headers: { 'www-authenticate': `${REALM}, error="invalid_token"` } });
    c.set('apiKey', key);
  };
}

/** The public paths of a route table: `access: 'public'`, and the metrics routes if opened. */
export function publicPaths(routes: readonly { path: string; access: string }[], opts: { metricsPublic?: boolean } = {}): Set<string> {
  const out = new Set<string>();
  for (const r of routes) {
    if (r.access === 'public' || (opts.metricsPublic && METRICS_PATHS.has(r.path))) out.add(r.path);
  }
  return out;
}

/** May the caller's key use this model? (No key, or an unscoped key: yes.) */
export function canUseModel(c: Context, model: string): boolean {
  const key = c.get('apiKey');
  return !key || key.models === null || key.models.includes(model);
}

/** 403 unless the caller's key may use `model` (checked before the model's existence: no probing). */
export function requireModelAccess(c: Context, model: unknown): void {
  const name = typeof model === 'string' ? model : String(model);
  if (!canUseModel(c, name)) throw new PorticoError('model_not_allowed', `\`${name.slice(0, 200)}\``, { param: 'model' });
}
