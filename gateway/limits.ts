// Request-shape limits the app enforces itself (the server enforces header bytes and timeouts):
// the number of header lines (431), and, in body.ts, JSON content type (415), size (413, while
// reading) and nesting depth (400).
import type { IncomingMessage } from 'node:http';
import type { MiddlewareHandler } from 'hono';
import { PorticoError } from '../core/errors.js';

/** 431 when a request has more than `max` header lines (NIM_MAX_HEADERS). */
export function headerLimit(max: number): MiddlewareHandler {
  return async (c, next) => {
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    let count = 0;
    if (incoming?.rawHeaders) count = incoming.rawHeaders.length / 2;
    else c.req.raw.headers.forEach(() => void count++);
    if (count > max) {
      throw new PorticoError('headers_too_large', `Too many request headers (more than ${max}, NIM_MAX_HEADERS)`, { headers: { connection: 'close' } });
    }
    await next();
  };
}
