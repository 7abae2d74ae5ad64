import { describe, expect, it } from 'vitest';
import { engineError } from '../gateway/dialect.js';
import { ERRORS, errorTableMarkdown, PorticoError, redactEngineMessage, toPorticoError } from './errors.js';

describe('the error table', () => {
  it('covers every status of the contract, each code with one status and an OpenAI type', () => {
    const statuses = new Set<number>(Object.values(ERRORS).map((e) => e.status));
    for (const s of [400, 401, 403, 404, 405, 408, 413, 415, 422, 429, 431, 500, 502, 503, 504]) expect(statuses.has(s), String(s)).toBe(true);
    for (const [code, e] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^[a-z_]+$/);
      expect(e.type).toMatch(/_error$/);
    }
    expect(errorTableMarkdown().split('\n')).toHaveLength(Object.keys(ERRORS).length + 2);
  });

  it('anything unexpected becomes a 500 with no detail', () => {
    const e = toPorticoError(new Error('connect ECONNREFUSED 10.0.0.7:8001 at /srv/app/x.js:1:2'));
    expect(e.status).toBe(500);
    expect(JSON.stringify(e.toJSON())).not.toMatch(/10\.0\.0\.7|ECONN|srv/);
  });
});

describe('engine errors', () => {
  const body = (message: string, type?: string) => JSON.stringify({ error: { message, type } });

  it('maps statuses', () => {
    expect(engineError(400, body('max_tokens too large', 'BadRequestError'))).toMatchObject({ status: 400, code: 'invalid_request', type: 'BadRequestError' });
    expect(engineError(422, '{"detail":"bad field"}')).toMatchObject({ status: 422, code: 'unprocessable_entity', message: 'bad field' });
    expect(engineError(413, body('too big'))).toMatchObject({ status: 413, code: 'payload_too_large' });
    const busy = engineError(429, body('busy'));
    expect(busy).toMatchObject({ status: 429, code: 'too_many_requests' });
    expect(busy.headers['retry-after']).toBe('1');
    expect(engineError(401, body('bad engine key'))).toMatchObject({ status: 502, code: 'engine_error' });
    expect(engineError(403, body('no'))).toMatchObject({ status: 502, code: 'engine_error' });
    expect(engineError(404, 'Not Found')).toMatchObject({ status: 501, code: 'not_implemented' });
    expect(engineError(500, body('CUDA OOM'))).toMatchObject({ status: 502, code: 'engine_error' });
    expect(engineError(503, body('loading'))).toMatchObject({ status: 503, code: 'engine_unavailable' });
    expect(engineError(504, 'gateway timeout')).toMatchObject({ status: 504, code: 'engine_timeout' });
  });

  it('always yields a string message and type, whatever the engine sent', () => {
    for (const text of ['', 'null', '{"error":{"message":{"nested":1},"type":7}}', '{"error":42}', '{"message":["a"]}', '\u0000\u0001']) {
      for (const status of [400, 422, 500]) {
        const e = engineError(status, text).toJSON().error;
        expect(typeof e.message).toBe('string');
        expect(typeof e.type).toBe('string');
        expect(e.message.length).toBeGreaterThan(0);
      }
    }
  });

  it('redacts addresses, URLs, paths and tracebacks', () => {
    const trace = 'Traceback (most recent call last)\n  File "/opt/vllm/engine.py", line 3\nRuntimeError: boom';
    expect(redactEngineMessage(trace)).not.toMatch(/opt|vllm|engine\.py/);
    const m = redactEngineMessage('upstream http://10.1.2.3:8001/v1/x failed; peer 192.168.0.9:443 [fe80::1]:80 fd00:1:2:3::9 file /var/lib/models/llama/model.gguf');
    expect(m).not.toMatch(/10\.1\.2\.3|192\.168|fe80|fd00|\/var\/lib/);
    expect(m).toContain('<url>');
    expect(m).toContain('<path>');
    expect(redactEngineMessage('max_tokens must be <= 4096 at 12:34:56, input/output mismatch')).toBe('max_tokens must be <= 4096 at 12:34:56, input/output mismatch');
    expect(redactEngineMessage('x'.repeat(1000))).toHaveLength(300);
    expect(engineError(500, JSON.stringify({ error: { message: 'failed at /home/user/vllm/worker.py:88' } })).message).not.toContain('/home');
  });

  it('PorticoError keeps headers for Retry-After / WWW-Authenticate', () => {
    expect(new PorticoError('too_many_requests', 'x', { headers: { 'retry-after': '1' } }).headers).toEqual({ 'retry-after': '1' });
  });
});
