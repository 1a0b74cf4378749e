import { describe, expect, it } from 'vitest';
import { KeySet } from '../../cli/init/key-set.ts';

/** A set of the keys (0, n) for each n given: no key is (0, 0). */
function keysOf(...ns: number[]): KeySet {
  const set = new KeySet();
  for (const n of ns) set.add(0, n);
  return set;
}

function listed(set: KeySet): number[] {
  const out: number[] = [];
  set.forEach((hi, lo) => {
    out.push(hi * 1000 + lo);
  });
  return out.sort((a, b) => a - b);
}

describe('KeySet.absorbBounded', () => {
  it('adds the keys it lacks and counts the ones it held already', () => {
    const into = keysOf(1, 2, 3);
    expect(into.absorbBounded(keysOf(2, 3, 4, 5), 10)).toBe(2);
    expect([into.size, listed(into)]).toEqual([5, [1, 2, 3, 4, 5]]);
  });

  it('a key already held still counts once the set is at its bound', () => {
    const into = keysOf(1, 2);
    expect(into.absorbBounded(keysOf(1, 2), 2)).toBe(2);
    expect(into.size).toBe(2);
  });

  it('is undefined once a new key finds the set full, and adds no key past the bound', () => {
    const into = keysOf(1, 2);
    expect(into.absorbBounded(keysOf(3, 4, 5, 6), 3)).toBeUndefined();
    expect(into.size).toBe(3);
    expect(listed(into).slice(0, 2)).toEqual([1, 2]);
  });

  it('grows past its first table while absorbing', () => {
    const many = Array.from({ length: 3000 }, (_, i) => i + 1);
    const into = keysOf(...many.slice(0, 1000));
    expect(into.absorbBounded(keysOf(...many), 5000)).toBe(1000);
    expect([into.size, listed(into)]).toEqual([3000, many]);
  });
});
