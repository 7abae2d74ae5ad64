// Binds the Hono app to a Node HTTP server (HTTPS under NIM_SSL_MODE, issue E).
import { createAdaptorServer } from '@hono/node-server';
import type { Hono } from 'hono';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RunningServer {
  server: Server;
  port: number;
  /** Stop accepting, wait for in-flight requests up to `graceMs`, then cut the rest. */
  close(graceMs: number): Promise<void>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function listen(app: Hono<any>, opts: { port: number; host: string }): Promise<RunningServer> {
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  // Keep-alive longer than typical proxies' (nginx 60 s) so the proxy closes first, never us mid-reuse.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
