import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ColumnProfile } from '../../cli/init/column-profile.ts';
import { columnType } from '../../cli/init/column-type.ts';
import { isNullToken, NULL_TOKENS, shapeOfText } from '../../cli/init/values.ts';
import { date, isOffsetTimestamp, localTimestamp, timestamp } from '../../shared/config/fields.ts';

// `init` classifies every value by char codes and the fields' own checks, without a zod parse per
// value. These tests hold it to the definition: the kind a value gets is the one the strict field
// helpers, asked through zod as the loader asks them, give it.

/** The kind by the definition: regexes for the numbers, the field helpers' zod parse for the rest. */
function referenceKind(text: string): string {
  if (/^-?\d+$/.test(text)) return /^-?0\d/.test(text) ? 'text' : 'integer';
  if (/^-?\d+\.\d+$/.test(text)) return /^-?0\d/.test(text) ? 'text' : 'decimal';
  if (/^(true|false)$/i.test(text)) return 'boolean';
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(text)) return 'uuid';
  if (!/^\d/.test(text)) return 'text';
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) return date().safeParse(text).success ? 'date' : 'text';
  if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$/.test(text))
    return localTimestamp().safeParse(text).success ? 'timestamp' : 'text';
  if (/^\d{4}-\d{2}-\d{2}T.*(Z|[+-]\d{2}:\d{2})$/.test(text) && timestamp().safeParse(text).success)
    return 'timestamptz';
  return 'text';
}

const cross = (parts: string[][]): string[] =>
  parts.reduce<string[]>((acc, part) => acc.flatMap((a) => part.map((p) => a + p)), ['']);

// Calendar and clock edges: year 0, leap years, month and day bounds, hour 24, minute 60, offsets.
const days = cross([
  ['0000', '1900', '2000', '2004', '2023'],
  ['-'],
  ['00', '01', '02', '04', '12', '13'],
  ['-'],
  ['00', '01', '28', '29', '30', '31', '32'],
]);
const times = cross([
  ['T', ' ', 't'],
  ['00', '23', '24'],
  [':'],
  ['00', '59', '60'],
  ['', ':00', ':59', ':60', ':00.5', ':00.123456', ':00.1234567'],
  ['', 'Z', 'z', '+02:00', '-23:59', '+24:00', '+02:60', '+0200', '+02', ' ', 'Zx'],
]);
const numbers = cross([
  ['', '-', '+', ' '],
  ['0', '00', '7', '07', '1234567890123456', '12345678901234567890', ''],
  ['', '.', '.5', '.50', '.0000000001', '.x', 'e3'],
]);
const others = ['TRUE', 'False', 'tRuE', 'true ', 'yes', 't', '6f1c1f84-4a57-4b8e-9d7e-2b0f3c1a9e10'];
const others2 = [
  '6F1C1F84-4A57-4B8E-9D7E-2B0F3C1A9E1G',
  '-',
  '--1',
  '1-2',
  '12:30',
  'Z',
  '1Z',
  '1+02:00',
  'x',
];

describe('init value shapes agree with the field helpers', () => {
  it('gives every value the kind the strict field helpers give it', () => {
    const values = [
      ...days,
      ...['2000-02-29', '2023-12-31', '0000-02-29'].flatMap((d) => times.map((t) => d + t)),
      ...numbers,
      ...others,
      ...others2,
    ];
    expect(values.length).toBe(210 + 3 * 3 * 3 * 3 * 7 * 11 + 4 * 7 * 7 + others.length + others2.length);
    const disagree = values.filter((v) => shapeOfText(v).kind !== referenceKind(v));
    expect(disagree).toEqual([]);
    // The edges are there: every kind occurs.
    const kinds = new Set(values.map((v) => shapeOfText(v).kind));
    expect([...kinds].sort()).toEqual(
      ['boolean', 'date', 'decimal', 'integer', 'text', 'timestamp', 'timestamptz', 'uuid'].sort(),
    );
  });

  it('reads exactly the null tokens as null', () => {
    const values = [
      ...NULL_TOKENS,
      'Null',
      'N',
      'NA',
      'n/a',
      '\\n',
      'NULLS',
      'nul',
      ' ',
      '\\N ',
      '0',
      'true',
    ];
    expect(values.filter(isNullToken)).toEqual([...NULL_TOKENS]);
  });

  it('isOffsetTimestamp is zod’s own ISO check with an offset, without year 0 (Postgres has none)', () => {
    const zod = z.iso.datetime({ offset: true });
    const values = ['2000-02-29', '2023-12-31', '0000-02-29', '1900-02-29'].flatMap((d) =>
      times.map((t) => d + t),
    );
    expect(
      values.filter((v) => isOffsetTimestamp(v) !== (zod.safeParse(v).success && !v.startsWith('0000'))),
    ).toEqual([]);
    expect(values.filter(isOffsetTimestamp).length).toBeGreaterThan(0);
  });

  it('keeps integer digits, decimals and leading zeros as before', () => {
    const col = new ColumnProfile('c', 0);
    for (const v of ['-0', '0', '-12', '0.125', '123.5', '1234567890123456', '-99999999999999999999'])
      col.addText(v);
    expect([col.min, col.max, col.intDigits, col.scale]).toEqual([
      -99999999999999999999n,
      1234567890123456n,
      20,
      3,
    ]);
    expect(columnType(col).evidence).toBe('7 values, up to 20 integer digits, max 3 decimals');
  });

  it('counts a whole number repeated after the first text value as a duplicate (one form per value in the distinct set)', () => {
    const col = new ColumnProfile('code', 0);
    for (const v of ['5', 'abc', '5', '7']) col.addText(v);
    expect(col.duplicates).toBe(1);
    expect(col.unique).toBe(false);
    expect([col.distinct?.size, col.distinct?.examples]).toEqual([3, ['5', 'abc', '7']]);
  });

  it('counts the kinds of a mixed column in the order first seen', () => {
    const col = new ColumnProfile('c', 0);
    for (const v of ['1', '2', '2.5', '1', 'x', '3', 'y']) col.addText(v);
    expect([...col.kinds]).toEqual([
      ['integer', 4],
      ['decimal', 1],
      ['text', 2],
    ]);
    expect(columnType(col).evidence).toBe('7 values, mixed: 4 whole numbers, 1 decimals, 2 text: text');
  });
});
