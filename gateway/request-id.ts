// Request ids the app makes for requests that bring none: 32 random hex digits, the shape of nginx's $request_id (what the
// container's front proxy sends), drawn from a pooled random buffer: one short string per request
// instead of randomUUID's formatting.
import { randomFillSync } from 'node:crypto';

const POOL = Buffer.allocUnsafe(16 * 256);
let at = POOL.length;

export function newRequestId(): string {
  if (at === POOL.length) {
    randomFillSync(POOL);
    at = 0;
  }
  const id = POOL.toString('hex', at, at + 16);
  at += 16;
  return id;
}
