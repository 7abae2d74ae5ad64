import { describe, expect, it } from 'vitest';
import { restartDelayMs } from './restart.js';

describe('NIM_MODELS_RESTART backoff', () => {
  it('doubles from 1 s per consecutive death and stops growing at 30 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map(restartDelayMs)).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });
});
