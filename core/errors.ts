// The one error module: every refusal portico sends is a PorticoError built from this table,
// so a code always maps to the same HTTP status, OpenAI error `type` and message shape.
// Codes are stable strings clients may match on (documented in README).

type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error'
  | 'engine_error';

interface ErrorSpec {
  status: number;
  type: ErrorType;
  /** Message template; `%s` is replaced by the detail given at the throw site. */
  message: string;
}

export const ERRORS = {
  invalid_json: { status: 400, type: 'invalid_request_error', message: 'Request body is not valid JSON: %s' },
  invalid_request: { status: 400, type: 'invalid_request_error', message: '%s' },
  invalid_parameter: { status: 400, type: 'invalid_request_error', message: '%s' },
  json_too_deep: { status: 400, type: 'invalid_request_error', message: 'Request body nests deeper than %s levels' },
  bad_request: { status: 400, type: 'invalid_request_error', message: 'Malformed HTTP request: %s' },
  invalid_image: { status: 400, type: 'invalid_request_error', message: '%s' },
  image_fetch_blocked: { status: 400, type: 'invalid_request_error', message: 'Image URL refused: %s' },
  image_fetch_failed: { status: 400, type: 'invalid_request_error', message: 'Image could not be fetched: %s' },
  too_many_images: { status: 400, type: 'invalid_request_error', message: '%s' },
  unsupported_content_part: { status: 400, type: 'invalid_request_error', message: 'Unsupported content part: %s' },
  unsupported_modality: { status: 400, type: 'invalid_request_error', message: '%s' },
  model_route_mismatch: { status: 400, type: 'invalid_request_error', message: '%s' },
  media_fetch_blocked: { status: 400, type: 'invalid_request_error', message: 'Media URL refused: %s' },
  media_fetch_failed: { status: 400, type: 'invalid_request_error', message: 'Media could not be fetched: %s' },
  too_many_videos: { status: 400, type: 'invalid_request_error', message: '%s' },
  too_many_audios: { status: 400, type: 'invalid_request_error', message: '%s' },
  invalid_video: { status: 400, type: 'invalid_request_error', message: '%s' },
  video_too_long: { status: 400, type: 'invalid_request_error', message: '%s' },
  invalid_audio: { status: 400, type: 'invalid_request_error', message: '%s' },
  audio_too_long: { status: 400, type: 'invalid_request_error', message: '%s' },
  missing_api_key: { status: 401, type: 'authentication_error', message: 'Missing API key: send "Authorization: Bearer <key>" (or "x-api-key: <key>")' },
  invalid_api_key: { status: 401, type: 'authentication_error', message: 'Invalid API key' },
  model_not_allowed: { status: 403, type: 'permission_error', message: 'This API key may not use model %s' },
  origin_not_allowed: { status: 403, type: 'permission_error', message: 'Origin %s is not allowed (NIM_CORS_ALLOW_ORIGINS)' },
  model_not_found: { status: 404, type: 'not_found_error', message: 'The model `%s` does not exist' },
  route_not_found: { status: 404, type: 'not_found_error', message: 'No route for %s' },
  response_not_stored: { status: 404, type: 'not_found_error', message: 'Response %s is not stored: portico keeps no responses (stateless)' },
  method_not_allowed: { status: 405, type: 'invalid_request_error', message: 'Method %s' },
  request_timeout: { status: 408, type: 'invalid_request_error', message: 'The request was not received in time: %s' },
  payload_too_large: { status: 413, type: 'invalid_request_error', message: '%s' },
  image_too_large: { status: 413, type: 'invalid_request_error', message: '%s' },
  video_too_large: { status: 413, type: 'invalid_request_error', message: '%s' },
  audio_too_large: { status: 413, type: 'invalid_request_error', message: '%s' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error', message: '%s' },
  unprocessable_entity: { status: 422, type: 'invalid_request_error', message: '%s' },
  headers_too_large: { status: 431, type: 'invalid_request_error', message: '%s' },
  too_many_requests: { status: 429, type: 'rate_limit_error', message: '%s' },
  rate_limit_exceeded: { status: 429, type: 'rate_limit_error', message: '%s' },
  client_closed: { status: 499, type: 'invalid_request_error', message: 'The client closed the request before the answer was ready' },
  internal_error: { status: 500, type: 'server_error', message: 'Internal error: %s' },
  not_implemented: { status: 501, type: 'server_error', message: '%s' },
  engine_error: { status: 502, type: 'engine_error', message: 'The inference engine failed: %s' },
  engine_unavailable: { status: 503, type: 'server_error', message: 'The inference engine is not ready: %s' },
  engine_timeout: { status: 504, type: 'server_error', message: 'The inference engine did not answer in time: %s' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export interface ErrorEnvelope {
  error: { message: string; type: string; param: string | null; code: string };
}

export interface ErrorOptions {
  param?: string | null;
  headers?: Record<string, string>;
  cause?: unknown;
  /** Overrides for errors passed on from the engine (its status, type and message). */
  status?: number;
  type?: string;
  message?: string;
}

export class PorticoError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  /** Extra response headers (Retry-After, WWW-Authenticate, ...). */
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, detail = '', opts: ErrorOptions = {}) {
    const spec: ErrorSpec = ERRORS[code];
    super(opts.message ?? spec.message.replace('%s', detail), { cause: opts.cause });
    this.name = 'PorticoError';
    this.code = code;
    this.status = opts.status ?? spec.status;
    this.type = opts.type ?? spec.type;
    this.param = opts.param ?? null;
    this.headers = opts.headers ?? {};
  }

  toJSON(): ErrorEnvelope {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** Anything thrown → an envelope with no stack or internal address in it. */
export function toPorticoError(err: unknown): PorticoError {
  if (err instanceof PorticoError) return err;
  return new PorticoError('internal_error', 'unexpected failure', { cause: err });
}

/**
 * An engine's error message, fit for a client: its first line, at most 300 characters, with URLs,
 * IP addresses, filesystem paths and Python/JS traceback markers removed (internal topology and
 * code layout stay inside).
 */
export function redactEngineMessage(text: string): string {
  const first = text.split(/\r?\n/).find((l) => l.trim() !== '' && !/^\s*Traceback \(most recent call last\)/.test(l)) ?? '';
  const out = first
    .replace(/\b[a-z][\w+.-]*:\/\/[^\s'"<>)]+/gi, '<url>')
    // Credentials an engine may echo: bearer tokens and key-shaped strings (OpenAI, NVIDIA, Hugging Face).
    .replace(/\b(bearer|basic)\s+[^\s'",;)]+/gi, '$1 <redacted>')
    .replace(/\b(token|api[_-]?key|password|secret)(\s*[:=]\s*)[^\s'",;)]+/gi, '$1$2<redacted>')
    .replace(/\b(?:sk|nvapi|hf)[-_][A-Za-z0-9_-]{6,}/g, '<redacted>')
    .replace(/\[[0-9a-f:.]*:[0-9a-f:.]*\](?::\d+)?/gi, '<address>')
    .replace(/\b(?:[0-9a-f]{1,4}:){3,7}[0-9a-f]{1,4}\b/gi, '<address>')
    .replace(/\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b/g, '<address>')
    .replace(/(^|[\s'"(=])(?:[A-Za-z]:)?(?:[\\/][\w.@+-]+){2,}[\\/]?(?::\d+)*/g, '$1<path>')
    .replace(/\bat\s+\S+\s+\(<path>\)/g, '')
    .trim()
    .slice(0, 300);
  return out || 'no detail';
}

// The envelope's three renderings, drawn here only: a JSON answer body, the final events of an SSE
// stream that already started (status 200 sent), and a raw HTTP answer for a request Node's parser
// refused before any framework saw it.

/** The JSON answer body: `{"error": {message, type, param, code}}`. */
export function envelope(err: PorticoError): string {
  return JSON.stringify(err.toJSON());
}

/** The last events of a failed stream: the envelope as a `data:` event, then `data: [DONE]`. */
export function sseErrorText(err: PorticoError): string {
  return `data: ${envelope(err)}\n\ndata: [DONE]\n\n`;
}

/** A whole HTTP/1.1 answer (status line, headers, envelope body) for a raw socket; closes it. */
export function rawHttpError(err: PorticoError, statusText: string, headers: Record<string, string> = {}): string {
  const body = envelope(err);
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return `HTTP/1.1 ${err.status} ${statusText}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`;
}

/**
 * Where an error was told to the client: as the HTTP response, or as the final event of an SSE
 * stream that had already started (status 200 sent). Counted per phase and code (errorCounts).
 */
export type ErrorPhase = 'response' | 'stream';
const counts = new Map<string, number>();

/** Record an error sent to a client (called by the app's error handler and the SSE paths). */
export function reportError(err: PorticoError, phase: ErrorPhase): void {
  const key = `${phase}:${err.code}`;
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

/** Errors sent since start, keyed `response:<code>` / `stream:<code>` (process-wide). */
export function errorCounts(): Record<string, number> {
  return Object.fromEntries(counts);
}

/** The error table as Markdown (README "Errors" section; a test keeps them in step). */
export function errorTableMarkdown(): string {
  const rows = Object.entries(ERRORS as Record<string, ErrorSpec>)
    .sort(([, a], [, b]) => a.status - b.status)
    .map(([code, e]) => `| ${e.status} | \`${code}\` | \`${e.type}\` | ${e.message.replace('%s', '…').replace(/\|/g, '\\|')} |`);
  return ['| Status | `code` | `type` | Message |', '|---|---|---|---|', ...rows].join('\n');
}
