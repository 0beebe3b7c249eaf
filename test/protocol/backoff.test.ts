import { describe, expect, it } from 'vitest';
import { backoff } from '../../protocol/backoff.js';

describe('backoff', () => {
  const policy = { firstMs: 1000, maxMs: 30_000 };

  it('doubles from the first delay up to the longest', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((failures) => backoff(failures, policy))).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  });

  it('stays finite after very many failures', () => {
    expect(backoff(10_000, policy)).toBe(30_000);
  });

  it('spreads a delay below it with jitter, never above', () => {
    const delays = Array.from({ length: 200 }, () => backoff(3, { ...policy, jitter: 0.5 }));
    expect(Math.max(...delays)).toBeLessThanOrEqual(4000);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(2000);
    expect(new Set(delays).size).toBeGreaterThan(1);
  });
});
