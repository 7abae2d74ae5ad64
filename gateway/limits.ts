// Request-shape limits the app enforces itself (the server enforces header bytes and timeouts):
// the number of header lines (431), and, in body.ts, JSON content type (415), size (413, while
// reading) and nesting depth (400).
import type { Context } from 'hono';
import { PorticoError } from '../core/errors.js';
import { incomingOf } from './node-request.js';

/** 431 when a request has more than `max` header lines (NIM_MAX_HEADERS): a check the request's guard runs. */
export function headerCount(max: number): (c: Context) => void {
  return (c) => {
    const incoming = incomingOf(c);
    let count = 0;
    if (incoming?.rawHeaders) count = incoming.rawHeaders.length / 2;
    else c.req.raw.headers.forEach(() => void count++);
    if (count > max) {
      throw new PorticoError('headers_too_large', `Too many request headers (more than ${max}, NIM_MAX_HEADERS)`, { headers: { connection: 'close' } });
    }
  };
}
