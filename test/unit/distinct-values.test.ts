import { describe, expect, it } from 'vitest';
import { BITMAP_LIMIT, DistinctValues } from '../../cli/init/distinct-values.ts';

function valuesOf(...values: (string | number)[]): DistinctValues {
  const set = new DistinctValues();
  for (const v of values) set.add(v);
  return set;
}

// Whole numbers at the edges of the bitmap's 32-bit words (bit 31 makes a word negative in JavaScript),
// one past the bitmap (a 64-bit key) and a text (a hash).
const EDGES = [0, 1, 31, 32, 63, 64, 1000, 1023, 1024, 32_767, 32_768, BITMAP_LIMIT - 1];

describe('DistinctValues across sets', () => {
  it('absorb counts the values held already, bit by bit and key by key', () => {
    const into = valuesOf(...EDGES.filter((_, i) => i % 2 === 0), BITMAP_LIMIT, 'a');
    const repeats = into.absorb(valuesOf(...EDGES, BITMAP_LIMIT, 'a', 'b'));
    expect(repeats).toBe(EDGES.length / 2 + 2);
    expect(into.size).toBe(EDGES.length + 3);
    for (const v of [...EDGES, BITMAP_LIMIT, 'a', 'b']) expect(into.has(v)).toBe(true);
    expect(into.has(2)).toBe(false);
  });

  it('absorb into an empty set grows its bitmap to the largest number', () => {
    const into = new DistinctValues();
    expect(into.absorb(valuesOf(31, BITMAP_LIMIT - 1))).toBe(0);
    expect([into.size, into.has(31), into.has(BITMAP_LIMIT - 1), into.has(30)]).toEqual([
      2,
      true,
      true,
      false,
    ]);
  });

  it('missingFrom counts each value the parent lacks, its bitmap shorter or longer', () => {
    const child = valuesOf(...EDGES, BITMAP_LIMIT, 'a', 'b');
    const parent = valuesOf(0, 31, 63, 1024, 'a');
    expect(child.missingFrom(parent, 3)).toEqual({
      count: EDGES.length - 4 + 2,
      examples: ['1', '32', '64'],
    });
    expect(parent.missingFrom(child, 3)).toEqual({ count: 0, examples: [] });
    expect(valuesOf(5).missingFrom(valuesOf(BITMAP_LIMIT - 1), 1)).toEqual({ count: 1, examples: ['5'] });
  });
});
