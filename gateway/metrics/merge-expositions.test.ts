import { describe, expect, it } from 'vitest';
import { mergeExpositions } from './engine-exposition.js';

describe('mergeExpositions (several engines in one /v1/metrics)', () => {
  it('declares each family once, keeps its samples together, labels each with its model unless it names one already', () => {
    const llama = '# HELP llamacpp:tokens Tokens.\n# TYPE llamacpp:tokens counter\nllamacpp:tokens 5\n# HELP llamacpp:busy Busy.\n# TYPE llamacpp:busy gauge\nllamacpp:busy{slot="0"} 1\n';
    const vllm = '# HELP vllm:num_requests_running Running.\n# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{engine="0",model_name="org/embed"} 2\n# TYPE llamacpp:tokens counter\nllamacpp:tokens 7\n';
    expect(mergeExpositions([
      { text: llama, model: 'org/chat' },
      { text: vllm, model: 'org/embed' },
    ])).toBe(
      [
        '# HELP llamacpp:tokens Tokens.',
        '# TYPE llamacpp:tokens counter',
        'llamacpp:tokens{model_name="org/chat"} 5',
        'llamacpp:tokens{model_name="org/embed"} 7',
        '# HELP llamacpp:busy Busy.',
        '# TYPE llamacpp:busy gauge',
        'llamacpp:busy{model_name="org/chat",slot="0"} 1',
        '# HELP vllm:num_requests_running Running.',
        '# TYPE vllm:num_requests_running gauge',
        'vllm:num_requests_running{engine="0",model_name="org/embed"} 2',
        '',
      ].join('\n'),
    );
  });

  it('escapes a model name for the label and keeps histogram samples in their family', () => {
    const h = '# TYPE x:lat histogram\nx:lat_bucket{le="1"} 1\nx:lat_sum 0.5\nx:lat_count 1\n';
    const out = mergeExpositions([
      { text: h, model: 'a"b' },
      { text: h, model: 'c' },
    ]);
    expect(out.split('\n').filter((l) => l.startsWith('# TYPE'))).toEqual(['# TYPE x:lat histogram']);
    expect(out).toContain('x:lat_bucket{model_name="a\\"b",le="1"} 1\nx:lat_sum{model_name="a\\"b"} 0.5\nx:lat_count{model_name="a\\"b"} 1\nx:lat_bucket{model_name="c",le="1"} 1');
  });
});
