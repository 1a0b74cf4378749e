import { describe, expect, it } from 'vitest';
import {
  describeRetries,
  maxReceiveCount,
  minRetryDelaySeconds,
  RETRY_POLICY,
  type RetryPolicy,
  retryDelaySeconds,
} from '../../shared/core/backoff.ts';

const top = () => 0.999999;
const bottom = () => 0;

describe('the retry policy', () => {
  it('doubles the ceiling from the base with each delivery, up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => retryDelaySeconds(RETRY_POLICY, n, top))).toEqual([
      2, 4, 8, 16, 32, 60, 60, 60,
    ]);
  });

  it('never waits less than half the ceiling (equal jitter), nor under a second', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => retryDelaySeconds(RETRY_POLICY, n, bottom))).toEqual([
      1, 2, 4, 8, 16, 30, 30,
    ]);
    expect(minRetryDelaySeconds({ baseSeconds: 1, capSeconds: 1, budgetSeconds: 5 }, 1)).toBe(1);
    for (let i = 0; i < 500; i++) {
      const n = 1 + (i % 12);
      const s = retryDelaySeconds(RETRY_POLICY, n);
      expect(Number.isInteger(s)).toBe(true);
      expect(s).toBeGreaterThanOrEqual(minRetryDelaySeconds(RETRY_POLICY, n));
      expect(s).toBeLessThanOrEqual(Math.min(60, 2 * 2 ** (n - 1)));
    }
  });

  it('treats a receive count below 1 as the first', () => {
    expect(retryDelaySeconds(RETRY_POLICY, 0, top)).toBe(2);
    expect(retryDelaySeconds(RETRY_POLICY, -3, top)).toBe(2);
  });

  it('gives the fewest deliveries whose least delays add up to the budget', () => {
    const least = (p: RetryPolicy, deliveries: number) => {
      let sum = 0;
      for (let n = 1; n < deliveries; n++) sum += minRetryDelaySeconds(p, n);
      return sum;
    };
    for (const p of [
      RETRY_POLICY,
      { baseSeconds: 1, capSeconds: 2, budgetSeconds: 8 },
      { baseSeconds: 5, capSeconds: 300, budgetSeconds: 3600 },
    ]) {
      const m = maxReceiveCount(p);
      expect(least(p, m)).toBeGreaterThanOrEqual(p.budgetSeconds);
      expect(least(p, m - 1)).toBeLessThan(p.budgetSeconds);
    }
    // 1 + 2 + 4 + 8 + 16 + 29 × 30 = 901 s ≥ 15 min.
    expect(maxReceiveCount(RETRY_POLICY)).toBe(35);
    expect(maxReceiveCount({ baseSeconds: 1, capSeconds: 2, budgetSeconds: 8 })).toBe(9);
  });

  it('says what it does in words', () => {
    expect(describeRetries(RETRY_POLICY)).toBe(
      'for at least 15 min (35 deliveries, backoff 2 s doubling to 60 s)',
    );
    expect(describeRetries({ baseSeconds: 1, capSeconds: 2, budgetSeconds: 8 })).toBe(
      'for at least 8 s (9 deliveries, backoff 1 s doubling to 2 s)',
    );
  });
});
