// Loopback servers for the media tests: they count connections, so a test can assert that a
// refused URL never reached the network at all. Not used at runtime.
import http from 'node:http';
import net from 'node:net';
import { buildConnector } from 'undici';
import type { Connector } from './fetch.js';

export interface TestServer {
  port: number;
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Requests seen: path and headers. */
  readonly requests: { url: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

export async function startServer(handler: http.RequestListener): Promise<TestServer> {
  const requests: TestServer['requests'] = [];
  const server = http.createServer((req, res) => {
    requests.push({ url: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  return listen(server, requests, () => server.closeAllConnections());
}

/** A server that writes raw bytes, for framing an http server would not produce. */
export async function startRawServer(onSocket: (socket: net.Socket) => void): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.once('data', () => onSocket(socket));
  });
  return listen(server, [], () => sockets.forEach((s) => s.destroy()));
}

async function listen(server: net.Server, requests: TestServer['requests'], dropAll: () => void): Promise<TestServer> {
  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        dropAll();
        server.close(() => resolve());
      }),
  };
}

/**
 * A connector for tests that may never reach anything but loopback: addresses in `routes` (made-up
 * public IPs the injected resolver hands out) go to a loopback port, loopback goes through, and
 * anything else is recorded and refused without a packet sent.
 */
export function loopbackOnlyConnector(routes: Record<string, number> = {}, tls: { ca?: string } = {}) {
  const real = buildConnector({ timeout: 2000, ...tls });
  const dialled: { hostname: string; port: string; servername: string | undefined }[] = [];
  const connect: Connector = (opts, callback) => {
    dialled.push({ hostname: opts.hostname, port: opts.port, servername: opts.servername });
    const routed = routes[opts.hostname];
    if (routed !== undefined) return real({ ...opts, hostname: '127.0.0.1', port: String(routed) }, callback);
    if (opts.hostname === '127.0.0.1') return real(opts, callback);
    callback(new Error(`test connector refused to dial ${opts.hostname}`), null);
  };
  return { connect, dialled };
}
