// For what adds headers to a response after the handler returned it (CORS, the request's life for
// answers it did not build). Streams are not followed here: see gateway/lifecycle.ts.
import type { Context } from 'hono';

/**
 * Set headers on c.res in place. Every response the app builds (c.body / c.json: node-server's
 * lightweight Response, or a native one in app.request() tests) has mutable headers, and on the
 * lightweight one `.headers` is served from its cache: the body is not touched and node-server
 * still writes the answer on its fast path. Never `c.header()` after the handler: once the
 * context is finalized that copies the Response (and materializes a lightweight one).
 * Only a Response with immutable headers (one returned by fetch(), which no route passes through)
 * needs a copy; that is the fallback.
 */
export function setResponseHeaders(c: Context, headers: Record<string, string>): void {
  try {
    for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
  } catch {
    c.res = new Response(c.res.body, c.res);
    for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
  }
}
