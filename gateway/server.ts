// Binds the Hono app to a Node HTTP server, or HTTPS under NIM_SSL_MODE=TLS|MTLS. The server is
// where the transport limits live: header size and count, the time to receive headers and the
// whole request (slow-loris), TCP keep-alive to notice vanished peers; protocol-level refusals
// (malformed request, headers too large, timeouts) are answered with the JSON error envelope.
import type { Hono } from 'hono';
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, STATUS_CODES, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsServerOptions } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Server as TlsServer } from 'node:tls';
import type { Logger } from 'pino';
import { settingDefaults } from '../core/config.js';
import { PorticoError, rawHttpError } from '../core/errors.js';
import { logRefusal, requestListener } from './refusals.js';

export interface ServerLimits {
  /** Time to receive a request's headers (NIM_HEADERS_TIMEOUT_MS). */
  headersTimeoutMs: number;
  /** Time to receive a whole request, headers and body (NIM_REQUEST_TIMEOUT_MS; 0 = none). */
  requestTimeoutMs: number;
  /** Total size of a request's headers (NIM_MAX_HEADER_BYTES). */
  maxHeaderBytes: number;
  /** Header lines per request (NIM_MAX_HEADERS; enforced by limits.ts headerLimit with a 431). */
  maxHeaders: number;
}

/** The limits when none are given: the settings' defaults (core/config.ts holds every default once). */
export function defaultLimits(): ServerLimits {
  const { headersTimeoutMs, requestTimeoutMs, maxHeaderBytes, maxHeaders } = settingDefaults();
  return { headersTimeoutMs, requestTimeoutMs, maxHeaderBytes, maxHeaders };
}

export interface ListenOptions {
  port: number;
  host: string;
  /** https options (tls.ts tlsServerOptions); absent = plain HTTP. */
  tls?: HttpsServerOptions;
  limits?: Partial<ServerLimits>;
  /** Access log for requests refused before the app (refusals.ts). */
  log?: Logger | undefined;
}

export interface RunningServer {
  server: Server;
  port: number;
  /** Replace the TLS key/certificates of a running HTTPS server (SIGHUP). */
  setSecureContext?: (opts: HttpsServerOptions) => void;
  /** Stop accepting, wait for in-flight requests up to `graceMs`, call `onDeadline`, then cut the rest. */
  close(graceMs: number, onDeadline?: () => void): Promise<void>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function listen(app: Hono<any>, opts: ListenOptions): Promise<RunningServer> {
  const l = { ...defaultLimits(), ...opts.limits };
  // Node requires headersTimeout <= requestTimeout when both are set.
  const headersTimeout = l.requestTimeoutMs > 0 ? Math.min(l.headersTimeoutMs, l.requestTimeoutMs) : l.headersTimeoutMs;
  const serverOptions = {
    maxHeaderSize: l.maxHeaderBytes,
    headersTimeout,
    requestTimeout: l.requestTimeoutMs,
    // How often expired headers/request timers are checked: a fraction of the shortest timeout.
    connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(Math.min(headersTimeout, l.requestTimeoutMs || headersTimeout) / 4))),
    // TCP keep-alive probes: a client that vanished without a FIN (its engine request would
    // otherwise run on) is detected and its connection closed, which aborts the engine request.
    keepAlive: true,
    keepAliveInitialDelay: 30_000,
    // A missing Host is refused by the adaptor (refusals.ts) with the envelope, not by Node with an empty 400.
    requireHostHeader: false,
    ...(opts.tls ? { handshakeTimeout: headersTimeout, ...opts.tls } : {}),
  };
  const listener = requestListener(app, opts.log);
  const server = (opts.tls ? createHttpsServer(serverOptions, listener) : createHttpServer(serverOptions, listener)) as Server;
  // Keep-alive longer than typical proxies' (nginx 60 s) so the proxy closes first, never us mid-reuse.
  server.keepAliveTimeout = 65_000;
  // One more than allowed, so the limits middleware sees that a request had too many and says 431.
  server.maxHeadersCount = l.maxHeaders + 1;
  server.on('clientError', clientError(l, opts.log));
  if (opts.tls) {
    // A failed handshake (no client certificate under MTLS, wrong CA, plain HTTP on the port) is
    // the client's problem: nothing to answer on a socket that never became TLS.
    server.on('tlsClientError', (_err: Error, socket: Socket) => socket.destroy());
  }
  const drain = trackConnections(server, opts.tls ? 'secureConnection' : 'connection');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // A deep accept queue, as nginx's: a burst of thousands of connections must not overflow the
    // default 511 and leave clients waiting on SYN retransmits (the kernel caps it at somaxconn).
    server.listen({ port: opts.port, host: opts.host, backlog: 4096 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    setSecureContext: opts.tls ? (o) => (server as unknown as TlsServer).setSecureContext(o) : undefined,
    close: (graceMs, onDeadline) =>
      new Promise<void>((resolve) => {
        // At the deadline, first let the caller end what is still running with a clean error
        // (streams get an error event and [DONE]), then cut whatever has not finished a moment later.
        const deadline = setTimeout(() => {
          onDeadline?.();
          setTimeout(() => server.closeAllConnections(), 1000).unref();
        }, graceMs);
        deadline.unref();
        server.close(() => {
          clearTimeout(deadline);
          resolve();
        });
        drain();
      }),
  };
}

/**
 * Drain without cutting anyone. Node's server.close() closes only connections that are truly idle
 * (no request being received, none being answered); here every answer given during the drain says
 * `Connection: close`, so Node ends its connection right after it and the client never sends
 * another request on a connection about to close. A connection whose answer had already gone out
 * as keep-alive (a stream started before the drain) is closed once idle, by Node's same test, so a
 * request it is still receiving is answered, not cut.
 */
function trackConnections(server: Server, connectionEvent: 'connection' | 'secureConnection'): () => void {
  const sockets = new Set<Socket>();
  let draining = false;
  // Under TLS, requests come on the TLS socket, known once its handshake is done.
  server.on(connectionEvent, (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // After Node has finished with an answer (and freed the connection), close what is now idle.
  const closeIdleSoon = () => setImmediate(() => server.closeIdleConnections());
  // Only while draining (nothing per request before): first in line, as the app may answer
  // synchronously inside its own 'request' listener.
  const onRequest = (_req: unknown, res: ServerResponse) => {
    res.shouldKeepAlive = false;
    res.once('close', closeIdleSoon);
  };
  return () => {
    if (draining) return;
    draining = true;
    server.prependListener('request', onRequest);
    for (const socket of sockets) {
      const res = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
      if (!res) continue;
      if (!res.headersSent) res.shouldKeepAlive = false;
      // An answer already under way (a stream started before the drain) frees its connection when it ends.
      res.once('close', closeIdleSoon);
    }
    server.closeIdleConnections();
  };
}

/**
 * Requests Node's parser refuses before the app sees them, answered with the error envelope
 * (Node's default is a bare status line): 400 malformed, 408 too slow, 431 headers too large.
 */
function clientError(l: ServerLimits, log: Logger | undefined) {
  return (err: NodeJS.ErrnoException, socket: Duplex): void => {
    const s = socket as Socket & { _httpMessage?: { headersSent?: boolean } };
    // Nothing sensible to say to a peer that is gone or already receiving a response.
    if (err.code === 'ECONNRESET' || !s.writable || s._httpMessage?.headersSent) {
      s.destroy();
      return;
    }
    let e: PorticoError;
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      e = new PorticoError('headers_too_large', `Request headers exceed ${l.maxHeaderBytes} bytes (NIM_MAX_HEADER_BYTES)`);
    } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      e = new PorticoError('request_timeout', `headers within ${l.headersTimeoutMs} ms and the whole request within ${l.requestTimeoutMs} ms`);
    } else {
      e = new PorticoError('bad_request', err.code?.startsWith('HPE_') ? err.code.slice(4).toLowerCase().replace(/_/g, ' ') : 'parse error');
    }
    const id = randomUUID();
    logRefusal(log, e, { id });
    s.end(rawHttpError(e, STATUS_CODES[e.status] ?? 'Error', { 'x-request-id': id }));
    setTimeout(() => s.destroy(), 1000).unref();
  };
}
