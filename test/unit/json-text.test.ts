import { describe, expect, it } from 'vitest';
import { inexactNumbers, mayHoldInexact, scanLine } from '../../shared/formats/json-text.ts';

const scan = (line: string) => scanLine(line, { keys: 0, longNumber: false });

describe('scanLine: one pass outside strings', () => {
  it('counts the keys the text writes, not colons inside strings (escaped quotes too)', () => {
    expect(scan('{"a":1,"at":"10:00:00","b":{"c":"x\\":y"}}').keys).toBe(4);
    expect(scan('{"k":"a","k":"b"}').keys).toBe(2);
  });

  it('finds numbers of 16 or more digits or a three-digit exponent, not long digit runs in strings', () => {
    expect(scan('{"a":123456789012345,"b":1e99}').longNumber).toBe(false);
    expect(scan('{"s":"12345678901234567890","t":true,"f":false}').longNumber).toBe(false);
    expect(scan('{"a":1234567890123456}').longNumber).toBe(true);
    expect(scan('{"a":1.5e-400}').longNumber).toBe(true);
    expect(scan('[0.14285714285714285]').longNumber).toBe(true);
  });
});

describe('inexact numbers', () => {
  it("a long number that is its double's own text is exact; one that is not is found with its path", () => {
    expect(mayHoldInexact('[0.14285714285714285,9007199254740992]')).toBe(false);
    expect(mayHoldInexact('[0.1000000000000000055]')).toBe(true);
    expect(
      inexactNumbers('{"a":[1,{"b":12345678901234567890}],"c":1e-400,"d":1e400,"e":1.50,"f":-0}'),
    ).toEqual([
      { path: ['a', 1, 'b'], source: '12345678901234567890', value: 12345678901234567000 },
      { path: ['c'], source: '1e-400', value: 0 },
      { path: ['d'], source: '1e400', value: Number.POSITIVE_INFINITY },
    ]);
  });
});
