import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { boolean, date, integer, numeric, timestamp } from '../../shared/config/fields.ts';
import { fastCheck, UNSURE } from '../../shared/load/fast-check.ts';

// A fast check may only say yes, and only with zod's own value: every value it answers must be the one
// `schema.parse` makes, and every value zod refuses must come back UNSURE (zod then words the reject).

/** Each input: the fast check's answer, after asserting it agrees with zod. */
function answers(schema: z.ZodType, inputs: unknown[]): unknown[] {
  const check = fastCheck(schema);
  if (!check) throw new Error('no fast check');
  return inputs.map((input) => {
    const fast = check(input);
    const zod = schema.safeParse(input);
    if (fast !== UNSURE) expect(zod).toEqual({ success: true, data: fast });
    return fast;
  });
}

describe('fastCheck', () => {
  it('answers what zod accepts, with zod’s value, and is unsure of the rest', () => {
    expect(
      answers(z.coerce.number().int().positive(), ['42', '0', '1.5', 'x', '', '9007199254740993']),
    ).toEqual([42, UNSURE, UNSURE, UNSURE, UNSURE, UNSURE]);
    expect(answers(z.coerce.number().nonnegative(), ['1.25', '-1', 'Infinity'])).toEqual([
      1.25,
      UNSURE,
      UNSURE,
    ]);
    // Plain decimal text is read without `Number`, anything else with it: the same doubles either way.
    expect(
      answers(z.coerce.number(), ['-0', '007', '0.10', '-12.5', '85246.58', ' 5', '1e3', '0x10', '.5', 7]),
    ).toEqual([-0, 7, 0.1, -12.5, 85246.58, 5, 1000, 16, 0.5, 7]);
    expect(answers(z.string().min(2).max(3), ['ab', 'a', 'abcd', 7])).toEqual(['ab', UNSURE, UNSURE, UNSURE]);
    expect(answers(z.email(), ['a@example.com', 'a@', 'a@example.com\n'])).toEqual([
      'a@example.com',
      UNSURE,
      UNSURE,
    ]);
    expect(answers(z.string().regex(/^[A-Z]+$/), ['AB', 'ab'])).toEqual(['AB', UNSURE]);
    expect(answers(z.string().optional(), ['x', undefined])).toEqual(['x', UNSURE]);
    expect(answers(z.boolean(), [true, 'true'])).toEqual([true, UNSURE]);
    expect(answers(z.stringbool(), ['Yes', 'off', 'maybe', true])).toEqual([true, false, UNSURE, UNSURE]);
    const short = z.codec(z.string().max(3), z.number().positive(), {
      decode: (s) => s.length,
      encode: (n) => 'x'.repeat(n),
    });
    expect(answers(short, ['abc', '', 'abcd'])).toEqual([3, UNSURE, UNSURE]);
  });

  it('answers the common leaves as zod does, on edge values, without zod’s parse for the plain ones', () => {
    const texts = [
      '',
      ' ',
      '0',
      '-0',
      '1',
      '-1',
      '007',
      '1.5',
      '0.10',
      '85246.58',
      ' 5',
      '5 ',
      '1e3',
      '0x10',
      '.5',
      '5.',
      'Infinity',
      'NaN',
      '9007199254740991',
      '9007199254740993',
      '999999999999999',
      '1'.repeat(16),
      '2147483647',
      '2147483648',
      '-2147483648',
      '-2147483649',
      '4294967295',
      '4294967296',
      'é',
      'ab',
      'abc',
      'abcd',
      '😀',
      '😀😀',
      '\ud800',
      'a\u0000b',
      'a\tb',
      'x\r\n',
      '"q"',
      'a@example.com',
      'A@B.CO',
      'a@',
      'a@example.com\n',
      "o'neil@example.com",
      'ü@example.com',
    ];
    const others = [7, -0, 1.5, Number.NaN, Number.POSITIVE_INFINITY, true, false, null, undefined, 2n, {}];
    const schemas: z.ZodType[] = [
      z.coerce.number().int().positive(),
      z.coerce.number().nonnegative(),
      z.coerce.number().int(),
      z.coerce.number().gt(1).lte(100),
      z.coerce.number().gte(-1).lt(1),
      z.coerce.number().min(5).min(2).max(9).max(12),
      z.coerce.number().pipe(z.int32()),
      z.coerce.number().pipe(z.uint32()),
      z.coerce.number().pipe(z.float32()),
      z.number().positive(),
      z.number(),
      z.string(),
      z.string().min(1),
      z.string().min(2).max(3),
      z.string().max(1),
      z.coerce.string().min(1),
      z.email(),
      z.email().max(20),
      z.string().regex(/^[a-z]+$/),
      z.string().regex(/^[a-z]+$/g),
      z.string().length(2),
      z.string().startsWith('a'),
      z.boolean(),
      z.coerce.boolean(),
      z.stringbool(),
    ];
    for (const schema of schemas) answers(schema, [...texts, ...others]);
    // The bench's leaves are answered without zod's parse on the values zod accepts.
    for (const [schema, inputs] of [
      [z.coerce.number().int().positive(), ['42', '1000000']],
      [z.coerce.number().nonnegative(), ['0', '85246.58']],
      [z.string().min(1), ['Ada Knuth', 'ab']],
      [z.email(), ['ada.knuth4@example.com']],
      [z.boolean(), [true, false]],
    ] as const) {
      let parses = 0;
      const parse = schema._zod.parse;
      schema._zod.parse = (payload, ctx) => {
        parses++;
        return parse(payload, ctx);
      };
      const check = fastCheck(schema);
      const answered = inputs.map((input) => check?.(input));
      expect(parses, String(schema._zod.def.type)).toBe(0);
      expect(answered).toEqual(inputs.map((input) => schema.parse(input)));
    }
  });

  it('answers the strict helpers with their own readers', () => {
    expect(answers(integer(), [' 42 ', '4x', '1e3'])).toEqual([42, UNSURE, UNSURE]);
    expect(answers(integer().pipe(z.number().positive()), ['7', '0', 'x'])).toEqual([7, UNSURE, UNSURE]);
    expect(answers(numeric({ precision: 4, scale: 1 }), ['123.4', '12.34', '1e2'])).toEqual([
      '123.4',
      UNSURE,
      '100',
    ]);
    expect(answers(date(), ['2024-02-29', '2023-02-29'])).toEqual(['2024-02-29', UNSURE]);
    expect(answers(boolean(), ['Yes', 'maybe'])).toEqual([true, UNSURE]);
    expect(answers(timestamp(), ['2024-01-02T03:04:05Z', '2024-01-02T03:04:05'])).toEqual([
      new Date('2024-01-02T03:04:05Z'),
      UNSURE,
    ]);
  });

  it('leaves to zod the schemas whose checks change a value or that it does not know', () => {
    for (const schema of [
      z.string().trim(),
      z.string().toLowerCase(),
      z.url(),
      z.string().refine((s) => s !== 'x'),
      z.coerce.number().transform((n) => n * 2),
      integer().refine((n) => n > 0),
      integer().pipe(z.number().transform((n) => n + 1)),
      z.enum(['a', 'b']),
      z.stringbool().refine((b) => b),
      z.codec(z.string().trim(), z.number(), { decode: Number, encode: String }),
    ])
      expect(fastCheck(schema), String(schema._zod.def.type)).toBeUndefined();
  });
});
