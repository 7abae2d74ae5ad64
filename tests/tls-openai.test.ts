// TLS and mTLS in the gateway (NIM_SSL_MODE), with certificates generated here by openssl and the
// OpenAI SDK as the client. mTLS without a client certificate, or with one from another CA, fails.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyStore } from '../gateway/auth.js';
import { listen, type RunningServer } from '../gateway/server.js';
import { tlsServerOptions, type SslSettings } from '../gateway/tls.js';
import { MODEL, rig, type Rig } from './helpers/secure-app.js';

const KEY = 'sk-tls-test-0123456789';
let dir: string;
let r: Rig;
const f = (name: string) => join(dir, name);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: 'pipe' });
}

/** A CA, and a certificate it signs for `cn` (server: SAN 127.0.0.1/localhost; client: clientAuth). */
function makeCa(name: string): void {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.crt`), '-days', '2', '-subj', `/CN=${name}`);
}
function makeCert(name: string, ca: string, usage: 'server' | 'client'): void {
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${name}`);
  const ext = usage === 'server' ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' : 'extendedKeyUsage=clientAuth\n';
  writeFileSync(f(`${name}.ext`), ext);
  openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${ca}.crt`), '-CAkey', f(`${ca}.key`), '-CAcreateserial', '-out', f(`${name}.crt`), '-days', '2', '-extfile', f(`${name}.ext`));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portico-tls-'));
  makeCa('ca');
  makeCa('rogue-ca');
  makeCert('server', 'ca', 'server');
  makeCert('client', 'ca', 'client');
  makeCert('rogue-client', 'rogue-ca', 'client');
  r = await rig();
});
afterAll(async () => {
  await r.close();
  rmSync(dir, { recursive: true, force: true });
});

async function start(ssl: SslSettings): Promise<RunningServer> {
  const { app } = r.make({ keys: new KeyStore({ keys: [KEY] }) });
  return listen(app, { port: 0, host: '127.0.0.1', tls: tlsServerOptions(ssl) });
}

function client(port: number, opts: { cert?: string; trust?: boolean; apiKey?: string } = {}): OpenAI {
  const dispatcher = new Agent({
    connect: {
      ca: opts.trust === false ? undefined : readFileSync(f('ca.crt')),
      cert: opts.cert ? readFileSync(f(`${opts.cert}.crt`)) : undefined,
      key: opts.cert ? readFileSync(f(`${opts.cert}.key`)) : undefined,
    },
  });
  return new OpenAI({
    baseURL: `https://127.0.0.1:${port}/v1`,
    apiKey: opts.apiKey ?? KEY,
    maxRetries: 0,
    timeout: 10_000,
    fetch: undiciFetch as unknown as typeof fetch,
    fetchOptions: { dispatcher } as Record<string, unknown>,
  });
}

const ask = (c: OpenAI) => c.chat.completions.create({ model: MODEL.id, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });

describe('NIM_SSL_MODE=TLS', () => {
  it('serves HTTPS to the OpenAI SDK trusting the CA; auth still applies', async () => {
    const server = await start({ mode: 'TLS', keyPath: f('server.key'), certsPath: f('server.crt'), caCertsPath: undefined });
    try {
      const c = client(server.port);
      expect((await ask(c)).choices[0]?.message.content).toBe('hi');
      expect((await c.models.list()).data[0]?.id).toBe(MODEL.id);
      // Streaming over TLS.
      let streamed = '';
      for await (const ev of await c.chat.completions.create({ model: MODEL.id, messages: [{ role: 'user', content: 'hi' }], stream: true })) {
        streamed += ev.choices[0]?.delta?.content ?? '';
      }
      expect(streamed).toBe('ab');
      await expect(ask(client(server.port, { apiKey: 'sk-wrong' }))).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
      // A client that does not trust the CA refuses the server.
      await expect(ask(client(server.port, { trust: false }))).rejects.toBeInstanceOf(OpenAI.APIConnectionError);
      // Plain HTTP on the TLS port gets nowhere.
      const plain = await fetch(`http://127.0.0.1:${server.port}/v1/health/live`).then((x) => x.status, () => 'failed');
      expect(plain).not.toBe(200);
    } finally {
      await server.close(100);
    }
  });
});

describe('NIM_SSL_MODE=MTLS', () => {
  it('requires a client certificate signed by NIM_SSL_CA_CERTS_PATH', async () => {
    const server = await start({ mode: 'MTLS', keyPath: f('server.key'), certsPath: f('server.crt'), caCertsPath: f('ca.crt') });
    try {
      expect((await ask(client(server.port, { cert: 'client' }))).choices[0]?.message.content).toBe('hi');
      await expect(ask(client(server.port))).rejects.toBeInstanceOf(OpenAI.APIConnectionError);
      await expect(ask(client(server.port, { cert: 'rogue-client' }))).rejects.toBeInstanceOf(OpenAI.APIConnectionError);
    } finally {
      await server.close(100);
    }
  });
});

describe('TLS settings', () => {
  it('names the variable when a file is missing or the key does not match the certificate', () => {
    expect(() => tlsServerOptions({ mode: 'TLS', keyPath: f('nope.key'), certsPath: f('server.crt'), caCertsPath: undefined })).toThrow(
      /^NIM_SSL_KEY_PATH=.*nope\.key: cannot read \(ENOENT\)$/,
    );
    expect(() => tlsServerOptions({ mode: 'MTLS', keyPath: f('server.key'), certsPath: f('server.crt'), caCertsPath: undefined })).toThrow(/NIM_SSL_CA_CERTS_PATH/);
    expect(() => tlsServerOptions({ mode: 'TLS', keyPath: f('client.key'), certsPath: f('server.crt'), caCertsPath: undefined })).toThrow(
      /NIM_SSL_KEY_PATH \/ NIM_SSL_CERTS_PATH: unusable key or certificate/,
    );
    expect(tlsServerOptions({ mode: 'DISABLED', keyPath: undefined, certsPath: undefined, caCertsPath: undefined })).toBeUndefined();
  });
});
