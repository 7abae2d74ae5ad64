// Every test here sends traffic only to 127.0.0.1. Non-loopback addresses appear only as strings
// handed to the policy, an injected resolver, or loopbackOnlyConnector (which refuses to dial them
// and records that it was asked — the assertions check it never was).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Settings } from '../../core/config.js';
import { createSafeFetcher, type ResolvedAddress, type SafeFetchDeps, type SafeFetcher } from './fetch.js';
import { MediaRefusal } from './refusal.js';
import { png } from './test-images.js';
import { loopbackOnlyConnector, startRawServer, startServer, type TestServer } from './test-server.js';
import { refusal, testPolicy } from './test-support.js';

// fetchTimeoutMs stays a generous 5 s, so a loaded CI machine cannot turn a passing fetch into a
// timeout; the timeout tests set 200 ms themselves.
const basePolicy = testPolicy({ maxBytes: 4096 });
const PUBLIC_IP = '93.184.216.34'; // never dialled: loopbackOnlyConnector routes it to a loopback port

const open: SafeFetcher[] = [];
function fetcher(policy: Partial<Settings['media']> = {}, deps: SafeFetchDeps = {}): SafeFetcher {
  const f = createSafeFetcher({ ...basePolicy, ...policy }, deps);
  open.push(f);
  return f;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((f) => f.close()));
});


/** A resolver from a table, recording what it was asked. */
function tableResolver(table: Record<string, string[]>) {
  const asked: string[] = [];
  const resolve = async (host: string): Promise<ResolvedAddress[]> => {
    asked.push(host);
    const addrs = table[host];
    if (!addrs) throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return addrs.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return { resolve, asked };
}

const image = png(3, 3);

describe('SSRF: refused with the default policy, before any connection', () => {
  let target: TestServer;
  beforeAll(async () => {
    target = await startServer((_, res) => res.end(image));
  });
  afterAll(() => target.close());

  // Every spelling of "this machine" a URL can carry; the target really listens on 127.0.0.1.
  const loopbackForms = (port: number) => [
    `http://127.0.0.1:${port}/a.png`,
    `http://2130706433:${port}/a.png`,
    `http://0177.0.0.1:${port}/a.png`,
    `http://0x7f.1:${port}/a.png`,
    `http://127.1:${port}/a.png`,
    `http://127.0.0.1.:${port}/a.png`,
    `http://[::ffff:127.0.0.1]:${port}/a.png`,
    `http://[::ffff:7f00:1]:${port}/a.png`,
    `http://[64:ff9b::7f00:1]:${port}/a.png`,
    `http://[2002:7f00:1::]:${port}/a.png`,
    `http://[::1]:${port}/a.png`,
    `http://0.0.0.0:${port}/a.png`,
    `http://0:${port}/a.png`,
    `http://[::]:${port}/a.png`,
    `http://localhost:${port}/a.png`, // the system resolver: /etc/hosts says loopback
  ];

  it('refuses every loopback spelling; the server sees no connection', async () => {
    const { connect, dialled } = loopbackOnlyConnector();
    const f = fetcher({}, { connect, allowedPorts: 'any' }); // so the address rule is what refuses
    for (const url of loopbackForms(target.port)) {
      const err = await refusal(f.fetch(new URL(url)));
      expect(err.reason, url).toBe('blocked_address');
      expect(err.code).toBe('image_fetch_blocked');
    }
    expect(dialled).toEqual([]);
    expect(target.connections).toBe(0);
  });

  it.each([
    ['http://10.0.0.1/a.png', /10\.0\.0\.1 is a private/],
    ['http://10.1/a.png', /10\.0\.0\.1 is a private/],
    ['http://167772161/a.png', /10\.0\.0\.1 is a private/],
    ['http://172.16.0.1/a.png', /private/],
    ['http://192.168.1.1/a.png', /private/],
    ['http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is a cloud metadata address/],
    ['http://2852039166/latest/meta-data/', /169\.254\.169\.254/],
    ['http://0251.0376.0251.0376/', /169\.254\.169\.254/],
    ['http://0xa9.0xfe.0xa9.0xfe/', /169\.254\.169\.254/],
    ['http://169.254.0.1/', /link-local/],
    ['http://100.64.0.1/', /carrier-grade NAT/],
    ['http://[fe80::1]/', /link-local/],
    ['http://[fc00::1]/', /unique-local/],
    ['http://[fd00:ec2::254]/', /metadata/],
    ['http://[::ffff:169.254.169.254]/', /IPv6 form of 169\.254\.169\.254/],
    ['http://[::ffff:10.0.0.1]/', /IPv6 form of 10\.0\.0\.1/],
    ['http://[64:ff9b::a9fe:a9fe]/', /IPv6 form of 169\.254\.169\.254/],
    ['http://[2002:a9fe:a9fe::]/', /IPv6 form of 169\.254\.169\.254/],
    ['http://224.0.0.1/', /multicast/],
    ['http://[ff02::1]/', /multicast/],
    ['http://255.255.255.255/', /broadcast/],
    ['http://[2001:0:4136:e378::1]/', /Teredo/],
  ])('refuses %s without asking to dial it', async (url, why) => {
    const { connect, dialled } = loopbackOnlyConnector();
    const { resolve, asked } = tableResolver({});
    const err = await refusal(fetcher({}, { connect, resolve }).fetch(new URL(url)));
    expect(err.reason).toBe('blocked_address');
    expect(err.message).toMatch(why);
    expect(dialled).toEqual([]);
    expect(asked).toEqual([]);
  });

  it.each([
    ['internal.example', ['10.0.0.5']],
    ['meta.example', ['169.254.169.254']],
    ['cgnat.example', ['100.64.3.4']],
    ['v6.example', ['fe80::1']],
    ['ula.example', ['fd00::1']],
    ['mapped.example', ['::ffff:192.168.0.1']],
    ['mixed.example', [PUBLIC_IP, '10.0.0.1']],
    ['loop.example', ['127.0.0.1']],
  ])('refuses %s, which resolves to %j, without dialling', async (host, addresses) => {
    const { connect, dialled } = loopbackOnlyConnector({ [PUBLIC_IP]: target.port });
    const { resolve, asked } = tableResolver({ [host]: addresses });
    const err = await refusal(fetcher({}, { connect, resolve }).fetch(new URL(`http://${host}/a.png`)));
    expect(err.reason).toBe('blocked_address');
    // The message names the host, not the internal address it resolved to.
    expect(err.message).toBe(`host ${host} resolves to a non-public address`);
    expect(asked).toEqual([host]);
    expect(dialled).toEqual([]);
    expect(target.connections).toBe(0);
  });

  it('refuses a redirect from an allowed host to loopback, metadata or a private name', async () => {
    const redirector = await startServer((req, res) => {
      const to: Record<string, string> = {
        '/to-loopback': `http://127.0.0.1:${target.port}/a.png`,
        '/to-decimal': `http://2130706433:${target.port}/a.png`,
        '/to-metadata': 'http://169.254.169.254/latest/meta-data/iam/',
        '/to-internal': '//internal.example/a.png',
      };
      res.writeHead(302, { location: to[req.url ?? ''] ?? '/' }).end();
    });
    try {
      const { connect, dialled } = loopbackOnlyConnector({ [PUBLIC_IP]: redirector.port });
      const { resolve } = tableResolver({ 'img.example': [PUBLIC_IP], 'internal.example': ['10.9.9.9'] });
      const f = fetcher({}, { connect, resolve, allowedPorts: 'any' });
      for (const [path, why] of [
        ['/to-loopback', /^redirected to http:\/\/127\.0\.0\.1:\d+: 127\.0\.0\.1 is a loopback address$/],
        ['/to-decimal', /127\.0\.0\.1 is a loopback address/],
        ['/to-metadata', /^redirected to http:\/\/169\.254\.169\.254: 169\.254\.169\.254 is a cloud metadata address$/],
        ['/to-internal', /host internal\.example resolves to a non-public address/],
      ] as const) {
        const err = await refusal(f.fetch(new URL(`http://img.example${path}`)));
        expect(err.reason, path).toBe('blocked_address');
        expect(err.message).toMatch(why);
      }
      expect(redirector.requests.map((r) => r.url)).toEqual(['/to-loopback', '/to-decimal', '/to-metadata', '/to-internal']);
      expect(new Set(dialled.map((d) => d.hostname))).toEqual(new Set([PUBLIC_IP]));
      expect(target.connections).toBe(0);
    } finally {
      await redirector.close();
    }
  });

  it('refuses a redirect to another scheme or to credentials', async () => {
    const redirector = await startServer((req, res) => {
      res.writeHead(301, { location: req.url === '/ftp' ? 'ftp://example.com/a.png' : 'http://u:p@img.example/a.png' }).end();
    });
    try {
      const { connect } = loopbackOnlyConnector({ [PUBLIC_IP]: redirector.port });
      const { resolve } = tableResolver({ 'img.example': [PUBLIC_IP] });
      const f = fetcher({}, { connect, resolve });
      expect((await refusal(f.fetch(new URL('http://img.example/ftp')))).reason).toBe('blocked_scheme');
      expect((await refusal(f.fetch(new URL('http://img.example/creds')))).reason).toBe('blocked_credentials');
    } finally {
      await redirector.close();
    }
  });
});

describe('pinning: the connection goes to the address that was checked', () => {
  it('resolves once per connection and dials the checked address with the name as servername', async () => {
    const server = await startServer((_, res) => res.end(image));
    try {
      const { connect, dialled } = loopbackOnlyConnector({ [PUBLIC_IP]: server.port });
      // A rebinding resolver: public the first time, loopback after. Only the first answer is used.
      let calls = 0;
      const resolve = async () => [{ address: calls++ === 0 ? PUBLIC_IP : '127.0.0.1', family: 4 as const }];
      const got = await fetcher({}, { connect, resolve }).fetch(new URL('http://img.example/a.png'));
      expect(got.bytes.equals(image)).toBe(true);
      expect(calls).toBe(1);
      expect(dialled).toEqual([{ hostname: PUBLIC_IP, port: '', servername: 'img.example' }]);
    } finally {
      await server.close();
    }
  });

  it('applies the domain allow-list to every hop', async () => {
    const server = await startServer((req, res) => {
      if (req.url === '/start') res.writeHead(302, { location: 'http://other.example/a.png' }).end();
      else res.end(image);
    });
    try {
      const { connect } = loopbackOnlyConnector({ [PUBLIC_IP]: server.port });
      const { resolve } = tableResolver({ 'img.example': [PUBLIC_IP], 'other.example': [PUBLIC_IP] });
      const f = fetcher({ allowedDomains: ['img.example'] }, { connect, resolve });
      expect((await f.fetch(new URL('http://img.example/a.png'))).bytes.equals(image)).toBe(true);
      const err = await refusal(f.fetch(new URL('http://img.example/start')));
      expect(err.reason).toBe('blocked_domain');
      expect(err.message).toBe('redirected to http://other.example: host other.example is not in the allowed domains');
      expect((await refusal(f.fetch(new URL('http://other.example/a.png')))).reason).toBe('blocked_domain');
    } finally {
      await server.close();
    }
  });
});

/** A throwaway self-signed certificate for `name` (openssl is on every machine we test on). */
function selfSigned(name: string): { key: string; cert: string } | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'portico-media-tls-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`,
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('TLS through a pinned address', () => {
  const tls = selfSigned('img.example');
  it.skipIf(!tls)('sends the hostname as SNI and verifies the certificate against it', async () => {
    const seen: (string | false)[] = [];
    const server = https.createServer({ key: tls!.key, cert: tls!.cert }, (_, res) => res.end(image));
    // `servername` is the SNI the client sent (set by node, missing from @types/node 20).
    server.on('secureConnection', (socket: TLSSocket & { servername?: string | false }) => seen.push(socket.servername ?? false));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const { connect, dialled } = loopbackOnlyConnector({ [PUBLIC_IP]: port }, { ca: tls!.cert });
      const { resolve } = tableResolver({ 'img.example': [PUBLIC_IP], 'other.example': [PUBLIC_IP] });
      const f = fetcher({}, { connect, resolve });
      const got = await f.fetch(new URL('https://img.example/a.png'));
      expect(got.bytes.equals(image)).toBe(true);
      expect(seen).toEqual(['img.example']);
      expect(dialled[0]).toMatchObject({ hostname: PUBLIC_IP, servername: 'img.example' });
      // Same address, other name: the certificate does not cover it, so the fetch must fail.
      const err = await refusal(f.fetch(new URL('https://other.example/a.png')));
      expect([err.reason, err.message]).toEqual(['network', 'TLS error (ERR_TLS_CERT_ALTNAME_INVALID)']);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('fetching from a private network (NIM_MEDIA_ALLOW_PRIVATE_NETWORKS=1)', () => {
  const priv = (policy: Partial<Settings['media']> = {}, deps: SafeFetchDeps = {}) =>
    fetcher({ allowPrivateNetworks: true, ...policy }, deps);
  let server: TestServer;
  afterEach(() => server?.close());

  it('fetches the bytes, sending a User-Agent, and reports Cache-Control', async () => {
    server = await startServer((_, res) => res.writeHead(200, { 'content-type': 'image/png', 'cache-control': 'max-age=60' }).end(image));
    const got = await priv().fetch(new URL(`${server.origin}/a.png`));
    expect(got.bytes.equals(image)).toBe(true);
    expect(got.cacheControl).toBe('max-age=60');
    expect(server.requests[0]!.headers['user-agent']).toMatch(/^portico-media\//);
    expect(server.requests[0]!.headers.accept).toMatch(/^image\//);
  });

  it('still refuses the metadata address', async () => {
    const { connect, dialled } = loopbackOnlyConnector();
    const err = await refusal(priv({}, { connect }).fetch(new URL('http://169.254.169.254/latest/meta-data/')));
    expect(err.reason).toBe('blocked_address');
    expect(dialled).toEqual([]);
  });

  it('follows up to maxRedirects redirects, relative ones included, and no more', async () => {
    server = await startServer((req, res) => {
      const n = Number(req.url?.slice(1));
      if (n > 0) res.writeHead(n % 2 ? 302 : 307, { location: `/${n - 1}` }).end();
      else res.end(image);
    });
    expect((await priv().fetch(new URL(`${server.origin}/3`))).url).toBe(`${server.origin}/0`);
    const err = await refusal(priv().fetch(new URL(`${server.origin}/4`)));
    expect(err.reason).toBe('too_many_redirects');
    expect(err.message).toBe('more than 3 redirects');
    expect((await refusal(priv({ maxRedirects: 0 }).fetch(new URL(`${server.origin}/1`)))).reason).toBe('too_many_redirects');
  });

  it('reports upstream errors with their status', async () => {
    server = await startServer((req, res) => {
      if (req.url === '/noloc') res.writeHead(302).end();
      else res.writeHead(404).end('not here');
    });
    const err = await refusal(priv().fetch(new URL(`${server.origin}/missing.png`)));
    expect([err.code, err.reason, err.message]).toEqual(['image_fetch_failed', 'upstream_status', 'upstream answered 404']);
    expect((await refusal(priv().fetch(new URL(`${server.origin}/noloc`)))).message).toBe('upstream answered 302 without a Location');
  });

  it('times out on a server that never answers', async () => {
    server = await startServer(() => {});
    const err = await refusal(priv({ fetchTimeoutMs: 200 }).fetch(new URL(`${server.origin}/slow.png`)));
    expect([err.code, err.reason, err.message]).toEqual(['image_fetch_failed', 'timeout', 'timed out after 200 ms']);
  });

  it('times out on a body that trickles forever, each chunk within the body timeout', async () => {
    const timers: NodeJS.Timeout[] = [];
    server = await startServer((_, res) => {
      res.writeHead(200, { 'content-type': 'image/png' });
      timers.push(setInterval(() => res.write(Buffer.from([0])), 20));
    });
    try {
      const err = await refusal(priv({ maxBytes: 1 << 20, fetchTimeoutMs: 200 }).fetch(new URL(`${server.origin}/trickle.png`)));
      expect([err.reason, err.message]).toEqual(['timeout', 'timed out after 200 ms']);
    } finally {
      timers.forEach(clearInterval);
    }
  });

  it('refuses a declared Content-Length over the limit without reading the body', async () => {
    server = await startServer((_, res) => {
      res.writeHead(200, { 'content-length': 5000 });
      res.write(Buffer.alloc(100)); // and never the rest
    });
    const err = await refusal(priv().fetch(new URL(`${server.origin}/big.png`)));
    expect([err.code, err.reason, err.message]).toEqual(['image_too_large', 'too_large', 'image is 5000 bytes, over the limit of 4096 bytes']);
  });

  it('counts a chunked body with no Content-Length and stops past the limit', async () => {
    let written = 0;
    server = await startServer((_, res) => {
      const pump = () => {
        // Keeps writing until the client hangs up: the client, not the server, must stop.
        while (written < 1 << 22 && res.write(Buffer.alloc(1024))) written += 1024;
        if (written < 1 << 22 && !res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    const err = await refusal(priv().fetch(new URL(`${server.origin}/endless.png`)));
    expect([err.code, err.message]).toEqual(['image_too_large', 'image is larger than the limit of 4096 bytes']);
    expect(written).toBeLessThan(1 << 22);
  });

  it('counts a close-delimited body (no Content-Length, no chunking)', async () => {
    server = await startRawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n\r\n');
      socket.end(Buffer.alloc(10_000));
    });
    expect((await refusal(priv().fetch(new URL(`${server.origin}/raw.png`)))).reason).toBe('too_large');
  });

  it('never returns more than a lying Content-Length announced', async () => {
    server = await startRawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n');
      socket.end(Buffer.alloc(10_000, 1));
    });
    const got = await priv().fetch(new URL(`${server.origin}/liar.png`)).catch((err: unknown) => err);
    if (got instanceof MediaRefusal) expect(got.code).toBe('image_fetch_failed');
    else expect((got as { bytes: Buffer }).bytes.length).toBe(10);
  });

  it('reports a refused connection', async () => {
    server = await startServer(() => {});
    const port = server.port;
    await server.close();
    const err = await refusal(priv().fetch(new URL(`http://127.0.0.1:${port}/a.png`)));
    expect([err.reason, err.message]).toEqual(['network', 'connection refused']);
  });

  it('reports an unresolvable host', async () => {
    const { resolve } = tableResolver({});
    const err = await refusal(priv({}, { resolve }).fetch(new URL('http://nowhere.example/a.png')));
    expect([err.code, err.message]).toEqual(['image_fetch_failed', 'could not resolve host nowhere.example']);
  });

  it('aborts with the caller signal, rejecting with its reason', async () => {
    let closed!: Promise<void>;
    server = await startServer((req) => {
      closed = new Promise((resolve) => req.socket.once('close', () => resolve()));
    });
    const ctl = new AbortController();
    const pending = priv().fetch(new URL(`${server.origin}/a.png`), ctl.signal);
    while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    const reason = new Error('client disconnected');
    ctl.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await closed; // the upstream connection is torn down, not left to finish
  });
});
