// Reads a JSON request body with the size cap enforced while reading (not after), so an oversize
// upload is refused after at most `limit` bytes instead of being buffered whole.
import type { Context } from 'hono';
import { PorticoError } from './errors.js';

export interface RawJson {
  /** The bytes as received: forwarded unchanged when the gateway changes nothing. */
  raw: Uint8Array;
  value: unknown;
}

export async function readJson(c: Context, limit: number): Promise<RawJson> {
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit);
  const raw = await readLimited(c.req.raw.body, limit);
  if (raw.byteLength === 0) throw new PorticoError('invalid_json', 'the body is empty');
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
  } catch (err) {
    throw new PorticoError('invalid_json', err instanceof Error ? err.message : 'parse error');
  }
  return { raw, value };
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
