import { describe, expect, it } from 'vitest';
import { duplicateKey, inexactNumbers, keyCount, scanLine } from '../../shared/formats/json-text.ts';

const scan = (line: string) => scanLine(line, { keys: 0, inexact: false });

describe('scanLine: one pass outside strings', () => {
  it('counts the keys the text writes, not colons inside strings (escaped quotes too)', () => {
    expect(scan('{"a":1,"at":"10:00:00","b":{"c":"x\\":y"}}').keys).toBe(4);
    expect(scan('{"k":"a","k":"b"}').keys).toBe(2);
    expect(keyCount(JSON.parse('{"k":"a","k":"b"}'))).toBe(1);
    expect(keyCount(JSON.parse('{"a":[{"b":1},{"b":2}],"c":{"d":null}}'))).toBe(5);
  });

  it("finds a number that is not its double's text; long digit runs in strings and exact doubles are not", () => {
    expect(scan('{"a":123456789012345,"b":1e99,"c":0.14285714285714285,"d":9007199254740992}').inexact).toBe(
      false,
    );
    expect(scan('{"s":"12345678901234567890","t":true,"f":false}').inexact).toBe(false);
    expect(scan('{"a":1234567890123456789}').inexact).toBe(true);
    expect(scan('{"a":1.5e-400}').inexact).toBe(true);
    expect(scan('[0.1000000000000000055]').inexact).toBe(true);
    expect(scan('12345678901234567890').inexact).toBe(true);
  });
});

describe('what JSON.parse does not keep', () => {
  it('inexact numbers, with their paths and the text written', () => {
    expect(
      inexactNumbers('{"a":[1,{"b":12345678901234567890}],"c":1e-400,"d":1e400,"e":1.50,"f":-0}'),
    ).toEqual([
      { path: ['a', 1, 'b'], source: '12345678901234567890', value: 12345678901234567000 },
      { path: ['c'], source: '1e-400', value: 0 },
      { path: ['d'], source: '1e400', value: Number.POSITIVE_INFINITY },
    ]);
  });

  it('the first key repeated in one object, outer objects first, with where its second one starts', () => {
    expect(duplicateKey('{"a":{"x":1,"x":2},"a":3}')).toEqual({ path: ['a'], key: 'a', character: 20 });
    expect(duplicateKey('{"l":[{"x":1},{"x":1,"x":2}]}')).toEqual({
      path: ['l', 1, 'x'],
      key: 'x',
      character: 22,
    });
    expect(duplicateKey('{"a":1,"b":{"a":1}}')).toBeUndefined();
  });
});
