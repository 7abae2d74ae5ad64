// TLS for the gateway from NIM_SSL_MODE: DISABLED (plain HTTP), TLS (server certificate), MTLS
// (clients must also present a certificate signed by NIM_SSL_CA_CERTS_PATH). Files are read and
// checked at start-up, so a bad path or a key that does not match its certificate stops the start
// with one line naming the variable; SIGHUP re-reads them (renewed certificates, no restart).
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { ServerOptions } from 'node:https';

export interface SslSettings {
  mode: 'DISABLED' | 'TLS' | 'MTLS';
  keyPath: string | undefined;
  certsPath: string | undefined;
  caCertsPath: string | undefined;
}

function read(name: string, path: string | undefined): Buffer {
  if (!path) throw new Error(`${name} is required when NIM_SSL_MODE is TLS or MTLS`);
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`${name}=${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** The key, certificate chain and CA as a secure context's options (what SIGHUP re-reads). */
export function tlsContextOptions(ssl: SslSettings): SecureContextOptions {
  const opts: SecureContextOptions = {
    key: read('NIM_SSL_KEY_PATH', ssl.keyPath),
    cert: read('NIM_SSL_CERTS_PATH', ssl.certsPath),
    minVersion: 'TLSv1.2',
  };
  if (ssl.mode === 'MTLS' || ssl.caCertsPath) opts.ca = read('NIM_SSL_CA_CERTS_PATH', ssl.caCertsPath);
  try {
    createSecureContext(opts);
  } catch (err) {
    throw new Error(`NIM_SSL_KEY_PATH / NIM_SSL_CERTS_PATH: unusable key or certificate (${(err as Error).message})`);
  }
  return opts;
}

/** https server options for the mode, or undefined for DISABLED. */
export function tlsServerOptions(ssl: SslSettings): ServerOptions | undefined {
  if (ssl.mode === 'DISABLED') return undefined;
  const opts: ServerOptions = { ...tlsContextOptions(ssl) };
  if (ssl.mode === 'MTLS') {
    opts.requestCert = true;
    opts.rejectUnauthorized = true;
  }
  return opts;
}
