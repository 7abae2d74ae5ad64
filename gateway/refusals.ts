// Requests refused before the app sees them (issue 12, item 8): the Node adaptor turns an incoming
// message into a Request and throws a RequestError for a Host that is not a host (`x@y`), a
// backslash in the path or a missing Host; its default answer is an empty 400. Here they get what
// every other answer gets: the OpenAI envelope, an x-request-id, an access-log line and the
// portico_errors_total metric. Node's parser-level refusals (server.ts clientError) log here too.
import { getRequestListener, RequestError } from '@hono/node-server';
import type { Hono } from 'hono';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { PorticoError, envelope, reportError } from '../core/errors.js';

/** One access-log line for an answer given outside the app (same fields as observe.ts's). */
export function logRefusal(log: Logger | undefined, e: PorticoError, req: { id: string; method?: string; path?: string }): void {
  reportError(e, 'response');
  if (!log?.isLevelEnabled('info')) return;
  // The raw target is request-derived text: bounded here, escaped by the logger's human format.
  const path = req.path === undefined ? undefined : req.path.slice(0, 256);
  log.info({ request_id: req.id, method: req.method, path, status: e.status, error: e.code }, `${req.method ?? '-'} ${path ?? '-'} ${e.status}`);
}

/** The adaptor's request listener, with its refusals answered as the app answers errors. */
export function requestListener(app: Hono<any>, log: Logger | undefined): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  // The adaptor calls errorHandler synchronously inside the listener call when the Request cannot
  // be built (before any await), and passes only the error: the message being handled is kept here.
  let current: IncomingMessage | undefined;
  const inner = getRequestListener(app.fetch, {
    errorHandler: (err: unknown) => {
      const e =
        err instanceof RequestError
          ? new PorticoError('bad_request', err.message)
          : new PorticoError('internal_error', 'unexpected failure', { cause: err });
      const id = randomUUID();
      logRefusal(log, e, { id, method: current?.method, path: current?.url });
      return new Response(envelope(e), {
        status: e.status,
        headers: { 'content-type': 'application/json', 'x-request-id': id, connection: 'close' },
      });
    },
  });
  return (req, res) => {
    current = req;
    try {
      return inner(req, res);
    } finally {
      current = undefined;
    }
  };
}
