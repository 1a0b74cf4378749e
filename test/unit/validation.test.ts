import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type DatasetDefinition, requiredFields, resolveDataset } from '../../shared/config/dataset.ts';
import type { ParsedRecord } from '../../shared/formats/parsing.ts';
import { validateRecords } from '../../shared/load/validation.ts';

const schema = z.object({
  n: z.coerce.number().int(),
  d: z.coerce.date(),
  b: z.stringbool(),
  day: z.iso.date(),
  status: z.enum(['placed', 'paid']),
  note: z.string().optional(),
  vip: z.stringbool().default(false),
});

function dataset(extra: Partial<DatasetDefinition> = {}) {
  return resolveDataset({ name: 'orders', format: 'csv', table: 'orders', schema, ...extra });
}

const GOOD = {
  n: '42',
  d: '2024-01-02T03:04:05Z',
  b: 'yes',
  day: '2024-02-29',
  status: 'paid',
  note: 'hi',
  vip: 'no',
};

const record = (fields: Record<string, unknown>, line = 2, raw = `raw ${line}`): ParsedRecord => ({
  line,
  raw,
  fields,
});

function validateOne(fields: Record<string, unknown>, extra: Partial<DatasetDefinition> = {}) {
  return validateRecords(dataset(extra), [record(fields)]);
}

function rejectOf(fields: Record<string, unknown>, extra: Partial<DatasetDefinition> = {}) {
  const { rows, rejects } = validateOne(fields, extra);
  expect(rows).toEqual([]);
  expect(rejects).toHaveLength(1);
  return rejects[0];
}

describe('validateRecords: coercions', () => {
  it('coerces CSV strings to numbers, dates, booleans; keeps ISO dates and enums as strings', () => {
    expect(validateOne(GOOD)).toEqual({
      rows: [
        {
          line: 2,
          raw: 'raw 2',
          values: {
            n: 42,
            d: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
            b: true,
            day: '2024-02-29',
            status: 'paid',
            note: 'hi',
            vip: false,
          },
        },
      ],
      rejects: [],
    });
  });

  it('reads every stringbool spelling', () => {
    const truthy = ['true', '1', 'yes', 'on', 'y', 'enabled', 'TRUE', 'Yes'];
    const falsy = ['false', '0', 'no', 'off', 'n', 'disabled', 'FALSE'];
    for (const b of truthy) expect(validateOne({ ...GOOD, b }).rows[0]?.values.b, b).toBe(true);
    for (const b of falsy) expect(validateOne({ ...GOOD, b }).rows[0]?.values.b, b).toBe(false);
  });

  it('rejects a non-number, naming the column and quoting the value', () => {
    expect(rejectOf({ ...GOOD, n: 'abc' })).toEqual({
      line: 2,
      column: 'n',
      kind: 'invalid',
      reason: 'not a valid number (got "abc")',
      raw: 'raw 2',
    });
  });

  it('keeps zod wording for other number checks', () => {
    expect(rejectOf({ ...GOOD, n: '1.5' })?.reason).toBe(
      'Invalid input: expected int, received number (got "1.5")',
    );
  });

  it('rejects a non-date', () => {
    expect(rejectOf({ ...GOOD, d: 'yesterday' })).toMatchObject({
      column: 'd',
      reason: 'not a valid date (got "yesterday")',
    });
  });

  it('rejects an unknown boolean spelling', () => {
    expect(rejectOf({ ...GOOD, b: 'maybe' })).toMatchObject({
      column: 'b',
      reason:
        'Invalid option: expected one of "true"|"1"|"yes"|"on"|"y"|"enabled"|"false"|"0"|"no"|"off"|"n"|"disabled" (got "maybe")',
    });
  });

  it('rejects an impossible ISO date and a non-ISO one', () => {
    expect(rejectOf({ ...GOOD, day: '2023-02-29' })).toMatchObject({
      column: 'day',
      reason: 'Invalid ISO date (got "2023-02-29")',
    });
    expect(rejectOf({ ...GOOD, day: '29/02/2024' })).toMatchObject({
      column: 'day',
      reason: 'Invalid ISO date (got "29/02/2024")',
    });
  });

  it('rejects a value outside an enum', () => {
    expect(rejectOf({ ...GOOD, status: 'lost' })).toMatchObject({
      column: 'status',
      reason: 'Invalid option: expected one of "placed"|"paid" (got "lost")',
    });
  });

  it('shortens a long value in the message to 57 characters and an ellipsis', () => {
    const long = 'x'.repeat(61);
    expect(rejectOf({ ...GOOD, status: long })?.reason).toBe(
      `Invalid option: expected one of "placed"|"paid" (got "${'x'.repeat(57)}...")`,
    );
    const sixty = 'y'.repeat(60);
    expect(rejectOf({ ...GOOD, status: sixty })?.reason).toBe(
      `Invalid option: expected one of "placed"|"paid" (got "${sixty}")`,
    );
  });

  it('reports the first failing column of a record', () => {
    expect(rejectOf({ ...GOOD, n: 'x', status: 'lost' })?.column).toBe('n');
  });
});

describe('validateRecords: null values', () => {
  it('reads "" as no value by default: an optional column accepts it, a default applies', () => {
    const { rows } = validateOne({ ...GOOD, note: '', vip: '' });
    expect(rows[0]?.values).toEqual({
      n: 42,
      d: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
      b: true,
      day: '2024-02-29',
      status: 'paid',
      vip: false,
    });
    expect(rows[0]?.values.note).toBeUndefined();
  });

  it('rejects "" in a required column as a missing value', () => {
    expect(rejectOf({ ...GOOD, n: '' })).toEqual({
      line: 2,
      column: 'n',
      kind: 'invalid',
      reason: 'a value is required (got "")',
      raw: 'raw 2',
    });
  });

  it('treats only the configured nullValues as no value', () => {
    // Default: 'NULL' is a string like any other.
    expect(validateOne({ ...GOOD, note: 'NULL' }).rows[0]?.values.note).toBe('NULL');
    expect(rejectOf({ ...GOOD, n: 'NULL' })?.reason).toBe('not a valid number (got "NULL")');
    const nulls = { nullValues: ['', 'NULL'] };
    expect(validateOne({ ...GOOD, note: 'NULL' }, nulls).rows[0]?.values.note).toBeUndefined();
    expect(validateOne({ ...GOOD, note: '' }, nulls).rows[0]?.values.note).toBeUndefined();
    expect(validateOne({ ...GOOD, note: 'null' }, nulls).rows[0]?.values.note).toBe('null');
    expect(rejectOf({ ...GOOD, n: 'NULL' }, nulls)?.reason).toBe('a value is required (got "NULL")');
    // Without '' in the list, an empty string reaches the schema as a string.
    expect(validateOne({ ...GOOD, note: '' }, { nullValues: ['NULL'] }).rows[0]?.values.note).toBe('');
    expect(rejectOf({ ...GOOD, n: 'x' }, { nullValues: ['NULL'] })?.reason).toBe(
      'not a valid number (got "x")',
    );
  });

  it('reads JSON null as no value and reports a missing field as "no value"', () => {
    const ndjson = resolveDataset({
      name: 'events',
      format: 'ndjson',
      table: 'events',
      schema: z.object({ id: z.number(), user: z.number().optional() }),
    });
    const { rows, rejects } = validateRecords(ndjson, [
      record({ id: 1, user: null }, 1),
      record({ id: null }, 2),
      record({ user: 3 }, 3),
      record({ id: '7' }, 4),
      record({ id: 5, extra: 'dropped' }, 5),
    ]);
    expect(rows).toEqual([
      { line: 1, raw: 'raw 1', values: { id: 1 } },
      { line: 5, raw: 'raw 5', values: { id: 5 } },
    ]);
    expect(rejects).toEqual([
      { line: 2, column: 'id', kind: 'invalid', reason: 'a value is required (got "null")', raw: 'raw 2' },
      { line: 3, column: 'id', kind: 'invalid', reason: 'a value is required (got no value)', raw: 'raw 3' },
      { line: 4, column: 'id', kind: 'invalid', reason: 'not a valid number (got "7")', raw: 'raw 4' },
    ]);
  });
});

describe('validateRecords: records that could not be parsed', () => {
  it('passes a parse error through as a reject with its column', () => {
    const { rows, rejects } = validateRecords(dataset(), [
      { line: 9, raw: '1', error: { column: 'd', reason: 'row has 1 fields, the header has 7' } },
      { line: 10, raw: '"x', error: { reason: 'malformed CSV: Quoted field unterminated' } },
      { line: 11, raw: '?' },
    ]);
    expect(rows).toEqual([]);
    expect(rejects).toEqual([
      { line: 9, column: 'd', kind: 'malformed', reason: 'row has 1 fields, the header has 7', raw: '1' },
      {
        line: 10,
        column: null,
        kind: 'malformed',
        reason: 'malformed CSV: Quoted field unterminated',
        raw: '"x',
      },
      { line: 11, column: null, kind: 'malformed', reason: 'unreadable record', raw: '?' },
    ]);
  });

  it('keeps good and bad records apart, in order', () => {
    const { rows, rejects } = validateRecords(dataset(), [
      record(GOOD, 2),
      record({ ...GOOD, n: 'x' }, 3),
      record({ ...GOOD, n: '7' }, 5),
    ]);
    expect(rows.map((r) => [r.line, r.values.n])).toEqual([
      [2, 42],
      [5, 7],
    ]);
    expect(rejects.map((r) => r.line)).toEqual([3]);
  });

  it('reports an object-level refinement without a column', () => {
    const refined = resolveDataset({
      name: 'pairs',
      format: 'csv',
      table: 'pairs',
      schema: z
        .object({ lo: z.coerce.number(), hi: z.coerce.number() })
        .refine((v) => v.lo <= v.hi, 'lo above hi'),
    });
    expect(validateRecords(refined, [record({ lo: '3', hi: '1' })]).rejects).toEqual([
      { line: 2, column: null, kind: 'invalid', reason: 'lo above hi', raw: 'raw 2' },
    ]);
  });
});

describe('requiredFields', () => {
  it('lists the fields that do not accept a missing value, in schema order', () => {
    expect(requiredFields(dataset())).toEqual(['n', 'd', 'b', 'day', 'status']);
  });

  it('leaves out optional, defaulted and nullish fields', () => {
    const d = resolveDataset({
      name: 'x',
      format: 'ndjson',
      table: 'x',
      schema: z.object({
        a: z.string(),
        b: z.string().nullish(),
        c: z.number().default(0),
        d: z.unknown(),
        e: z.coerce.string(),
      }),
    });
    // z.coerce.string() turns undefined into "undefined": it accepts a missing value.
    expect(requiredFields(d)).toEqual(['a']);
  });
});

describe('validateRecords: nested documents (issue 16 item 3)', () => {
  const nested = resolveDataset({
    name: 'orders',
    format: 'ndjson',
    table: 'orders',
    schema: z.object({
      order_no: z.number().int(),
      lines: z.array(
        z.object({
          product: z.object({ productId: z.number().int(), name: z.string() }),
          quantity: z.number().int(),
        }),
      ),
    }),
  });
  const product = { productId: 7, name: 'Chai' };
  const one = (fields: Record<string, unknown>) => {
    const { rows, rejects } = validateRecords(nested, [record(fields)]);
    expect(rows).toEqual([]);
    expect(rejects).toHaveLength(1);
    return rejects[0];
  };

  it('names the element and field a missing value belongs to, not the whole array', () => {
    expect(one({ order_no: 1, lines: [{ product, quantity: 1 }, { quantity: 2 }] })).toEqual({
      line: 2,
      column: 'lines[1].product',
      kind: 'invalid',
      reason: 'a value is required (expected object) (got no value)',
      raw: 'raw 2',
    });
  });

  it('quotes the offending value alone', () => {
    expect(one({ order_no: 1, lines: [{ product, quantity: 'two dozen' }] })).toMatchObject({
      column: 'lines[0].quantity',
      reason: 'not a valid number (got "two dozen")',
    });
    expect(
      one({
        order_no: 1,
        lines: [
          { product, quantity: 1 },
          { product: { ...product, productId: 'x' }, quantity: 1 },
        ],
      }),
    ).toMatchObject({
      column: 'lines[1].product.productId',
      reason: 'not a valid number (got "x")',
    });
  });

  it('keeps the field name alone for a top-level field', () => {
    expect(one({ order_no: 'one', lines: [] })).toMatchObject({
      column: 'order_no',
      reason: 'not a valid number (got "one")',
    });
  });
});

describe('validateRecords: one null rule at every depth (issue 16 item 4)', () => {
  const staff = (reportsTo: z.ZodType) =>
    resolveDataset({
      name: 'staff',
      format: 'ndjson',
      table: 'staff',
      schema: z.object({
        employee: z.object({
          id: z.number().int(),
          reportsTo,
          tags: z.array(z.string().optional()).default([]),
        }),
        extra: z.json().optional(),
        notes: z.record(z.string(), z.unknown()).optional(),
      }),
    });
  const optional = staff(z.number().int().optional());
  const required = staff(z.number().int());

  it('a nested null or nullValues string is no value: `.optional()` takes it, as at the top', () => {
    const { rows, rejects } = validateRecords(optional, [
      record({ employee: { id: 2, reportsTo: null } }, 1),
      record({ employee: { id: 3, reportsTo: '' } }, 2),
      record({ employee: { id: 4, reportsTo: 2, tags: ['a', null] } }, 3),
    ]);
    expect(rejects).toEqual([]);
    expect(rows.map((r) => r.values.employee)).toEqual([
      { id: 2, reportsTo: null, tags: [] },
      { id: 3, tags: [] },
      { id: 4, reportsTo: 2, tags: ['a', null] },
    ]);
  });

  it('a nested null where a value is required is a reject naming its path', () => {
    const { rows, rejects } = validateRecords(required, [
      record({ employee: { id: 2, reportsTo: null } }, 1),
      record({ employee: { id: 3, reportsTo: '' } }, 2),
    ]);
    expect(rows).toEqual([]);
    expect(rejects).toEqual([
      {
        line: 1,
        column: 'employee.reportsTo',
        kind: 'invalid',
        reason: 'a value is required (expected number) (got "null")',
        raw: 'raw 1',
      },
      {
        line: 2,
        column: 'employee.reportsTo',
        kind: 'invalid',
        reason: 'a value is required (expected number) (got "")',
        raw: 'raw 2',
      },
    ]);
  });

  it('what the schema does not declare (z.json(), z.record) it gets as read, nulls included', () => {
    const extra = { a: null, b: [1, null, ''], c: { d: null } };
    const { rows, rejects } = validateRecords(optional, [
      record({ employee: { id: 1, reportsTo: null }, extra, notes: { e: null } }, 1),
    ]);
    expect(rejects).toEqual([]);
    expect(rows[0]?.values.extra).toEqual(extra);
    expect(JSON.stringify(rows[0]?.values.notes)).toBe('{"e":null}');
    expect(JSON.stringify(rows[0]?.values.employee)).toBe('{"id":1,"reportsTo":null,"tags":[]}');
  });
});

describe('validateRecords: a number beyond a double inside a document', () => {
  it('a document schema (z.json()) refusing it: unwritable, naming the number, not the null zod shows', () => {
    const docs = resolveDataset({
      name: 'docs',
      format: 'ndjson',
      table: 'docs',
      schema: z.object({ id: z.number(), doc: z.json() }),
    });
    const { rows, rejects } = validateRecords(docs, [
      record({ id: 1, doc: { list: [1, { v: -Infinity }] } }, 1, 'line 1'),
      record({ id: 2, doc: { v: 1 } }, 2, 'line 2'),
    ]);
    expect(rows.map((r) => r.line)).toEqual([2]);
    expect(rejects).toEqual([
      {
        line: 1,
        column: 'doc.list[1].v',
        kind: 'unwritable',
        reason: 'a number JSON cannot hold (beyond the range of a double)',
        raw: 'line 1',
      },
    ]);
  });
  it('a document refused for another reason keeps its real reason, a number beyond a double in it or not', () => {
    const shaped = resolveDataset({
      name: 'shaped',
      format: 'ndjson',
      table: 'docs',
      schema: z.object({
        id: z.number(),
        doc: z.object({ name: z.string(), v: z.unknown() }),
        either: z.union([z.object({ a: z.string() }), z.object({ b: z.string() })]).optional(),
        one: z.object({ name: z.string() }).optional(),
      }),
    });
    const { rows, rejects } = validateRecords(shaped, [
      record({ id: 1, doc: { v: Infinity } }, 1, 'line 1'),
      record({ id: 2, doc: { name: 'x', v: 1 }, either: { c: Infinity } }, 2, 'line 2'),
      record({ id: 3, doc: { name: 'x', v: 1 }, one: [Infinity] }, 3, 'line 3'),
    ]);
    expect(rows).toEqual([]);
    expect(rejects.map((r) => [r.line, r.column, r.kind])).toEqual([
      [1, 'doc.name', 'invalid'],
      [2, 'either', 'invalid'],
      [3, 'one', 'invalid'],
    ]);
    expect(rejects[0]?.reason).toBe('a value is required (expected string) (got no value)');
    expect(rejects[1]?.reason).toMatch(/^Invalid input \(got /);
    expect(rejects[2]?.reason).toMatch(/^Invalid input: expected object, received array \(got /);
  });
});
