// What node-server hands the app beside the WHATWG Request: the Node request and response objects.
// Reading them directly is cheaper on the request path than the Request's getters.
import type { Context } from 'hono';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * One request header (lower-case name), read from the Node request's raw header list when there is
 * one: `c.req.header()` would build a WHATWG Headers of every header on node-server. Elsewhere
 * (app.request() in tests) it asks the Request.
 */
export function requestHeader(c: Context, name: string): string | undefined {
  const raw = incomingOf(c)?.rawHeaders;
  if (!raw) return c.req.header(name);
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!;
    if (k.length === name.length && k.toLowerCase() === name) return raw[i + 1];
  }
  return undefined;
}

export function incomingOf(c: Context): IncomingMessage | undefined {
  return (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
}

/** node-server's response object, to tear down the connection of a client that stopped reading. */
export function outgoingOf(c: Context): ServerResponse | undefined {
  return (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
}
