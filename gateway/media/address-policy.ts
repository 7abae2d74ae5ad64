// Where the gateway may connect to fetch an image: the URL-level rules (scheme, credentials, port,
// allow-listed hosts) and the address-level rule (public unicast only, unless the operator allows
// private networks). Deny by default: an address is allowed only if ipaddr.js calls it `unicast`,
// so every special range it knows (and any it learns later) is refused without a list here.
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import type { MediaPolicy } from './policy.js';
import { blocked } from './refusal.js';


/** Ports fetched from when private networks are not allowed (cross-protocol SSRF otherwise). */
export const DEFAULT_ALLOWED_PORTS: readonly number[] = [80, 443, 8080, 8443];

/** Allowed only with allowPrivateNetworks (air-gapped deployments whose images are internal). */
const PRIVATE_RANGES = new Set(['loopback', 'private', 'carrierGradeNat', 'uniqueLocal', 'deprecatedSiteLocal']);

/** Cloud instance-metadata endpoints: refused even when private networks are allowed. */
const METADATA = new Set(['169.254.169.254', '100.100.100.200', 'fd00:ec2::254']);

const DESCRIBE: Record<string, string> = {
  loopback: 'a loopback address',
  private: 'a private (RFC 1918) address',
  carrierGradeNat: 'a carrier-grade NAT (100.64.0.0/10) address',
  uniqueLocal: 'a unique-local (fc00::/7) address',
  deprecatedSiteLocal: 'a site-local (fec0::/10) address',
  linkLocal: 'a link-local address',
  multicast: 'a multicast address',
  unspecified: 'the unspecified address',
  broadcast: 'the broadcast address',
  teredo: 'a Teredo tunnel address',
  ipv4Compatible: 'an IPv4-compatible IPv6 address',
  nat64Local: 'a local-use NAT64 address',
  metadata: 'a cloud metadata address',
};

interface Classified {
  /** ipaddr.js range name ('unicast' for public), or one of ours. */
  range: string;
  /** Set when the address is an IPv6 wrapping of an IPv4 address (mapped, NAT64, 6to4). */
  embedded?: string;
}

function classify(ip: string): Classified {
  const addr = ipaddr.parse(ip);
  if (addr.kind() === 'ipv4') {
    return { range: METADATA.has(addr.toString()) ? 'metadata' : addr.range() };
  }
  const v6 = addr as ipaddr.IPv6;
  if (METADATA.has(v6.toString())) return { range: 'metadata' };
  const p = v6.parts;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const range = v6.range();
  switch (range) {
    // The kernel (or a NAT64/6to4 gateway) turns these into IPv4 traffic: judge the IPv4 inside.
    case 'ipv4Mapped':
    case 'rfc6145':
      return { ...classify(v4(p[6]!, p[7]!)), embedded: v4(p[6]!, p[7]!) };
    case 'rfc6052':
      // 64:ff9b::/96 embeds the IPv4 in the last 32 bits; 64:ff9b:1::/48 is local-use, prefix unknown.
      if (p[2] !== 0) return { range: 'nat64Local' };
      return { ...classify(v4(p[6]!, p[7]!)), embedded: v4(p[6]!, p[7]!) };
    case '6to4':
      return { ...classify(v4(p[1]!, p[2]!)), embedded: v4(p[1]!, p[2]!) };
    default:
      // ::/96 (IPv4-compatible, deprecated) is `unicast` to ipaddr.js but never a real host.
      if (range === 'unicast' && p[0] === 0 && p[1] === 0 && p[2] === 0 && p[3] === 0 && p[4] === 0 && p[5] === 0) {
        return { range: 'ipv4Compatible' };
      }
      return { range };
  }
}

/**
 * Why `ip` may not be connected to, or undefined if it may. `ip` must be a plain IPv4/IPv6
 * literal (as the URL parser or a resolver produce); anything else is refused.
 */
export function addressRefusal(ip: string, allowPrivateNetworks: boolean): string | undefined {
  if (!isIP(ip)) return `${ip} is not an IP address`;
  const { range, embedded } = classify(ip);
  if (range === 'unicast') return undefined;
  if (allowPrivateNetworks && PRIVATE_RANGES.has(range)) return undefined;
  const what = DESCRIBE[range] ?? `a reserved address (${range})`;
  return embedded ? `${ip} is an IPv6 form of ${embedded}, ${what}` : `${ip} is ${what}`;
}

/** `host` is allowed by NIM_MEDIA_ALLOWED_DOMAINS: exact names and `*.suffix` (subdomains only). */
export function hostAllowed(host: string, allowedDomains: readonly string[]): boolean {
  if (allowedDomains.length === 0) return true;
  const h = normalizeHost(host);
  for (const entry of allowedDomains) {
    const e = normalizeHost(entry);
    if (e.startsWith('*.') ? h.endsWith(e.slice(1)) && h.length > e.length - 1 : h === e) return true;
  }
  return false;
}

const normalizeHost = (host: string) =>
  host.toLowerCase().replace(/\.$/, '').replace(/^\[(.*)\]$/, '$1');

export interface UrlRules {
  allowedPorts?: readonly number[] | 'any';
}

/**
 * URL-level policy for one hop, checked before any connection: http(s) only, no credentials,
 * allowed port, allow-listed host, and (for IP-literal hosts) the address rule. The WHATWG URL
 * parser has already turned odd IPv4 spellings (2130706433, 0177.1, 127.1, 0x7f.1) into dotted
 * quads, so they are judged as the address they are. Names are judged after resolution, in the
 * connector (fetch.ts), on the address actually dialled.
 */
export function checkUrl(url: URL, policy: MediaPolicy, rules: UrlRules = {}): void {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw blocked('blocked_scheme', `only http and https URLs are fetched, not ${url.protocol}`);
  }
  if (url.username !== '' || url.password !== '') {
    throw blocked('blocked_credentials', 'URLs with credentials are not allowed');
  }
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  const ports = rules.allowedPorts ?? (policy.allowPrivateNetworks ? 'any' : DEFAULT_ALLOWED_PORTS);
  if (ports !== 'any' && !ports.includes(port)) throw blocked('blocked_port', `port ${port} is not allowed`);
  if (!hostAllowed(url.hostname, policy.allowedDomains)) {
    throw blocked('blocked_domain', `host ${url.hostname} is not in the allowed domains`);
  }
  const literal = normalizeHost(url.hostname);
  if (isIP(literal)) {
    const why = addressRefusal(literal, policy.allowPrivateNetworks);
    if (why) throw blocked('blocked_address', why);
  }
}
