// Reads a JSON request body with the size cap enforced while reading (not after), so an oversize
// upload is refused after at most `limit` bytes instead of being buffered whole.
import type { Context } from 'hono';
import type { IncomingMessage } from 'node:http';
import { PorticoError } from '../core/errors.js';
import { incomingOf, requestHeader } from './node-request.js';

export interface RawJson {
  /** The bytes as received: forwarded unchanged when the gateway changes nothing. */
  raw: Uint8Array;
  value: unknown;
}

/** Deeper bodies are refused before parsing: recursive code downstream (JSON.stringify, the engine's parser) must not overflow. */
export const MAX_JSON_DEPTH = 128;

/** application/json, or any application/*+json, with optional parameters. */
const JSON_TYPE = /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i;

export async function readJson(c: Context, limit: number): Promise<RawJson> {
  const type = requestHeader(c, 'content-type');
  if (type === undefined || !JSON_TYPE.test(type)) {
    throw new PorticoError('unsupported_media_type', `Content-Type must be application/json (got ${type === undefined ? 'none' : JSON.stringify(type.slice(0, 100))})`);
  }
  const declared = requestHeader(c, 'content-length');
  if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit);
  // On node-server, read the IncomingMessage itself: `c.req.raw.body` would build a WHATWG Request
  // and a web stream over the socket for every request (bench/NOTES.md, fix 1).
  const incoming = incomingOf(c);
  const raw = incoming ? await readIncoming(incoming, limit) : await readLimited(c.req.raw.body, limit);
  if (raw.byteLength === 0) throw new PorticoError('invalid_json', 'the body is empty');
  if (jsonDepthExceeds(raw, MAX_JSON_DEPTH)) throw new PorticoError('json_too_deep', String(MAX_JSON_DEPTH));
  let value: unknown;
  try {
    value = JSON.parse(UTF8.decode(raw));
  } catch (err) {
    throw new PorticoError('invalid_json', err instanceof Error ? err.message : 'parse error');
  }
  return { raw, value };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function readIncoming(incoming: IncomingMessage, limit: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err?: unknown) => {
      incoming.off('data', onData).off('end', onEnd).off('error', done).off('close', onClose);
      if (err) reject(err);
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // Stop reading; the 413 goes out with `connection: close`, which ends the upload.
        incoming.pause();
        done(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => done();
    const onClose = () => done(new PorticoError('client_closed', 'the body was not received in full'));
    incoming.on('data', onData).on('end', onEnd).on('error', done).on('close', onClose);
  });
}

async function readLimited(body: ReadableStream<Uint8Array> | null, limit: number): Promise<Uint8Array> {
  if (!body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(size);
  let off = 0;
  for (const ch of chunks) {
    out.set(ch, off);
    off += ch.byteLength;
  }
  return out;
}

function tooLarge(limit: number): PorticoError {
  return new PorticoError('payload_too_large', `Request body exceeds the limit of ${limit} bytes (NIM_MAX_REQUEST_BYTES)`, {
    headers: { connection: 'close' },
  });
}

/**
 * Does the JSON text nest arrays/objects deeper than `max`? One pass over the bytes; strings are
 * skipped with indexOf (fast over base64 images). Malformed text is left to JSON.parse.
 */
export function jsonDepthExceeds(raw: Uint8Array, max: number): boolean {
  let depth = 0;
  const n = raw.length;
  for (let i = 0; i < n; i++) {
    const b = raw[i]!;
    if (b === 0x22) {
      // Skip the string: find the closing quote that is not escaped (odd run of backslashes).
      let from = i + 1;
      for (;;) {
        const q = raw.indexOf(0x22, from);
        if (q < 0) return false;
        let k = q - 1;
        while (k >= from && raw[k] === 0x5c) k--;
        if ((q - 1 - k) % 2 === 0) {
          i = q;
          break;
        }
        from = q + 1;
      }
    } else if (b === 0x5b || b === 0x7b) {
      if (++depth > max) return true;
    } else if (b === 0x5d || b === 0x7d) {
      depth--;
    }
  }
  return false;
}
