// CORS from NIM_CORS_ALLOW_ORIGINS / _ALLOW_METHODS / _ALLOW_HEADERS / _EXPOSE_HEADERS / _MAX_AGE.
// No origins configured (portico's default) = no CORS headers at all. `*` in the origins allows
// any origin (answered `Access-Control-Allow-Origin: *`: no cookies are involved, the key travels
// in the Authorization header); otherwise origins are matched exactly (scheme://host[:port]).
// `*` in methods or headers reflects what the browser asks for (a literal `*` would not cover
// Authorization). Preflights are answered here, before auth, as browsers send them without
// credentials; a refused origin's preflight gets a 403 envelope and no CORS headers.
// Requests from a refused origin are still served (CORS is a browser rule, not access control;
// the API key is), just without CORS headers, so the browser hides the answer.
import type { MiddlewareHandler } from 'hono';
import { PorticoError } from '../core/errors.js';
import { setResponseHeaders } from './response-guard.js';

export interface CorsOptions {
  allowOrigins: readonly string[];
  allowMethods: readonly string[];
  allowHeaders: readonly string[];
  exposeHeaders: readonly string[];
  maxAge: number;
}

const norm = (origin: string) => origin.trim().replace(/\/+$/, '').toLowerCase();
/** What a browser may send in Access-Control-Request-Headers: a list of header names. */
const HEADER_LIST = /^[\w!#$%&'*+.^`|~-]+(?:\s*,\s*[\w!#$%&'*+.^`|~-]+)*$/;
const METHOD = /^[A-Za-z]{1,20}$/;

export function cors(opts: CorsOptions | undefined): MiddlewareHandler {
  if (!opts || opts.allowOrigins.length === 0) return (_c, next) => next();
  const anyOrigin = opts.allowOrigins.includes('*');
  const origins = new Set(opts.allowOrigins.map(norm));
  const anyMethod = opts.allowMethods.includes('*');
  const anyHeader = opts.allowHeaders.includes('*');
  const allowed = (origin: string) => anyOrigin || origins.has(norm(origin));
  const vary = anyOrigin ? undefined : 'Origin';

  return async (c, next) => {
    const origin = c.req.header('origin');
    const wantMethod = c.req.header('access-control-request-method');
    if (c.req.method === 'OPTIONS' && origin !== undefined && wantMethod !== undefined) {
      if (!allowed(origin)) {
        throw new PorticoError('origin_not_allowed', JSON.stringify(origin.slice(0, 200)), { headers: { vary: 'Origin' } });
      }
      const wantHeaders = c.req.header('access-control-request-headers') ?? '';
      const h: Record<string, string> = {
        'access-control-allow-origin': anyOrigin ? '*' : origin,
        'access-control-allow-methods': anyMethod ? (METHOD.test(wantMethod) ? wantMethod.toUpperCase() : '') : opts.allowMethods.join(', '),
        'access-control-max-age': String(opts.maxAge),
      };
      const allowHeaders = anyHeader ? (HEADER_LIST.test(wantHeaders) ? wantHeaders : '') : opts.allowHeaders.join(', ');
      if (allowHeaders) h['access-control-allow-headers'] = allowHeaders;
      const varies = [vary, anyHeader ? 'Access-Control-Request-Headers' : undefined, anyMethod ? 'Access-Control-Request-Method' : undefined].filter(Boolean);
      if (varies.length) h.vary = varies.join(', ');
      return c.body(null, 204, h);
    }
    await next();
    if (origin === undefined) return;
    if (!allowed(origin)) {
      if (vary) setResponseHeaders(c, { vary: 'Origin' });
      return;
    }
    const h: Record<string, string> = { 'access-control-allow-origin': anyOrigin ? '*' : origin };
    if (opts.exposeHeaders.length) h['access-control-expose-headers'] = opts.exposeHeaders.join(', ');
    if (vary) h.vary = vary;
    setResponseHeaders(c, h);
  };
}
