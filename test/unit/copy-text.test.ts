import { describe, expect, it } from 'vitest';
import { copyField, copyValue, integerText, isoString, numberText } from '../../shared/load/write/copy.ts';

describe('isoString: toISOString, faster', () => {
  it('matches toISOString on dates across the four-digit years and their edges', () => {
    const edges = [
      0,
      -1,
      1,
      86_399_999,
      86_400_000,
      -86_400_000,
      Date.UTC(2024, 1, 29, 23, 59, 59, 999),
      Date.UTC(1969, 11, 31, 23, 59, 59, 999),
      Date.UTC(1900, 0, 1),
      -62_167_219_200_000, // 0000-01-01T00:00:00.000Z
      -62_167_219_200_001, // -000001-12-31T23:59:59.999Z: extended years
      253_402_300_799_999, // 9999-12-31T23:59:59.999Z
      253_402_300_800_000, // +010000-01-01
      8.64e15,
      -8.64e15,
    ];
    let seed = 7;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const spread = Array.from({ length: 20_000 }, () =>
      Math.floor((random() - 0.5) * 2 * 260_000_000_000_000),
    );
    for (const t of [...edges, ...spread]) {
      const date = new Date(t);
      expect(isoString(date), String(t)).toBe(date.toISOString());
      // The day cache must not leak one date's day into another's.
      const later = new Date(t + 90_000_000);
      if (!Number.isNaN(later.getTime())) expect(isoString(later)).toBe(later.toISOString());
    }
  });

  it('throws on an invalid date, as toISOString does', () => {
    expect(() => isoString(new Date(Number.NaN))).toThrow(RangeError);
  });
});

describe('copyField: the COPY text the statement path would send', () => {
  it('formats every kind of value like copyValue of its text', () => {
    const date = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6));
    const cases: [unknown, string][] = [
      [undefined, '\\N'],
      [null, '\\N'],
      ['', ''],
      ['plain', 'plain'],
      ['tab\there', 'tab\\there'],
      ['back\\slash\r\nnew', 'back\\\\slash\\r\\nnew'],
      ['\\N', '\\\\N'],
      [42, '42'],
      [-0.5, '-0.5'],
      [1e21, '1e+21'],
      [Number.NaN, 'NaN'],
      [12n, '12'],
      [true, 'true'],
      [false, 'false'],
      [date, '2024-01-02T03:04:05.006Z'],
      [{ a: 'x\ty' }, copyValue(JSON.stringify({ a: 'x\ty' }))],
      [[1, 2], '[1,2]'],
    ];
    for (const [value, text] of cases) expect(copyField(value), String(value)).toBe(text);
  });
});

describe('numberText: String(n), faster for amounts', () => {
  it('matches String on amounts with up to two decimals, and on any other double', () => {
    let seed = 3;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const values: number[] = [
      0.5,
      -0.5,
      0.01,
      -0.01,
      0.1,
      0.07,
      1.1,
      2.675,
      1.005,
      0.015,
      99.99,
      12.3,
      1e-7,
      123456789012.34,
      9999999999999.99,
      Number('99999999999999.99'), // not the double nearest to that decimal: String says so
      1e15 + 0.5,
      2 ** 52 - 0.5,
      1e21 + 0.5,
      -1e-300,
      Number.MIN_VALUE,
      Number.MAX_VALUE,
      Number.EPSILON,
      0.1 + 0.2,
      1 / 3,
      -2 / 3,
      Math.PI,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ];
    for (let i = 0; i < 50_000; i++) {
      const scale = 10 ** Math.floor(random() * 16);
      values.push(Number(((random() - 0.3) * scale).toFixed(2)));
      values.push(Number(((random() - 0.3) * scale).toFixed(Math.floor(random() * 6))));
      values.push((random() - 0.5) * scale);
    }
    for (const n of values) expect(numberText(n), String(n)).toBe(String(n));
  });
});

describe('integerText: String(n) for integers, faster', () => {
  it('matches String on every integer around the table edges and on random ones of every size', () => {
    let seed = 11;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const values: number[] = [
      -0,
      Number.MAX_SAFE_INTEGER,
      Number.MIN_SAFE_INTEGER,
      2 ** 53,
      1e21,
      -1e21,
      1e300,
    ];
    for (const edge of [0, 1000, 1e6, 1e9]) {
      for (let d = -1100; d <= 1100; d++) values.push(edge + d, -(edge + d));
    }
    for (let i = 0; i < 50_000; i++) {
      const n = Math.floor(random() * 10 ** Math.floor(random() * 17));
      values.push(n, -n);
    }
    for (const n of values) expect(integerText(n), String(n)).toBe(String(n));
  });
});
