// SSRF-safe image fetching (CVE-2025-6242 is what an engine fetching URLs itself looks like).
//
// Every hop is checked twice over: checkUrl() judges the URL before a request is made, and the
// Agent's connector resolves the name itself, judges every address, then dials the address it
// judged — there is no second DNS lookup for a rebinding attacker to answer differently. Redirects
// are followed here, one checked hop at a time; undici never follows them on its own.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Agent, buildConnector, request } from 'undici';
import type { Dispatcher } from 'undici';
import type { MediaPolicy } from './policy.js';
import { addressRefusal, checkUrl, type UrlRules } from './address-policy.js';
import { MediaRefusal, blocked, fetchFailed, tooLarge } from './refusal.js';


export type ResolvedAddress = { address: string; family: 4 | 6 };
export type Resolver = (host: string) => Promise<ResolvedAddress[]>;
/** undici's connector: called with `hostname` already replaced by the checked IP address. */
export type Connector = buildConnector.connector;

export interface SafeFetchDeps extends UrlRules {
  resolve?: Resolver;
  connect?: Connector;
  userAgent?: string;
}

export interface Fetched {
  bytes: Buffer;
  /** The URL the bytes came from, after redirects. */
  url: string;
  cacheControl: string | undefined;
}

export interface SafeFetcher {
  fetch(url: URL, signal?: AbortSignal): Promise<Fetched>;
  close(): Promise<void>;
}

/** Some image hosts answer 403 to requests without one. */
export const USER_AGENT = 'portico-media/0.1';
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
// Formats the engines decode first; WebP last because llama.cpp (stb_image) cannot decode it.
const ACCEPT = 'image/png,image/jpeg,image/gif,image/bmp,image/webp;q=0.8,*/*;q=0.5';

const systemResolve: Resolver = async (host) =>
  (await lookup(host, { all: true, verbatim: true })) as ResolvedAddress[];

/**
 * Connector that pins each connection to an address that passed the policy. A name resolving to
 * any refused address is refused outright (a name with one public and one private address is an
 * attack more often than a deployment).
 */
export function pinnedConnector(policy: MediaPolicy, resolve: Resolver, dial: Connector): Connector {
  const pick = async (hostname: string): Promise<string> => {
    if (isIP(hostname)) {
      const why = addressRefusal(hostname, policy.allowPrivateNetworks);
      if (why) throw blocked('blocked_address', why);
      return hostname;
    }
    let addresses: ResolvedAddress[];
    try {
      addresses = await resolve(hostname);
    } catch (err) {
      throw fetchFailed('network', `could not resolve host ${hostname}`, err);
    }
    if (addresses.length === 0) throw fetchFailed('network', `could not resolve host ${hostname}`);
    for (const { address } of addresses) {
      // Not naming the address: it would let a client map internal DNS through error messages.
      if (addressRefusal(address, policy.allowPrivateNetworks)) {
        throw blocked('blocked_address', `host ${hostname} resolves to a non-public address`);
      }
    }
    return addresses[0]!.address;
  };
  return (opts, callback) => {
    pick(opts.hostname).then(
      (address) => {
        // SNI and certificate checks use the name; only the socket goes to the pinned address.
        const servername = opts.servername || (isIP(opts.hostname) ? undefined : opts.hostname);
        dial({ ...opts, hostname: address, ...(servername ? { servername } : {}) }, callback);
      },
      (err: Error) => callback(err, null),
    );
  };
}

export function createSafeFetcher(policy: MediaPolicy, deps: SafeFetchDeps = {}): SafeFetcher {
  const timeout = policy.fetchTimeoutMs;
  const dial = deps.connect ?? buildConnector({ timeout });
  const agent = new Agent({
    connect: pinnedConnector(policy, deps.resolve ?? systemResolve, dial),
    headersTimeout: timeout,
    bodyTimeout: timeout,
    keepAliveTimeout: 4_000,
  });
  const headers = { 'user-agent': deps.userAgent ?? USER_AGENT, accept: ACCEPT };

  async function fetchOnce(start: URL, signal: AbortSignal): Promise<Fetched> {
    let url = start;
    for (let hop = 0; ; hop++) {
      try {
        checkUrl(url, policy, deps);
      } catch (err) {
        if (hop > 0 && err instanceof MediaRefusal) {
          throw new MediaRefusal(err.code, err.reason, `redirected to ${url.origin}: ${err.message}`);
        }
        throw err;
      }
      const res = await request(url, { dispatcher: agent, method: 'GET', headers, signal });
      if (REDIRECTS.has(res.statusCode)) {
        drop(res);
        const location = header(res, 'location');
        if (!location) throw fetchFailed('upstream_status', `upstream answered ${res.statusCode} without a Location`);
        if (hop >= policy.maxRedirects) {
          throw fetchFailed('too_many_redirects', `more than ${policy.maxRedirects} redirects`);
        }
        try {
          url = new URL(location, url);
        } catch {
          throw fetchFailed('upstream_status', `upstream redirected to an invalid URL`);
        }
        continue;
      }
      if (res.statusCode < 200 || res.statusCode > 299) {
        drop(res);
        throw fetchFailed('upstream_status', `upstream answered ${res.statusCode}`);
      }
      const bytes = await readLimited(res, policy.maxBytes);
      return { bytes, url: url.href, cacheControl: header(res, 'cache-control') };
    }
  }

  return {
    async fetch(url, signal) {
      // One deadline for the whole fetch, redirects and body included; the agent's own connect,
      // header and body timeouts are per phase and would let a trickling server run far longer.
      const deadline = new AbortController();
      const timer = setTimeout(() => deadline.abort(new Error('media fetch deadline')), timeout);
      const combined = signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal;
      try {
        return await fetchOnce(url, combined);
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (err instanceof MediaRefusal) throw err;
        throw networkRefusal(err, deadline.signal.aborted, timeout);
      } finally {
        clearTimeout(timer);
      }
    },
    close: () => agent.close(),
  };
}

async function readLimited(res: Dispatcher.ResponseData, maxBytes: number): Promise<Buffer> {
  const declared = Number(header(res, 'content-length') ?? NaN);
  if (declared > maxBytes) {
    drop(res);
    throw tooLarge(`image is ${declared} bytes, over the limit of ${maxBytes} bytes`);
  }
  // Content-Length may be absent or lie: count what actually arrives and stop past the limit.
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) {
      // Leaving the loop destroys the body and with it the connection: nothing more is read.
      throw tooLarge(`image is larger than the limit of ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

/**
 * Let go of a body we will not use: a small one is drained in the background so the connection
 * can be reused, a large or endless one is cut off (dump() destroys past its limit).
 */
function drop(res: Dispatcher.ResponseData): void {
  res.body.dump({ limit: 16 * 1024 }).catch(() => {});
}

function header(res: Dispatcher.ResponseData, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function networkRefusal(err: unknown, deadlineHit: boolean, timeoutMs: number): MediaRefusal {
  const code = (err as { code?: unknown })?.code;
  if (deadlineHit || (typeof code === 'string' && TIMEOUT_CODES.has(code))) {
    return fetchFailed('timeout', `timed out after ${timeoutMs} ms`, err);
  }
  const reason =
    code === 'ECONNREFUSED'
      ? 'connection refused'
      : code === 'ECONNRESET' || code === 'UND_ERR_SOCKET'
        ? 'connection closed by the server'
        : typeof code === 'string' && /CERT|TLS|SSL/.test(code)
          ? `TLS error (${code})`
          : `network error${typeof code === 'string' ? ` (${code})` : ''}`;
  return fetchFailed('network', reason, err);
}
