import { describe, expect, it } from 'vitest';
import { StreamUsage, usageFromJson } from './usage.js';

const enc = (s: string) => new TextEncoder().encode(s);
/** The bytes of `s` in an ArrayBuffer of their own (what `arrayBuffer()` of a fetch body gives). */
const arrayBuffer = (s: string): ArrayBuffer => {
  const bytes = enc(s);
  const out = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(out).set(bytes);
  return out;
};

describe('usageFromJson', () => {
  it('reads usage wherever it sits, with nested details and fields after it', () => {
    const llama = `{"choices":[{"finish_reason":"length","index":0,"message":{"role":"assistant","content":"hdyfd"}}],"created":1,"model":"m","object":"chat.completion","usage":{"completion_tokens":5,"prompt_tokens":20,"total_tokens":25,"prompt_tokens_details":{"cached_tokens":19}},"id":"x","timings":{"prompt_n":1}}`;
    expect(usageFromJson(enc(llama))).toEqual({ prompt: 20, completion: 5 });
    const vllm = `{"id":"c","choices":[],"usage":{"prompt_tokens":579,"total_tokens":686,"completion_tokens":107,"prompt_tokens_details":null},"prompt_logprobs":null}`;
    expect(usageFromJson(arrayBuffer(vllm))).toEqual({ prompt: 579, completion: 107 });
    const embeddings = `{"object":"list","data":[{"embedding":[0.1,0.2]}],"usage":{"prompt_tokens":3,"total_tokens":3}}`;
    expect(usageFromJson(enc(embeddings))).toEqual({ prompt: 3, completion: 0 });
  });

  it('is not fooled by "usage" in generated text, and answers undefined without usage', () => {
    const text = `{"choices":[{"message":{"content":"the \\"usage\\": {\\"prompt_tokens\\": 999} of it"}}],"usage":{"prompt_tokens":2,"completion_tokens":1}}`;
    expect(usageFromJson(enc(text))).toEqual({ prompt: 2, completion: 1 });
    expect(usageFromJson(enc(`{"choices":[{"message":{"content":"\\"usage\\": {\\"prompt_tokens\\": 9}"}}]}`))).toBeUndefined();
    expect(usageFromJson(enc('{"usage":null}'))).toBeUndefined();
    expect(usageFromJson(new Uint8Array(0))).toBeUndefined();
  });
});

const chunk = (content: string) => `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":${JSON.stringify(content)}},"finish_reason":null}]}\n\n`;
const usageEvent = `data: {"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"completion_tokens":41,"prompt_tokens":36,"total_tokens":77,"prompt_tokens_details":{"cached_tokens":0}}}\n\n`;
const stream = `${chunk('Hel')}${chunk('lo "usage" ')}${chunk('!')}${usageEvent}data: [DONE]\n\n`;

describe('StreamUsage', () => {
  it('finds the final usage chunk however the stream is split into TCP chunks', () => {
    const bytes = enc(stream);
    for (let cut = 1; cut < bytes.length; cut++) {
      const s = new StreamUsage();
      s.push(bytes.subarray(0, cut));
      s.push(bytes.subarray(cut));
      expect(s.result(), `split at ${cut}`).toEqual({ prompt: 36, completion: 41 });
    }
    // One byte at a time.
    const s = new StreamUsage();
    for (let i = 0; i < bytes.length; i++) s.push(bytes.subarray(i, i + 1));
    expect(s.result()).toEqual({ prompt: 36, completion: 41 });
  });

  it('keeps the last usage (vLLM continuous usage stats) and ignores usage: null', () => {
    const s = new StreamUsage();
    s.push(enc(`data: {"choices":[],"usage":null}\n\n`));
    s.push(enc(`data: {"choices":[{"delta":{"content":"a"}}],"usage":{"prompt_tokens":4,"completion_tokens":1}}\n\n`));
    s.push(enc(`data: {"choices":[{"delta":{"content":"b"}}],"usage":{"prompt_tokens":4,"completion_tokens":2}}\n\n`));
    s.push(enc('data: [DONE]\n\n'));
    expect(s.result()).toEqual({ prompt: 4, completion: 2 });
  });

  it("falls back to llama-server's timings when the client did not ask for usage", () => {
    const s = new StreamUsage();
    s.push(enc(chunk('x')));
    s.push(enc(`data: {"choices":[{"finish_reason":"length","index":0,"delta":{}}],"object":"chat.completion.chunk","timings":{"cache_n":19,"prompt_n":1,"predicted_n":5}}\n\n`));
    expect(s.result()).toEqual({ prompt: 20, completion: 5 });
    const both = new StreamUsage();
    both.push(enc(`data: {"choices":[],"usage":{"prompt_tokens":20,"completion_tokens":5},"timings":{"cache_n":0,"prompt_n":99,"predicted_n":99}}\n\n`));
    expect(both.result()).toEqual({ prompt: 20, completion: 5 });
  });

  it('answers undefined for a stream without usage, and survives garbage', () => {
    const s = new StreamUsage();
    s.push(enc(`${chunk('a')}data: {"usage": broken\n\ndata: [DONE]\n\n`));
    expect(s.result()).toBeUndefined();
  });
});
