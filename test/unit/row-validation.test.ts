import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type DatasetDefinition, resolveDataset } from '../../shared/config/dataset.ts';
import { bigintText, decimal, integer, timestamp } from '../../shared/config/fields.ts';
import {
  type ParsedRecord,
  parseChunk,
  type RecordCursor,
  textCursor,
} from '../../shared/formats/parsing.ts';
import type { Reject } from '../../shared/ledger/ledger.ts';
import { chunkRows } from '../../shared/load/chunk-rows.ts';
import { plainFields, rowValidator, validateRecords } from '../../shared/load/validation.ts';
import { copyLines } from '../../shared/load/write/writing.ts';
import { utf8 } from './helpers.ts';

// The column-wise validator must be indistinguishable from `validateRecords` (zod's object safeParse on a
// fields object): the same rows pass with the same values, the same rows fail with the same reject. One
// difference, by design: a coerced date given exactly its `toISOString()` text keeps that text (what
// writing the Date would produce).

const schema = z.object({
  n: z.coerce.number().int().positive(),
  d: z.coerce.date(),
  b: z.stringbool(),
  day: z.iso.date(),
  status: z.enum(['placed', 'paid']),
  note: z.string().optional(),
  vip: z.stringbool().default(false),
  tag: z.string().min(2).default('none'),
  score: z.coerce.number().optional(),
});

const COLUMNS = ['n', 'd', 'b', 'day', 'status', 'note', 'vip', 'tag', 'score'];
const GOOD = ['42', '2024-01-02T03:04:05Z', 'yes', '2024-02-29', 'paid', 'hi', 'no', 'ab', '1.5'];

function dataset(extra: Partial<DatasetDefinition> = {}) {
  return resolveDataset({ name: 'orders', format: 'csv', table: 'orders', schema, ...extra });
}

/** A cursor over prepared records, like the parser's: `values` for CSV, `fields` for NDJSON. */
function cursorOf(records: { values?: string[]; fields?: Record<string, unknown> }[]): RecordCursor {
  let at = -1;
  const cursor = {
    line: 0,
    values: undefined as string[] | undefined,
    fields: undefined as Record<string, unknown> | undefined,
    error: undefined,
    next() {
      const r = records[++at];
      if (!r) return false;
      cursor.line = at + 2;
      cursor.values = r.values;
      cursor.fields = r.fields;
      return true;
    },
    raw: () => `raw ${cursor.line}`,
  };
  return cursor;
}

/** What `validateRecords` says of each record, in the validator's terms: values by field order, or the reject. */
function expected(d: ReturnType<typeof dataset>, records: ParsedRecord[]): (unknown[] | Reject)[] {
  return records.map((r) => {
    const { rows, rejects } = validateRecords(d, [r]);
    if (rejects[0]) return rejects[0];
    const values = rows[0]?.values ?? {};
    return d.fields.map((f) => {
      const v = values[f];
      return v instanceof Date && r.fields?.[f] === v.toISOString() ? r.fields[f] : v;
    });
  });
}

function actual(
  d: ReturnType<typeof dataset>,
  cursor: RecordCursor,
  columns?: string[],
): (unknown[] | Reject)[] {
  const check = rowValidator(d, columns, d.fields.length);
  const out: (unknown[] | Reject)[] = [];
  while (cursor.next()) {
    const r = check(cursor);
    out.push(Array.isArray(r) ? [...r] : r);
  }
  return out;
}

const csvRecords = (rows: string[][], columns = COLUMNS): ParsedRecord[] =>
  rows.map((values, i) => ({
    line: i + 2,
    raw: `raw ${i + 2}`,
    fields: Object.fromEntries(columns.map((c, j) => [c, values[j]])),
  }));

const TRICKY: string[][] = [
  GOOD,
  ['42', '2024-01-02T03:04:05Z', 'yes', '2024-02-29', 'paid', '', '', '', ''], // nulls: optional, defaults
  ['', '2024-01-02', 'TRUE', '2024-02-29', 'paid', 'x', 'off', 'abc', '2'], // required missing
  ['1.5', 'x', 'maybe', '2023-02-29', 'lost', 'x', 'x', 'a', 'z'], // first failing column wins
  ['7', 'yesterday', 'no', '2024-02-29', 'placed', 'x', 'y', 'ab', '3'],
  ['7', '2024-01-02', 'maybe', '2024-02-29', 'placed', 'x', 'y', 'ab', '3'],
  ['7', '2024-01-02', 'no', '29/02/2024', 'placed', 'x', 'y', 'ab', '3'],
  ['7', '2024-01-02', 'no', '2024-02-29', 'lost', 'x', 'y', 'ab', '3'],
  ['7', '2024-01-02', 'no', '2024-02-29', 'paid', 'x', 'maybe', 'ab', '3'],
  ['7', '2024-01-02', 'no', '2024-02-29', 'paid', 'x', 'y', 'a', '3'], // default field with a failing value
  ['7', '2024-01-02', 'no', '2024-02-29', 'paid', 'x', 'y', 'ab', 'abc'], // optional field with a bad value
  ['-1', '2024-01-02', 'no', '2024-02-29', 'paid', 'x', 'y', 'ab', '3'],
  ['0x10', '1e12', 'Enabled', '2024-02-29', 'paid', 'NULL', 'N', 'xx', ' 4 '],
  ['9007199254740993', '2024-01-02', 'no', '2024-02-29', 'paid', 'x', 'y', 'ab', '3'],
  ['7', `${'z'.repeat(70)}`, 'no', '2024-02-29', 'paid', 'x', 'y', 'ab', '3'], // long value, shortened in the reason
  ['7', '2024-01-02T03:04:05.678Z', 'no', '2024-02-29', 'paid', 'x', 'y', 'ab', '3'], // toISOString's own text
  ['7', '2024-01-02T03:04:05+0000', 'no', '2024-02-29', 'paid', 'x', 'y', 'ab', '3'], // 24 characters, another form
  ['7', '2024-02-30T03:04:05.678Z', 'no', '2024-02-29', 'paid', 'x', 'y', 'ab', '3'], // no such day
  ['7', '2024-01-02T03:0+:05.678Z', 'no', '2024-02-29', 'paid', 'x', 'y', 'ab', '3'], // a minute that is no number
  ['7', '2024-01-02T0a:04:05Z', 'no', '2024-02-29', 'paid', 'x', 'y', 'ab', '3'], // an hour that is no number
];

describe('rowValidator: the same answers as validateRecords', () => {
  it('takes plain object schemas field by field, others the object way', () => {
    expect(plainFields(dataset())).toHaveLength(COLUMNS.length);
    const refined = resolveDataset({
      name: 'r',
      format: 'csv',
      table: 'r',
      schema: z.object({ lo: z.coerce.number(), hi: z.coerce.number() }).refine((v) => v.lo <= v.hi),
    });
    expect(plainFields(refined)).toBeUndefined();
    const strict = resolveDataset({
      name: 's',
      format: 'csv',
      table: 's',
      schema: z.strictObject({ a: z.string() }),
    });
    expect(plainFields(strict)).toBeUndefined();
    const loose = resolveDataset({
      name: 'l',
      format: 'csv',
      table: 'l',
      schema: z.looseObject({ a: z.string() }),
    });
    expect(plainFields(loose)).toBeUndefined();
    const protoName = resolveDataset({
      name: 'p',
      format: 'ndjson',
      table: 'p',
      schema: z.object({ toString: z.string().optional() }),
    });
    expect(plainFields(protoName)).toBeUndefined();
  });

  it('CSV rows: values, nulls, defaults, optional fields and every reject message', () => {
    for (const nullValues of [undefined, ['', 'NULL'], ['NULL']]) {
      const d = dataset(nullValues ? { nullValues } : {});
      const got = actual(d, cursorOf(TRICKY.map((values) => ({ values }))), COLUMNS);
      expect(got, JSON.stringify(nullValues)).toEqual(expected(d, csvRecords(TRICKY)));
    }
  });

  it('CSV files that lack a column, or name one twice', () => {
    const d = dataset();
    for (const columns of [
      ['n', 'd', 'b', 'day', 'status'], // optional and defaulted columns absent
      ['n', 'd', 'b', 'status', 'note'], // a required column absent
      ['n', 'd', 'b', 'day', 'status', 'note', 'note', 'extra'], // a repeat (the last wins) and an unknown one
    ]) {
      const rows = [
        ['5', '2024-01-02', 'no', '2024-02-29', 'paid', 'a', 'b', 'c'],
        ['5', '2024-01-02', 'no', 'paid', '', '', 'x', 'y'],
      ].map((r) => r.slice(0, columns.length));
      const got = actual(d, cursorOf(rows.map((values) => ({ values }))), columns);
      expect(got, columns.join()).toEqual(expected(d, csvRecords(rows, columns)));
    }
  });

  it('NDJSON records: absent keys, JSON nulls, wrong types', () => {
    const ndjson = resolveDataset({
      name: 'events',
      format: 'ndjson',
      table: 'events',
      schema: z.object({
        id: z.number(),
        user: z.number().optional(),
        kind: z.enum(['a', 'b']).default('a'),
        at: z.coerce.date().optional(),
        meta: z.object({ k: z.string() }).optional(),
      }),
    });
    const objects: Record<string, unknown>[] = [
      { id: 1, user: null },
      { id: null },
      { user: 3 },
      { id: '7' },
      { id: 5, extra: 'dropped', kind: 'b', at: '2024-01-01T00:00:00Z' },
      { id: 6, kind: null, at: 0 },
      { id: 7, kind: 'c' },
      { id: 8, meta: { k: 1 } },
      { id: 9, meta: { k: 'v' }, at: 'never' },
      { id: 10, user: '' },
    ];
    const records = objects.map((fields, i) => ({ line: i + 2, raw: `raw ${i + 2}`, fields }));
    const got = actual(ndjson, cursorOf(objects.map((fields) => ({ fields }))));
    expect(got).toEqual(expected(ndjson, records));
  });

  it('non-plain schemas give the object parse’s values and rejects', () => {
    const refined = resolveDataset({
      name: 'pairs',
      format: 'csv',
      table: 'pairs',
      schema: z
        .object({ lo: z.coerce.number(), hi: z.coerce.number() })
        .refine((v) => v.lo <= v.hi, 'lo above hi'),
    });
    const rows = [
      ['1', '3'],
      ['3', '1'],
      ['x', '1'],
    ];
    const got = actual(refined, cursorOf(rows.map((values) => ({ values }))), ['lo', 'hi']);
    expect(got).toEqual(expected(refined, csvRecords(rows, ['lo', 'hi'])));
    expect(got[1]).toEqual({ line: 3, column: null, kind: 'invalid', reason: 'lo above hi', raw: 'raw 3' });
  });

  it('strict field types (transforms over a union) read the same', () => {
    const strict = resolveDataset({
      name: 'strict',
      format: 'csv',
      table: 'strict',
      schema: z.object({
        i: integer(),
        d: decimal().optional(),
        b: bigintText(),
        t: timestamp(),
      }),
    });
    const columns = ['i', 'd', 'b', 't'];
    const rows = [
      ['1', '2.5', '9007199254740993', '2024-01-02T03:04:05Z'],
      [' 7 ', '', '-1', '2024-01-02T03:04:05+02:00'],
      ['0x10', '1', '1', '2024-01-02T03:04:05Z'],
      ['1', '1e400', '1', '2024-01-02T03:04:05Z'],
      ['1', '1', '1.5', '2024-01-02T03:04:05Z'],
      ['1', '1', '1', '2024-01-02T03:04:05'],
      ['', '1', '1', '2024-01-02T03:04:05Z'],
    ];
    const got = actual(strict, cursorOf(rows.map((values) => ({ values }))), columns);
    expect(got).toEqual(expected(strict, csvRecords(rows, columns)));
  });

  it('leaves room for the values a load appends', () => {
    const d = dataset();
    const check = rowValidator(d, COLUMNS, d.fields.length + 2);
    const cursor = cursorOf([{ values: GOOD }]);
    cursor.next();
    const out = check(cursor);
    expect(Array.isArray(out) && out.length).toBe(d.fields.length + 2);
  });
});

describe('chunkRows: passes over a chunk', () => {
  const d = dataset();
  const text = [
    '42,2024-01-02T03:04:05Z,yes,2024-02-29,paid,hi,no,ab,1.5',
    '',
    'x,2024-01-02,yes,2024-02-29,paid,,,,',
    '"7",2024-01-02,no,2024-02-29,"placed","a, b",,,',
    '1,2',
    '8,2024-01-03,no,2024-03-01,paid,"she said ""hi""",yes,,2',
  ].join('\r\n');
  const options = { format: 'csv' as const, delimiter: ',', columns: COLUMNS, firstLine: 10 };

  it('yields valid rows with the extras, and the rejects validateRecords makes, in line order', () => {
    const stream = chunkRows(d, utf8(text), options, [{ value: 99 }, 'line']);
    const pass = stream();
    const rows: unknown[][] = [];
    const lines: number[] = [];
    const raws: string[] = [];
    for (let v = pass.next(); v; v = pass.next()) {
      rows.push(v);
      lines.push(pass.line);
      raws.push(pass.raw());
    }
    const reference = validateRecords(d, [...parseAll(text, options)]);
    expect(rows).toEqual(reference.rows.map((r) => [...d.fields.map((f) => r.values[f]), 99, r.line]));
    expect(lines).toEqual(reference.rows.map((r) => r.line));
    expect(raws).toEqual(reference.rows.map((r) => r.raw));
    expect(pass.rejects).toEqual(reference.rejects);
    expect(pass.rows).toBe(3);
    expect(pass.rejects.map((r) => r.line)).toEqual([12, 14]);
    // A second pass reads the same rows again, from the start.
    const again = stream();
    let n = 0;
    while (again.next()) n++;
    expect(n).toBe(3);
    expect(again.rejects).toEqual(pass.rejects);
  });

  it('reads bytes that are not UTF-8 line by line, like parseChunk', () => {
    const bad = new Uint8Array([
      ...utf8('1,2024-01-02,no,2024-02-29,paid,'),
      0xff,
      ...utf8(',,,\n5,2024-01-02,no,2024-02-29,paid,,,,\n'),
    ]);
    const pass = chunkRows(d, bad, options)();
    const values = pass.next();
    expect(values?.[0]).toBe(5);
    expect(pass.line).toBe(11);
    expect(pass.next()).toBeUndefined();
    expect(pass.rejects).toEqual(validateRecords(d, parseChunk(bad, options)).rejects);
    expect(pass.rejects).toEqual([
      {
        line: 10,
        column: null,
        kind: 'unreadable',
        reason: 'bytes are not valid UTF-8 (first bad byte at offset 32 of the line)',
        raw: '1,2024-01-02,no,2024-02-29,paid,\uFFFD,,,',
      },
    ]);
  });
});

function* parseAll(text: string, options: Parameters<typeof textCursor>[1]): Generator<ParsedRecord> {
  const cursor = textCursor(text, options);
  while (cursor.next()) {
    const raw = cursor.raw();
    if (cursor.error) yield { line: cursor.line, raw, error: cursor.error };
    else
      yield {
        line: cursor.line,
        raw,
        fields: Object.fromEntries((options.columns ?? []).map((c, i) => [c, cursor.values?.[i]])),
      };
  }
}

describe('a record the schema throws on, or whose value cannot be written', () => {
  const meta = z.string().transform((s) => {
    if (s === 'boom') throw new Error('the transform blew up');
    return s === 'bigint' ? { n: 1n } : { s };
  });
  const d = resolveDataset({
    name: 'meta',
    format: 'csv',
    table: 'meta',
    schema: z.object({ id: z.coerce.number(), meta }),
  });
  const options = { format: 'csv' as const, delimiter: ',', columns: ['id', 'meta'], firstLine: 2 };
  const thrown = {
    line: 3,
    column: null,
    kind: 'invalid',
    reason: 'the schema threw while checking the record: Error: the transform blew up',
    raw: '2,boom',
  };

  it('becomes a reject of that record, the same way on both validators', () => {
    const text = '1,ok\n2,boom\n3,ok\n';
    const pass = chunkRows(d, utf8(text), options)();
    const ids: unknown[] = [];
    for (let v = pass.next(); v; v = pass.next()) ids.push(v[0]);
    expect(ids).toEqual([1, 3]);
    expect(pass.rejects).toEqual([thrown]);
    expect(validateRecords(d, [...parseAll(text, options)]).rejects).toEqual([thrown]);
  });

  it('COPY formatting leaves out a row it cannot write and rejects it, naming the field', () => {
    const pass = chunkRows(d, utf8('1,ok\n2,bigint\n3,ok\n'), options)();
    const unwritable: Reject[] = [];
    expect([...copyLines(d.fields, pass, unwritable)].join('')).toBe('1\t{"s":"ok"}\n3\t{"s":"ok"}\n');
    expect(unwritable).toEqual([
      {
        line: 3,
        column: 'meta',
        kind: 'unwritable',
        reason: 'value cannot be written: TypeError: Do not know how to serialize a BigInt',
        raw: '2,bigint',
      },
    ]);
  });

  it('a failed value in the "got …" of a reject is described, not thrown (a BigInt, say)', () => {
    const strict = resolveDataset({
      name: 'strict',
      format: 'ndjson',
      table: 'strict',
      schema: z.object({ id: z.string() }),
    });
    const rejects = validateRecords(strict, [{ line: 1, raw: '{}', fields: { id: 12n } }]).rejects;
    expect(rejects.map((r) => r.reason)).toEqual([
      'Invalid input: expected string, received bigint (got "12")',
    ]);
  });
});

describe('rowValidator: nested no-values as validateRecords reads them (issue 16 item 4)', () => {
  it('nested nulls and nullValues strings, declared or not, optional or required', () => {
    const ndjson = resolveDataset({
      name: 'staff',
      format: 'ndjson',
      table: 'staff',
      schema: z.object({
        id: z.number(),
        employee: z.object({ reportsTo: z.number().optional(), name: z.string() }).optional(),
        tags: z.array(z.string().optional()).optional(),
        extra: z.json().optional(),
      }),
    });
    const objects: Record<string, unknown>[] = [
      { id: 1, employee: { reportsTo: null, name: 'Ann' } },
      { id: 2, employee: { reportsTo: '', name: 'Bob' } },
      { id: 3, employee: { reportsTo: 1, name: null } },
      { id: 4, tags: ['a', null, ''] },
      { id: 5, extra: { a: null, b: [null, ''] } },
      { id: 6, employee: null },
    ];
    const records = objects.map((fields, i) => ({ line: i + 2, raw: `raw ${i + 2}`, fields }));
    const got = actual(ndjson, cursorOf(objects.map((fields) => ({ fields }))));
    expect(got).toEqual(expected(ndjson, records));
    // Written whole, a declared object keeps the nulls it had; a nullValues string inside it is no value.
    expect(got.map((r) => (Array.isArray(r) ? JSON.stringify(r) : r))).toEqual([
      '[1,{"reportsTo":null,"name":"Ann"},null,null]',
      '[2,{"name":"Bob"},null,null]',
      {
        line: 4,
        column: 'employee.name',
        kind: 'invalid',
        reason: 'a value is required (expected string) (got "null")',
        raw: 'raw 4',
      },
      '[4,null,["a",null,null],null]',
      '[5,null,null,{"a":null,"b":[null,""]}]',
      '[6,null,null,null]',
    ]);
  });
});

describe('two CSV exports joined into one file (hostile-files trial)', () => {
  const d = resolveDataset({
    name: 't',
    format: 'csv',
    table: 't',
    delimiter: '|',
    schema: z.object({ code: z.string(), label: z.string().optional() }),
  });
  const options = { format: 'csv' as const, delimiter: '|', columns: ['code', 'label'], firstLine: 2 };
  const text = ['a|one', 'code|label', 'b|two', '\ufeffcode|label', '\ufeffc|three', ' code | label '].join(
    '\n',
  );

  it('rejects the repeated header, with or without its BOM, and names a BOM that starts a record', () => {
    const pass = chunkRows(d, utf8(text), options)();
    const rows: unknown[][] = [];
    for (let v = pass.next(); v; v = pass.next()) rows.push(v);
    expect(rows).toEqual([
      ['a', 'one'],
      ['b', 'two'],
    ]);
    const header = (line: number) => `the header repeated at line ${line} (two exports concatenated?)`;
    expect(pass.rejects.map((r) => [r.line, r.column, r.kind, r.reason, r.raw])).toEqual([
      [3, null, 'malformed', header(3), 'code|label'],
      [5, null, 'malformed', header(5), '\ufeffcode|label'],
      [
        6,
        'code',
        'malformed',
        'a byte-order mark at the start of line 6: an invisible U+FEFF before "c" (two exports concatenated?)',
        '\ufeffc|three',
      ],
      [7, null, 'malformed', header(7), ' code | label '],
    ]);
    // The held-records way (multi-table loads, retried rejects) says the same.
    expect(validateRecords(d, [...parseAll(text, options)]).rejects).toEqual(pass.rejects);
  });
});

describe('values Postgres cannot store as read are rejected naming their column (hostile-files trial)', () => {
  const rowsAndRejects = (d: ReturnType<typeof resolveDataset>, text: string, columns?: string[]) => {
    const format = d.format === 'csv' ? ('csv' as const) : ('ndjson' as const);
    const pass = chunkRows(d, utf8(text), { format, delimiter: ',', columns, firstLine: 1 })();
    const rows: unknown[][] = [];
    for (let v = pass.next(); v; v = pass.next()) rows.push(v);
    return { rows, rejects: pass.rejects.map((r) => [r.line, r.column, r.kind, r.reason]) };
  };

  it('CSV: a NUL byte in a text value', () => {
    const d = resolveDataset({
      name: 'h',
      format: 'csv',
      table: 'h',
      schema: z.object({ id: integer(), name: z.string().optional() }),
    });
    expect(rowsAndRejects(d, '1,ok\n2,a\0b\n', ['id', 'name'])).toEqual({
      rows: [[1, 'ok']],
      rejects: [[2, 'name', 'unwritable', 'a NUL byte (0x00), which Postgres text cannot hold']],
    });
  });

  it('NDJSON: a lone surrogate in text or a NUL inside a document; a number beyond a double passes through as written', () => {
    const d = resolveDataset({
      name: 'nd',
      format: 'ndjson',
      table: 'nd',
      schema: z.object({ id: integer(), k: z.string().optional(), payload: z.unknown().optional() }),
    });
    const text = [
      '{"id":1,"k":"fine \\ud83d\\ude00","payload":{"x":1e300}}',
      '{"id":2,"k":"\\ud800"}',
      '{"id":3,"payload":{"x":1e400}}',
      '{"id":4,"payload":{"list":["a","b\\u0000"]}}',
      '{"id":5,"payload":{"x":-1E+400}}',
    ].join('\n');
    const { rows, rejects } = rowsAndRejects(d, text);
    // As JSON.stringify writes them for the jsonb column: 1e400 as the file wrote it (JSON.rawJSON).
    expect(rows.map(([id, k, payload]) => [id, k, JSON.stringify(payload)])).toEqual([
      [1, 'fine \u{1f600}', '{"x":1e+300}'],
      [3, undefined, '{"x":1e400}'],
      [5, undefined, '{"x":-1E+400}'],
    ]);
    expect(rejects).toEqual([
      [
        2,
        'k',
        'unwritable',
        'a lone UTF-16 surrogate (\\ud800), which UTF-8 cannot hold (it would be stored as U+FFFD)',
      ],
      [4, 'payload.list[1]', 'unwritable', 'a NUL byte (0x00), which Postgres text cannot hold'],
    ]);
  });
});

describe('a JSON number that lost digits is quoted as the file wrote it (hostile-files trial)', () => {
  it('says why, and keeps the line exact', () => {
    const d = resolveDataset({
      name: 'nd',
      format: 'ndjson',
      table: 'nd',
      schema: z.object({ id: integer(), big: integer().optional(), n: z.number().optional() }),
    });
    const lines = [
      '{"id":1,"big":9007199254740993}',
      '{"id":2,"big":1e400}',
      '{"id":3,"big":1.50}',
      '{"id":4,"n":-1E+400}',
    ];
    const pass = chunkRows(d, utf8(lines.join('\n')), { format: 'ndjson', delimiter: ',', firstLine: 1 })();
    while (pass.next()) {}
    expect(pass.rejects.map((r) => [r.column, r.reason, r.raw])).toEqual([
      [
        'big',
        'not a whole number (got "9007199254740993"): beyond 2^53, JSON numbers lose digits: quote it as a string',
        lines[0],
      ],
      [
        'big',
        'not a whole number (got "1e400"): beyond the range of a double, JSON numbers cannot hold it: quote it as a string',
        lines[1],
      ],
      ['big', 'not a whole number (got "1.5")', lines[2]],
      [
        'n',
        expect.stringMatching(
          / \(got "-1E\+400"\): beyond the range of a double, JSON numbers cannot hold it/,
        ),
        lines[3],
      ],
    ]);
  });
});
