import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { parquetWriteFile } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import { configModule } from '../../cli/init/codegen.ts';
import { ColumnProfile, PairProfile } from '../../cli/init/column-profile.ts';
import { columnType, sqlType } from '../../cli/init/column-type.ts';
import { MAX_HASHED } from '../../cli/init/distinct-values.ts';
import { mergeType } from '../../cli/init/evolution.ts';
import { groupFiles } from '../../cli/init/file-groups.ts';
import { profileFile } from '../../cli/init/file-profile.ts';
import { init } from '../../cli/init/init.ts';
import { profileQuoting } from '../../cli/init/quoting.ts';
import {
  breakCycles,
  columnsOf,
  dependencyOrder,
  inferRelationships,
  type Relationship,
} from '../../cli/init/relationships.ts';
import { renderSummary, summarize } from '../../cli/init/summary.ts';
import { inferTable } from '../../cli/init/tables.ts';
import { shapeOfText } from '../../cli/init/values.ts';
import { snakeIdentifier } from '../../shared/config/column-names.ts';
import { STRAY_QUOTE_HINT } from '../../shared/formats/chunking.ts';
import { biomeChanged } from '../support/biome.ts';
import { inferredTables } from '../support/init-tables.ts';
import { tempFolder } from '../support/temp-folder.ts';

const temp = tempFolder('dropload-init-');
const file = temp.file;

const typeOf = (...values: string[]) => {
  const col = new ColumnProfile('c', 0);
  for (const v of values) col.addText(v);
  return sqlType(columnType(col).type);
};

const rel = (x: Relationship) =>
  `${columnsOf(x.table, x.columns)} → ${columnsOf(x.parentTable, x.parentColumns)} ${x.certain}`;

const tables = (files: Record<string, string>) => inferredTables(temp, files);

/** CSV rows of `n` numbered lines. */
const rows = (n: number, row: (i: number) => string) =>
  Array.from({ length: n }, (_, i) => row(i + 1)).join('\n');

describe('value shapes and column types', () => {
  it('reads each value by its shape; leading zeros and impossible dates stay text', () => {
    expect(
      ['01581', '0', '-7', '0.5', '00.5', 'TRUE', '1996-07-04', '2026-02-30', '1996-07-04 00:00:00.000'].map(
        (v) => shapeOfText(v).kind,
      ),
    ).toEqual(['text', 'integer', 'integer', 'decimal', 'text', 'boolean', 'date', 'text', 'timestamp']);
    expect(shapeOfText('2026-11-27T10:00:00+02:00').kind).toBe('timestamptz');
    // date() and localTimestamp() refuse year 0000 (Postgres has none): such a column is text.
    expect(['0000-01-01', '0000-01-01 10:00:00'].map((v) => shapeOfText(v).kind)).toEqual(['text', 'text']);
    expect(shapeOfText('6f1c1f84-4a57-4b8e-9d7e-2b0f3c1a9e10').kind).toBe('uuid');
  });

  it('integers by range, exact numeric from the digits seen, text for mixed shapes', () => {
    expect(typeOf('1', '-32768', '32767')).toBe('smallint');
    expect(typeOf('32768')).toBe('integer');
    expect(typeOf('2147483648')).toBe('bigint');
    expect(typeOf('9223372036854775808')).toBe('numeric(19, 0)');
    expect(typeOf('12345678901234567.89', '0.125')).toBe('numeric(20, 3)');
    expect(typeOf('1', '2.5')).toBe('numeric(2, 1)');
    expect(typeOf('1', 'x')).toBe('text');
    expect(typeOf('1996-07-04', '1996-07-04T10:00:00Z')).toBe('text');
    expect(typeOf('7', '01581')).toBe('text');
    expect(typeOf('', 'NULL', '3')).toBe('smallint');
  });

  it('counts every value by its shape after the first text value: the mixed evidence tells the truth', () => {
    const col = new ColumnProfile('c', 0);
    for (const v of ['1', '2', 'A3', '4', '5', '6', '7', '8', '9', '10']) col.addText(v);
    expect(columnType(col).evidence).toBe('10 values, mixed: 9 whole numbers, 1 text: text');
  });

  it('prints an example value cut to 60 characters, control characters escaped', () => {
    const long = new ColumnProfile('c', 0);
    long.addText('x'.repeat(10_000_000));
    expect(columnType(long).evidence).toBe(`1 value (e.g. "${'x'.repeat(60)}…")`);
    const binary = new ColumnProfile('c', 0);
    binary.addText('PK\u0003\u0004\u0000\u001b[2J\u007f\u0085ok');
    expect(columnType(binary).evidence).toBe(
      '1 value (e.g. "PK\\u0003\\u0004\\u0000\\u001b[2J\\u007f\\u0085ok")',
    );
    const zeros = new ColumnProfile('c', 0);
    zeros.addText(`0${'1'.repeat(100)}`);
    expect(columnType(zeros).evidence).toBe(
      `1 value, 1 with leading zeros (e.g. "0${'1'.repeat(59)}…"): kept as text`,
    );
  });

  it('says why dates that are not ISO and timestamps mixing zones are text', () => {
    const evidence = (...values: string[]) => {
      const col = new ColumnProfile('c', 0);
      for (const v of values) col.addText(v);
      return columnType(col).evidence;
    };
    expect(evidence('19/02/2024', '20/02/2024')).toBe(
      '2 values, text: values look like day/month/year dates (19/02/2024); the loader reads ISO dates only (2024-02-19)',
    );
    expect(evidence('02/19/2024')).toBe(
      '1 value, text: values look like month/day/year dates (02/19/2024); the loader reads ISO dates only (2024-02-19)',
    );
    expect(evidence('03.02.2024 10:00')).toBe(
      '1 value, text: values look like day/month/year or month/day/year dates (03.02.2024 10:00); the loader reads ISO dates only (YYYY-MM-DD)',
    );
    expect(evidence('19,67', '0,6')).toBe(
      '2 values, text: values look like decimal commas (19,67); the loader reads numbers with a decimal point only',
    );
    expect(evidence('5', '1.234,5', '0,6')).toBe(
      '3 values, mixed: 1 whole numbers, 2 text: text; values look like decimal commas (1.234,5); the loader reads numbers with a decimal point only',
    );
    expect(evidence('12,3', '2024-01-01')).toBe('2 values, mixed: 1 text, 1 dates: text');
    expect(evidence('2024-02-19 10:00:00', '2024-02-19T10:00:00Z')).toBe(
      '2 values, mixed: 1 timestamps without a zone, 1 timestamps with a zone: text; some values carry a zone and some do not: a column is read one way or the other',
    );
  });

  it('reads 8-digit dates YYYYMMDD as date under a name that says date, keeps them numbers otherwise', () => {
    const typed = (name: string, ...values: string[]) => {
      const col = new ColumnProfile(name, 0);
      for (const v of values) col.addText(v);
      const { type, evidence } = columnType(col);
      return { type, evidence };
    };
    expect(typed('start_date', '20240101', '20240615', '20241231')).toEqual({
      type: { name: 'date', format: 'YYYYMMDD' },
      evidence: '3 values, all dates YYYYMMDD, 20240101..20241231',
    });
    for (const name of ['date', 'feed_end_date', 'startDate', 'created_on', 'dt', 'service_day', 'birthday'])
      expect(typed(name, '20190301', '').type, name).toEqual({ name: 'date', format: 'YYYYMMDD' });
    expect(typed('amount', '20240101', '20241231')).toEqual({
      type: { name: 'integer' },
      evidence:
        "2 values, range 20240101..20241231; every value is a date YYYYMMDD: if they are dates, make the column date and its field date({ format: 'YYYYMMDD' })",
    });
    // One value that is no date, out of 1900–2100, or written with leading zeros: numbers (or text), no date.
    expect(typed('start_date', '20240101', '20240230').evidence).toBe('2 values, range 20240101..20240230');
    expect(typed('start_date', '20240101', '18991231').type).toEqual({ name: 'integer' });
    expect(typed('start_date', '20240101', '21010101').type).toEqual({ name: 'integer' });
    expect(typed('start_date', '20240101', '2024').type).toEqual({ name: 'integer' });
    expect(typed('start_date', '20240101', '-20240101').type).toEqual({ name: 'integer' });
    expect(typed('start_date', '00240101').type).toEqual({ name: 'text' });
    expect(typed('service_id', '20240101', '20240102').type).toEqual({ name: 'integer' });
  });

  it('dates among zoneless timestamps: timestamp, the dates as midnight; among zoned ones: text, saying how', () => {
    const typed = (...values: string[]) => {
      const col = new ColumnProfile('shipped', 0);
      for (const v of values) col.addText(v);
      return columnType(col);
    };
    expect(typed('2024-01-05', '2024-01-05 10:00:00', '2024-01-06')).toEqual({
      type: { name: 'timestamp', dateOnly: 'midnight' },
      evidence:
        "3 values, mixed: 2 dates, 1 timestamps without a zone: timestamp, the dates read as midnight (localTimestamp({ dateOnly: 'midnight' }))",
    });
    expect(typed('2024-01-05', '2024-01-05T10:00:00+01:00')).toEqual({
      type: { name: 'text' },
      evidence:
        "2 values, mixed: 1 dates, 1 timestamps with a zone: text; the dates have no zone and the timestamps do: for the dates as midnight in one zone, make it timestamptz, its field localTimestamp({ dateOnly: 'midnight' }) and the dataset's timeZone the zone the dates mean",
    });
    expect(typed('2024-01-05', '2024-01-05 10:00:00', '2024-01-05T10:00:00Z').type).toEqual({ name: 'text' });
  });

  it('keeps the YYYYMMDD count across threads and headers (state, restore, absorb)', () => {
    const profile = (...values: string[]) => {
      const col = new ColumnProfile('start_date', 0);
      for (const v of values) col.addText(v);
      return ColumnProfile.restore(col.state());
    };
    const dates = profile('20240101');
    dates.absorb(profile('20240102', '20240103'));
    expect(dates.basicDates).toBe(3);
    expect(columnType(dates).type).toEqual({ name: 'date', format: 'YYYYMMDD' });
    const mixed = profile('20240101');
    mixed.absorb(profile('20240102', '7'));
    expect(mixed.basicDates).toBe(2);
    expect(columnType(mixed).type).toEqual({ name: 'integer' });
  });

  it('init again: dates into a timestamp column read as midnight; a date column reads dates as the new files write them', () => {
    const midnight = { name: 'timestamp', dateOnly: 'midnight' } as const;
    expect(mergeType({ name: 'timestamp' }, { name: 'date' })).toEqual(midnight);
    expect(mergeType({ name: 'timestamp' }, midnight)).toEqual(midnight);
    expect(mergeType(midnight, { name: 'timestamp' })).toEqual(midnight);
    expect(mergeType({ name: 'date' }, { name: 'date', format: 'YYYYMMDD' })).toEqual({
      name: 'date',
      format: 'YYYYMMDD',
    });
    expect(mergeType({ name: 'date' }, { name: 'timestamp' })).toEqual({ name: 'text' });
  });

  it('keeps up to MAX_HASHED distinct text values, then drops the set: no key is claimed from it', () => {
    const col = new ColumnProfile('id', 0);
    for (let i = 0; i < MAX_HASHED; i++) col.addText(`k${i}`);
    expect([col.unique, col.distinct?.size]).toEqual([true, MAX_HASHED]);
    col.addText('k0');
    expect([col.unique, col.duplicates]).toEqual([false, 1]);
    col.addText('one more');
    expect([col.unique, col.keyless, col.values]).toEqual([
      undefined,
      'more than 4000000 distinct values besides whole numbers from 0 to 134217727',
      MAX_HASHED + 2,
    ]);
  });

  it('keeps whole numbers from 0 up in a bitmap, past the bound on other values', () => {
    const col = new ColumnProfile('id', 0);
    for (let i = 0; i < MAX_HASHED + 10; i++) col.addText(String(i));
    expect([col.unique, col.distinct?.size]).toEqual([true, MAX_HASHED + 10]);
    col.addText('17');
    expect([col.unique, col.duplicates]).toEqual([false, 1]);
  });
});

describe('profiling whole files', () => {
  it('reads a file whose quotes fail without quoting when every row then fits the header', async () => {
    const rows = Array.from(
      { length: 200 },
      (_, i) => `tt${i + 1}\t${i === 48 ? '"Weird" Al' : `Title ${i + 1}`}\t1`,
    );
    const tsv = await file('titles.tsv', `id\ttitle\tn\n${rows.join('\n')}\n`);
    const profile = await profileQuoting(tsv, snakeIdentifier, undefined, {});
    expect([profile.quote, profile.rows, profile.misfitCount, profile.quoting]).toEqual([
      false,
      200,
      0,
      'quoting off: line 50 opens a quote that never closes properly; read unquoted, all 200 rows have 3 fields',
    ]);
    expect(profile.columns[1]?.distinct?.has('"Weird" Al')).toBe(true);
  });

  it('writes a small file whose stray quote never closes with quoting off: the loader would refuse it quoted', async () => {
    const rows = Array.from(
      { length: 200 },
      (_, i) => `tt${i + 1}\t${i === 48 ? '"Weird Al' : `Title ${i + 1}`}\t1`,
    );
    const data = path.join(temp.dir, 'open-quote');
    await mkdir(data);
    await writeFile(path.join(data, 'titles.tsv'), `id\ttitle\tn\n${rows.join('\n')}\n`);
    const summary = await init([data], { out: path.join(temp.dir, 'open-quote-out') });
    expect(summary.refused).toEqual([]);
    expect(summary.tables.map((t) => [t.name, t.rows, t.misfitCount, t.quoting])).toEqual([
      [
        'titles',
        200,
        0,
        'quoting off: line 50 opens a quote that never closes properly; read unquoted, all 200 rows have 3 fields',
      ],
    ]);
  });

  it('keeps quoting when the file read without it misfits too, listing the quote misfit with what to do', async () => {
    // Line 3 quotes a tab as a field of a quoting file does; line 4 has a stray quote.
    const text = 'id\ttitle\tn\n1\t"a\tb"\t1\n2\t"Weird" Al\t1\n3\tok\t1\n';
    const profile = await profileQuoting(await file('mixed.tsv', text), snakeIdentifier, undefined, {});
    expect([profile.quote, profile.rows, profile.quoting]).toEqual(['"', 3, undefined]);
    expect(profile.misfits).toEqual([
      {
        line: 3,
        reason: `malformed CSV: Trailing quote on quoted field is malformed (${STRAY_QUOTE_HINT})`,
      },
    ]);
  });

  it('a rare value far down the file decides the type (no head sample)', async () => {
    const lines = Array.from({ length: 200_000 }, (_, i) => `${i + 1},${i % 100}`);
    lines[189_999] = '190000,n/a-ish';
    const [t] = await tables({ 'rare.csv': `id,score\n${lines.join('\n')}\n` });
    expect(t?.columns.map((c) => [c.column, sqlType(c.type)])).toEqual([
      ['id', 'integer'],
      ['score', 'text'],
    ]);
  });

  it('reads gzip, a BOM, CRLF and quoted newlines; reports a row with an unquoted comma by line', async () => {
    const text = '\uFEFFid,name,city\r\n1,"Ann\r\nSmith",Oslo\r\n2,Bob, Jr.,Bergen\r\n3,Cy,NULL\r\n';
    const profile = await profileFile(await file('people.csv.gz', gzipSync(text)), snakeIdentifier);
    expect(profile.gzip).toBe(true);
    expect(profile.columns.map((c) => c.name)).toEqual(['id', 'name', 'city']);
    expect(profile.rows).toBe(3);
    expect(profile.misfits).toEqual([{ line: 4, reason: '4 fields, header has 3 (unquoted comma?)' }]);
    const table = inferTable(profile, snakeIdentifier);
    expect(table.nullValues).toEqual(['', 'NULL']);
    expect(table.columns.map((c) => [c.column, c.notNull])).toEqual([
      ['id', true],
      ['name', true],
      ['city', false],
    ]);
  });

  it('a record over maxRecordBytes is a misfit with its line, as the load rejects it; its values are not profiled', async () => {
    // One record of short quoted lines (2 MiB in all), one long line, and normal records around them.
    const manyLines = `${'x'.repeat(1000)}\n`.repeat(2100);
    const long = 'y'.repeat(1_100_000);
    const text = `id,note\n1,a\n2,"${manyLines}"\n3,b\n4,${long}\n5,c\n`;
    const profile = await profileFile(await file('oversized.csv', text), snakeIdentifier);
    const size = (record: string) => Buffer.byteLength(`${record}\n`);
    expect(profile.rows).toBe(5);
    expect(profile.misfits).toEqual([
      {
        line: 3,
        reason: `record is ${size(`2,"${manyLines}"`)} bytes, over the limit of 1048576 bytes (maxRecordBytes)`,
      },
      {
        line: 2105,
        reason: `record is ${size(`4,${long}`)} bytes, over the limit of 1048576 bytes (maxRecordBytes)`,
      },
    ]);
    const big = `{"id":2,"note":"${'z'.repeat(1_048_576)}"}`;
    const ndjson = await profileFile(
      await file('oversized.ndjson', `{"id":1,"note":"a"}\n${big}\n{"id":3,"note":"b"}`),
      snakeIdentifier,
    );
    expect([ndjson.rows, ndjson.misfits]).toEqual([
      3,
      [{ line: 2, reason: `record is ${size(big)} bytes, over the limit of 1048576 bytes (maxRecordBytes)` }],
    ]);
    const table = inferTable(profile, snakeIdentifier);
    expect(table.columns.map((c) => [c.column, sqlType(c.type), c.evidence])).toEqual([
      ['id', 'smallint', '3 values, range 1..5'],
      ['note', 'text', '3 values (e.g. "a")'],
    ]);
  });

  it('reads a file of many blocks whole: quoted line breaks across block ends, misfits by their line', async () => {
    const lines = ['id,note,qty'];
    const misfitLines: number[] = [];
    let line = 2;
    for (let i = 1; i <= 400_000; i++) {
      if (i % 97_001 === 0) {
        misfitLines.push(line);
        lines.push(`${i},a,b,c`);
        line++;
      } else {
        lines.push(`${i},"note ${i}\nwith ""two"" lines",${i % 50}`);
        line += 2;
      }
    }
    lines.push('400001,,x');
    const profile = await profileFile(await file('blocks.csv', `${lines.join('\n')}\n`), snakeIdentifier);
    expect(profile.rows).toBe(400_001);
    expect(profile.misfits).toEqual(
      misfitLines.map((l) => ({ line: l, reason: '4 fields, header has 3 (unquoted comma?)' })),
    );
    const table = inferTable(profile, snakeIdentifier);
    expect(table.columns.map((c) => `${c.column} ${sqlType(c.type)} ${c.notNull} ${c.evidence}`)).toEqual([
      'id integer true 399997 values, range 1..400001',
      'note text false 399996 values (e.g. "note 1\\nwith \\"two\\" lines"); 1 null (1× "")',
      'qty text true 399997 values, mixed: 399996 whole numbers, 1 text: text',
    ]);
  });

  it('a column settled as text early still counts every null by its token, to the last line', async () => {
    const lines = ['id,note,code'];
    for (let i = 1; i <= 300_000; i++) lines.push(`${i},some longer note ${i},${i % 1000}`);
    lines.push('300001,NULL,7', '300002,,8', '300003,N/A,9', '300004,\\N,10', '300005,null,x1');
    const keep = (field: string) => field === 'id';
    const profile = await profileFile(
      await file('settled.csv', `${lines.join('\n')}\n`),
      snakeIdentifier,
      keep,
    );
    const table = inferTable(profile, snakeIdentifier);
    expect(table.nullValues).toEqual(['', 'NULL', 'null', '\\N', 'N/A']);
    expect(table.columns.map((c) => `${c.column} ${sqlType(c.type)} ${c.notNull} ${c.evidence}`)).toEqual([
      'id integer true 300005 values, range 1..300005',
      'note text false 300000 values (e.g. "some longer note 1"); 5 nulls (1× "NULL", 1× "", 1× "N/A", 1× "\\\\N", 1× "null")',
      'code text true 300005 values, mixed: 300004 whole numbers, 1 text: text',
    ]);
  });

  it('reads the header as a load does: names trimmed after the delimiters, a BOM skipped', async () => {
    const out = path.join(temp.dir, 'spaced-out');
    const p = await file('spaced.csv', '\uFEFFid, name ,\tcityCode\n1, Ann,OSL\n2,Bob ,BGO\n');
    const profile = await profileFile(p, snakeIdentifier);
    expect(profile.columns.map((c) => c.name)).toEqual(['id', 'name', 'cityCode']);
    const summary = await init([p], { out });
    expect(summary.tables[0]?.columns.map((c) => `${c.field} ${c.column} ${c.type}`)).toEqual([
      'id id smallint',
      'name name text',
      'cityCode city_code text',
    ]);
    const dataset = await readFile(path.join(out, 'datasets/spaced.ts'), 'utf8');
    expect(dataset).toContain('    id: integer(),\n    name: z.string(),\n    cityCode: z.string(),\n');
  });

  it('a column no name relates to anything keeps no text values; whole numbers it still keeps', async () => {
    const p = await file('notes.csv', 'id,note,qty\n1,hello,5\n2,world,6\n');
    const keep = (field: string) => field === 'id';
    const profile = await profileFile(p, snakeIdentifier, keep);
    expect(profile.columns.map((c) => [c.name, c.distinct?.size, c.keyless])).toEqual([
      ['id', 2, undefined],
      ['note', undefined, 'no name relates it to a key or another file'],
      ['qty', 2, undefined],
    ]);
  });

  it('NDJSON: nested values are jsonb, a field missing from some records is nullable', async () => {
    const [t] = await tables({
      'events.ndjson': '{"eventId":1,"payload":{"a":[1]}}\n{"eventId":2,"payload":{"b":2},"note":"x"}\n',
    });
    expect(t?.columns.map((c) => [c.column, sqlType(c.type), c.notNull])).toEqual([
      ['event_id', 'smallint', true],
      ['payload', 'jsonb', true],
      ['note', 'text', false],
    ]);
  });
});

describe('Parquet', () => {
  it('types columns from typed values; the dataset reads INT64 as bigint and timestamps as dates', async () => {
    const file = path.join(temp.dir, 'badges.parquet');
    await parquetWriteFile({
      filename: file,
      columnData: [
        { name: 'badgeId', data: [1n, 2n, 3n], type: 'INT64' },
        { name: 'label', data: ['a', 'b', null], type: 'STRING' },
        { name: 'weight', data: [1.5, 2.25, 3], type: 'DOUBLE' },
        { name: 'issuedAt', data: [new Date(0), new Date(1000), new Date(2000)], type: 'TIMESTAMP' },
        { name: 'active', data: [true, false, true], type: 'BOOLEAN' },
        { name: 'level', data: [1, 2, 3], type: 'INT32' },
      ],
    });
    const out = path.join(temp.dir, 'parquet-out');
    const summary = await init([file], { out });
    expect(
      summary.tables[0]?.columns.map((c) => `${c.column} ${c.type}${c.notNull ? ' not null' : ''}`),
    ).toEqual([
      'badge_id smallint not null',
      'label text',
      'weight numeric(3, 2) not null',
      'issued_at timestamptz not null',
      'active boolean not null',
      'level smallint not null',
    ]);
    const dataset = await readFile(path.join(out, 'datasets/badges.ts'), 'utf8');
    expect(dataset).toContain(
      [
        '    badgeId: z.coerce.number().int(),',
        '    label: z.string().optional(),',
        '    weight: numeric({ precision: 3, scale: 2 }),',
        '    issuedAt: z.date(),',
        '    active: boolean(),',
        '    level: integer(),',
      ].join('\n'),
    );
  });
});

describe('column names', () => {
  it('two fields that become the same column are refused, naming both', async () => {
    const p = await file('dupes.csv', 'OrderID,order_id\n1,2\n');
    await expect(init([p], { out: path.join(temp.dir, 'dupes-out') })).rejects.toThrow(
      `${p}: fields "OrderID" and "order_id" both become column order_id: rename one in the file`,
    );
  });

  it('a name with no ASCII letter keeps its own (Имя → имя), as columnNames maps it: no empty column', async () => {
    const p = await file('cyrillic.csv', 'id,Имя,Город\n1,a,b\n');
    const out = path.join(temp.dir, 'cyrillic-out');
    const summary = await init([p], { out });
    expect(summary.tables[0]?.columns.map((c) => c.column)).toEqual(['id', 'имя', 'город']);
    expect(await readFile(path.join(out, 'datasets/cyrillic.ts'), 'utf8')).not.toContain('columns:');
  });
});

describe('keys and relationships', () => {
  it('a link table gets a composite key; quantities are never a foreign key to product ids', async () => {
    const t = await tables({
      'products.csv': 'productID,name\n1,a\n2,b\n3,c\n4,d\n',
      'orders.csv': parents['orders.csv'],
      'order_lines.csv': `orderID,productID,quantity\n${rows(20, (i) => `${9 + Math.ceil(i / 2)},${(i % 2) + 1},${(i % 4) + 1}`)}\n`,
    });
    expect(t.map((x) => [x.name, x.primaryKey])).toEqual([
      ['products', ['product_id']],
      ['orders', ['order_id']],
      ['order_lines', ['order_id', 'product_id']],
    ]);
    const r = inferRelationships(t);
    expect(
      r.relationships.map(
        (x) => `${columnsOf(x.table, x.columns)} → ${columnsOf(x.parentTable, x.parentColumns)} ${x.certain}`,
      ),
    ).toEqual([
      'order_lines.order_id → orders.order_id true',
      'order_lines.product_id → products.product_id true',
    ]);
    expect(
      r.rejected.map(
        (x) => `${columnsOf(x.table, x.columns)} → ${columnsOf(x.parentTable, x.parentColumns)}`,
      ),
    ).toEqual(['order_lines.quantity → products.product_id']);
  });

  it('a self-reference by a manager name; a weak name match is certain only when every parent key is used', async () => {
    const t = await tables({
      'employees.csv': 'employeeID,name,reportsTo\n1,a,\n2,b,1\n3,c,2\n',
      'shippers.csv': 'shipperID,name\n1,s\n2,t\n3,u\n',
      'orders.csv': 'orderID,shipVia,shipperRef\n10,1,1\n11,2,1\n12,3,2\n',
    });
    const r = inferRelationships(t);
    expect(
      r.relationships.map(
        (x) => `${columnsOf(x.table, x.columns)} → ${columnsOf(x.parentTable, x.parentColumns)} ${x.certain}`,
      ),
    ).toEqual([
      'employees.reports_to → employees.employee_id true',
      'orders.ship_via → shippers.shipper_id true',
      'orders.shipper_ref → shippers.shipper_id false',
    ]);
  });

  it("a table's own generic key is never a foreign key to another table's key of the same name", async () => {
    const ids = (n: number, row: (i: number) => string) =>
      Array.from({ length: n }, (_, i) => row(i + 1)).join('\n');
    const t = await tables({
      'authors.csv': `id,name\n${ids(10, (i) => `${i},a${i}`)}\n`,
      'books.csv': `id,title,author_id\n${ids(30, (i) => `${i},t${i},${(i % 10) + 1}`)}\n`,
      'warehouses.csv': `id,city\n${ids(5, (i) => `${i},c${i}`)}\n`,
      'suppliers.csv': `id,company\n${ids(5, (i) => `${i},s${i}`)}\n`,
      'customers.csv': `customer_id,name\n${ids(8, (i) => `${i},n${i}`)}\n`,
      'customer_details.csv': `customer_id,note\n${ids(8, (i) => `${i},x${i}`)}\n`,
    });
    const r = inferRelationships(t);
    expect(r.relationships.map(rel)).toEqual([
      'books.author_id → authors.id true',
      'customer_details.customer_id → customers.customer_id true',
    ]);
    // Not `books.author_id → books.id` as a self-reference either: `_id` names no row.
    expect(
      r.rejected.map(
        (x) => `${columnsOf(x.table, x.columns)} → ${columnsOf(x.parentTable, x.parentColumns)}`,
      ),
    ).toEqual([]);
    expect(dependencyOrder(t, r.relationships)).toEqual([
      'authors',
      'books',
      'warehouses',
      'suppliers',
      'customers',
      'customer_details',
    ]);
  });

  it('a cycle of foreign keys between tables is broken: the nullable one is written commented out, saying why', async () => {
    const t = await tables({
      'departments.csv': 'department_id,name,head_employee_id\n1,a,10\n2,b,\n',
      'employees.csv': 'employee_id,name,department_id\n10,x,1\n11,y,2\n12,z,1\n',
    });
    const r = inferRelationships(t);
    expect(r.relationships.map(rel)).toEqual([
      'departments.head_employee_id → employees.employee_id false',
      'employees.department_id → departments.department_id true',
    ]);
    expect(r.relationships[0]?.evidence).toBe(
      "'head_employee_id' names employees; 1 distinct value, all among the 3 of employees.employee_id; " +
        'not enforced: with employees.department_id → departments.department_id it makes a cycle ' +
        '(departments → employees → departments), and no load order would exist',
    );
    expect(dependencyOrder(t, r.relationships)).toEqual(['departments', 'employees']);
  });

  it('a cycle is broken at a foreign key not yet in the database; one of those alone is named, not broken', async () => {
    const t = await tables({
      'departments.csv': 'department_id,name,head_employee_id\n1,a,10\n2,b,\n',
      'employees.csv': 'employee_id,name,department_id\n10,x,1\n11,y,2\n12,z,1\n',
    });
    const edge = (
      table: string,
      column: string,
      parentTable: string,
      parentColumn: string,
    ): Relationship => ({
      table,
      columns: [column],
      parentTable,
      parentColumns: [parentColumn],
      certain: true,
      evidence: 'e',
    });
    // The nullable head_employee_id is in the database: the other one is given up.
    const head = edge('departments', 'head_employee_id', 'employees', 'employee_id');
    const dept = edge('employees', 'department_id', 'departments', 'department_id');
    expect(breakCycles(t, [head, dept], (r) => r === head)).toEqual([]);
    expect([head.certain, dept.certain]).toEqual([true, false]);
    expect(dependencyOrder(t, [head, dept])).toEqual(['employees', 'departments']);
    const both = [head, { ...dept, certain: true }];
    expect(breakCycles(t, both, () => true)).toEqual([['departments', 'employees', 'departments']]);
    expect(both.map((r) => r.certain)).toEqual([true, true]);
  });

  it('a column naming another table goes there, not to a self-reference its name also suggests', async () => {
    const kids = 'id,parent_id,v\n1,1,x\n2,2,x\n3,3,x\n4,1,x\n';
    // kids before parents, as a folder lists them: the order of the files decides nothing.
    const named = inferRelationships(
      await tables({ 'kids.csv': kids, 'parents.csv': 'id,name\n1,a\n2,b\n3,c\n' }),
    );
    expect(named.relationships.map((x) => `${rel(x)}: ${x.evidence}`)).toEqual([
      "kids.parent_id → parents.id true: 'parent_id' names parents; 3 distinct values, all among the 3 of parents.id",
    ]);
    expect(
      named.rejected.map(
        (x) => `${columnsOf(x.table, x.columns)} → ${columnsOf(x.parentTable, x.parentColumns)}: ${x.reason}`,
      ),
    ).toEqual([
      "kids.parent_id → kids.id: 'parent_id' names another row of kids (a self-reference); 3 distinct values, all among the 4 of kids.id; parents.id fits better",
    ]);
    // Values the named table lacks: the self-reference stands.
    const alone = inferRelationships(
      await tables({ 'kids.csv': kids, 'parents.csv': 'id,name\n1,a\n2,b\n' }),
    );
    expect(alone.relationships.map(rel)).toEqual(['kids.parent_id → kids.id true']);
  });

  it('a self-reference by any pointer-like name: certain when it names the table, to confirm otherwise; never a measure', async () => {
    const rows = Array.from({ length: 40 }, (_, i) => {
      const id = i + 1;
      const ref = id > 1 && id % 2 === 0 ? String(id - 1) : '';
      return `${id},m${id},${ref},${id > 1 ? id - 1 : ''},${(id % 20) + 18}`;
    });
    const t = await tables({
      'members.csv': `member_id,name,referred_by,parent_member_id,age\n${rows.join('\n')}\n`,
    });
    const r = inferRelationships(t);
    expect(r.relationships.map((x) => `${rel(x)}: ${x.evidence}`)).toEqual([
      "members.referred_by → members.member_id false: 'referred_by' may point at another row of members (a self-reference); 20 distinct values, all among the 40 of members.member_id; confirm it",
      "members.parent_member_id → members.member_id true: 'parent_member_id' names another row of members (a self-reference); 39 distinct values, all among the 40 of members.member_id",
    ]);
    expect(r.rejected.map((x) => `${columnsOf(x.table, x.columns)}: ${x.reason}`)).toEqual([
      'members.age: 20 distinct values, all among the 40 of members.member_id, but the names are unrelated: value overlap alone is no relationship',
    ]);
  });

  it('the summary lists rejected candidates closest first across all tables, one line per child column; --json keeps all', async () => {
    const t = await tables({
      'visits.csv': `visit_id,place\n${rows(20, (i) => `${i},p${i}`)}\n`,
      'loans.csv': `loan_id,copy_no,shelf,floor,visit_ref\n${rows(20, (i) => `${i},${(i % 5) + 1},${(i % 4) + 1},${(i % 3) + 1},${i + 1}`)}\n`,
      'staff.csv': `staff_id,name\n${rows(8, (i) => `${i},s${i}`)}\n`,
      'customers.csv': `customer_id,support_rep_id\n${rows(30, (i) => `${i},${(i % 6) + 3}`)}\n`,
    });
    const relations = inferRelationships(t);
    const summary = summarize(t, relations, dependencyOrder(t, relations.relationships), [], []);
    expect(summary.rejected).toHaveLength(18);
    const text = renderSummary(summary);
    // visit_ref: 19 of 20 values found, its name shares 'visit'; support_rep_id: an id-like name whose
    // values fit, closest to staff (6 of its 8 keys); copy_no likewise (5); shelf and floor: values alone.
    expect(text.slice(text.indexOf('rejected candidates:'), text.indexOf('load order'))).toBe(
      [
        'rejected candidates:',
        "  loans.visit_ref → visits.visit_id: 'visit_ref' shares 'visit' with visits, but values are missing from visits.visit_id (e.g. \"21\")",
        '    also rejected for loans.visit_ref: customers.customer_id',
        '  customers.support_rep_id → staff.staff_id: 6 distinct values, all among the 8 of staff.staff_id, but the names are unrelated: value overlap alone is no relationship',
        '    also rejected for customers.support_rep_id: visits.visit_id, loans.loan_id, customers.customer_id',
        '  loans.copy_no → staff.staff_id: 5 distinct values, all among the 8 of staff.staff_id, but the names are unrelated: value overlap alone is no relationship',
        '    also rejected for loans.copy_no: visits.visit_id, loans.loan_id, customers.customer_id',
        '  loans.shelf → staff.staff_id: 4 distinct values, all among the 8 of staff.staff_id, but the names are unrelated: value overlap alone is no relationship',
        '    also rejected for loans.shelf: visits.visit_id, loans.loan_id, customers.customer_id',
        '  loans.floor → staff.staff_id: 3 distinct values, all among the 8 of staff.staff_id, but the names are unrelated: value overlap alone is no relationship',
        '    also rejected for loans.floor: visits.visit_id, loans.loan_id, customers.customer_id',
        '',
      ].join('\n'),
    );
  });

  it('natural-key names (isbn, sku, email, …) are key candidates: a link table of them gets its pair as key', async () => {
    const t = await tables({
      'books.csv': 'isbn,title\n9780000000001,a\n9780000000002,b\n9780000000003,c\n',
      'authors.csv': 'author_id,name\n1,x\n2,y\n',
      'book_authors.csv': 'isbn,author_id\n9780000000001,1\n9780000000001,2\n9780000000002,2\n',
      'users.csv': 'name,email\nann,a@example.com\nann,b@example.com\n',
    });
    expect(t.map((x) => [x.name, x.primaryKey, x.keyEvidence])).toEqual([
      ['books', ['isbn'], 'isbn: 3 values, all distinct, none null'],
      ['authors', ['author_id'], 'author_id: 2 values, all distinct, none null'],
      ['book_authors', ['isbn', 'author_id'], '(isbn, author_id): 3 rows, every pair distinct, none null'],
      ['users', ['email'], 'email: 2 values, all distinct, none null'],
    ]);
    expect(inferRelationships(t).relationships.map(rel)).toEqual([
      'book_authors.isbn → books.isbn true',
      'book_authors.author_id → authors.author_id true',
    ]);
  });

  it('a link table of plain names (book, author) gets no key, and its key evidence says why and what to do', async () => {
    const t = await tables({
      'books.csv': 'book_id,title\n1,a\n2,b\n3,c\n',
      'authors.csv': 'author_id,name\n1,x\n2,y\n',
      'book_authors.csv': 'book,author\n1,1\n1,2\n2,1\n3,2\n',
    });
    expect(inferRelationships(t).relationships.map(rel)).toEqual([
      'book_authors.book → books.book_id true',
      'book_authors.author → authors.author_id true',
    ]);
    const link = t.find((x) => x.name === 'book_authors');
    expect([link?.primaryKey, link?.keyEvidence]).toEqual([
      [],
      'none: no id-like column or pair of them is unique and never null; (book, author) point at other tables and are never null: a link table? that pair was not checked (init checks pairs of id-like names, …_id, …_code, …_key, …_no, and of the first or an id-like column with a sequence-like one, …_sequence, ordering, line_no, …): if each pair is unique, make it the primary key by hand',
    ]);
  });

  it('natural-key names count only in a file with no key of its own: users (id, email) follows no pair', async () => {
    const pairs = async (name: string, text: string) =>
      (await profileFile(await file(name, text), snakeIdentifier)).pairs.map((p) => p.columns.join('+'));
    expect(await pairs('accounts.csv', 'id,email\n1,a@example.com\n')).toEqual([]);
    expect(await pairs('logins.csv', 'login_id,email\n1,a@example.com\n')).toEqual([]);
    expect(await pairs('book_authors2.csv', 'isbn,author_id\n9780000000001,1\n')).toEqual(['isbn+author_id']);
  });

  it('a parent key that is missing values is rejected with examples', async () => {
    const t = await tables({
      'customers.csv': 'customerID,name\nA,x\nB,y\n',
      'orders.csv': 'orderID,customerID\n1,A\n2,C\n',
    });
    const r = inferRelationships(t);
    expect(r.relationships).toEqual([]);
    expect(r.rejected.map((x) => x.reason)).toEqual([
      'same column name, but values are missing from customers.customer_id (e.g. "C")',
    ]);
  });
});

/**
 * Orders, products and their lines: the lines' (order_id, product_id) is a composite primary key, unique
 * in 21 rows (in fewer, a pair of names pointing elsewhere is no key: see MIN_KEY_ROWS).
 */
const parents = {
  'orders.csv': `orderID,customer\n${rows(10, (i) => `${9 + i},c${i}`)}\n`,
  'products.csv': 'productID,name\n1,a\n2,b\n3,c\n',
  'order_lines.csv': `orderID,productID,quantity\n${rows(20, (i) => `${9 + Math.ceil(i / 2)},${(i % 2) + 1},${(i % 4) + 1}`)}\n11,3,1\n`,
};

describe('composite foreign keys', () => {
  const composite = (r: ReturnType<typeof inferRelationships>) =>
    r.relationships
      .filter((x) => x.columns.length === 2)
      .map(
        (x) => `${columnsOf(x.table, x.columns)} → ${columnsOf(x.parentTable, x.parentColumns)} ${x.certain}`,
      );

  it('a pair of columns among a two-column primary key, named alike, in either order; nulls aside', async () => {
    const t = await tables({
      ...parents,
      'returns.csv': 'returnID,productID,orderID\n1,2,10\n2,3,11\n3,,11\n4,1,10\n',
    });
    const r = inferRelationships(t);
    expect(composite(r)).toEqual([
      'returns.(order_id, product_id) → order_lines.(order_id, product_id) true',
    ]);
    expect(r.relationships.at(-1)?.evidence).toBe(
      'same column name; 3 distinct pairs, all among the 21 of order_lines.(order_id, product_id)',
    );
  });

  it('a pair missing from the parent key is rejected with examples', async () => {
    const t = await tables({ ...parents, 'returns.csv': 'returnID,orderID,productID\n1,10,3\n2,11,3\n' });
    const r = inferRelationships(t);
    expect(composite(r)).toEqual([]);
    expect(r.rejected.map((x) => `${columnsOf(x.table, x.columns)}: ${x.reason}`)).toContain(
      'returns.(order_id, product_id): same column name, but pairs are missing from order_lines.(order_id, product_id) (e.g. (10, 3))',
    );
  });

  it('never from value overlap alone: unrelated names whose pairs happen to be among the key', async () => {
    const t = await tables({ ...parents, 'bins.csv': 'binID,rackID,slotNo\n1,10,1\n2,10,2\n3,11,3\n' });
    const r = inferRelationships(t);
    expect(composite(r)).toEqual([]);
    expect(
      r.rejected
        .filter((x) => x.columns.length === 2)
        .map((x) => `${columnsOf(x.table, x.columns)}: ${x.reason}`),
    ).toEqual([
      'bins.(rack_id, slot_no): 3 distinct pairs, all among the 21 of order_lines.(order_id, product_id), but the names are unrelated: value overlap alone is no relationship',
    ]);
  });

  it('keeps at most MAX_HASHED pairs: past that, the pair is given up and no key is made from it', () => {
    const pair = new PairProfile(['order_id', 'product_id']);
    for (let i = 0; i < MAX_HASHED; i++) pair.add(String(i), String(i % 7));
    expect([pair.unique, pair.seen?.size]).toEqual([true, MAX_HASHED]);
    pair.add('3', '3');
    expect([pair.unique, pair.duplicates]).toEqual([false, 1]);
    pair.add('3', '4');
    expect([pair.seen, pair.unique]).toEqual([undefined, false]);
  });
});

/**
 * A folder of files (`NAME-data`) and init's output beside it (`NAME`), for `init` run again as files
 * change: `write` (re)writes a file, `initAt(hour)` runs init on the folder as at that hour of 2026-11-28.
 */
async function evolving(name: string) {
  const out = path.join(temp.dir, name);
  const data = path.join(temp.dir, `${name}-data`);
  await mkdir(data);
  return {
    out,
    write: (file: string, text: string) => writeFile(path.join(data, file), text),
    initAt: (hour: number, options: { schema?: string } = {}) =>
      init([data], { out, ...options, now: new Date(Date.UTC(2026, 10, 28, hour)) }),
  };
}

describe('generated files and evolution', () => {
  it('come out as biome check leaves them: long names break as the formatter breaks them, quotes as it picks them', async () => {
    const data = path.join(temp.dir, 'layout-data');
    const out = path.join(temp.dir, 'layout-out');
    await mkdir(data);
    const long = 'aColumnWithAnExtraordinarilyLongNameThatNobodyWouldEverType';
    await writeFile(
      path.join(data, 'employees.csv'),
      `employeeID,"it's",café,${long},${long}ByHandReallyNo\n1,a,x,1,2\n2,b,y,3,4\n`,
    );
    await writeFile(
      path.join(data, 'employee_territories.csv'),
      'employeeID,territoryID\n1,t1\n2,t1\n1,t2\n',
    );
    await writeFile(path.join(data, 'order_lines.csv'), parents['order_lines.csv']);
    await writeFile(
      path.join(data, 'returned_order_lines_awaiting_inspection.csv'),
      'returnID,orderID,productID\n1,10,1\n2,11,3\n3,10,2\n',
    );
    await init([data], { out, schema: 'north', now: new Date('2026-11-28T00:00:00Z') });
    const migration = await readFile(path.join(out, 'migrations/20261128000000_init.ts'), 'utf8');
    // The last argument hugged where the line up to its '[' fits; one argument a line where it does not.
    expect(migration).toContain(
      "    .addForeignKeyConstraint('employee_territories_employee_id_fkey', ['employee_id'], 'north.employees', [\n      'employee_id',\n    ])\n",
    );
    expect(migration).toContain(
      "    .addForeignKeyConstraint(\n      'returned_order_lines_awaiting_inspection_order_id_product_id_fkey',\n      ['order_id', 'product_id'],\n",
    );
    // An arrow function last: hugged after its '=>' where that fits.
    expect(migration).toContain(
      "    .addColumn('a_column_with_an_extraordinarily_long_name_that_nobody_would_ever_type', 'smallint', (c) =>\n      c.notNull(),\n    )\n",
    );
    expect(migration).toContain(
      "    .addColumn(\n      'a_column_with_an_extraordinarily_long_name_that_nobody_would_ever_type_by_hand_really_no',\n",
    );
    expect(await readFile(path.join(out, 'datasets/employees.ts'), 'utf8')).toContain(
      `    "it's": z.string(),\n    café: z.string(),\n`,
    );
    expect(await biomeChanged(out)).toEqual([]);
  });

  it('init again with another --schema is refused: the tables live where they were made', async () => {
    const out = path.join(temp.dir, 'schema-again');
    const p = await file('gadgets.csv', 'id\n1\n');
    await init([p], { out, schema: 'first' });
    await expect(init([p], { out, schema: 'second' })).rejects.toThrow(
      `${out} holds datasets made with --schema first: init on them again without --schema, or with --schema first`,
    );
  });

  it('never overwrites a config it did not write', async () => {
    const out = path.join(temp.dir, 'hand');
    await mkdir(out);
    await writeFile(path.join(out, 'dropload.config.ts'), 'export default { datasets: [] };\n');
    await file('things.csv', 'id\n1\n');
    await expect(init([path.join(temp.dir, 'things.csv')], { out })).rejects.toThrow(
      `${path.join(out, 'dropload.config.ts')} exists and was not written by init: choose another folder with --out (and import its datasets into your config)`,
    );
    expect(await readFile(path.join(out, 'dropload.config.ts'), 'utf8')).toBe(
      'export default { datasets: [] };\n',
    );
  });

  it('names each dataset import after its dataset, unless the name cannot be an identifier', () => {
    expect(
      configModule(['default', '2024', 'orders'], ['20261128000000_init']).text.split('\n').slice(2, 5),
    ).toEqual([
      "import _2024_dataset from './datasets/2024.ts';",
      "import default_dataset from './datasets/default.ts';",
      "import orders from './datasets/orders.ts';",
    ]);
  });

  it('writes an uncertain foreign key commented out, with its evidence', async () => {
    const out = path.join(temp.dir, 'weak');
    await file('shippers.csv', 'shipperID,name\n1,s\n2,t\n3,u\n');
    await file('orders.csv', 'orderID,shipperRef\n10,1\n11,1\n');
    await init([path.join(temp.dir, 'shippers.csv'), path.join(temp.dir, 'orders.csv')], {
      out,
      now: new Date('2026-11-28T00:00:00Z'),
    });
    const migration = await readFile(path.join(out, 'migrations/20261128000000_init.ts'), 'utf8');
    expect(migration).toContain(
      "  // To confirm: 'shipper_ref' shares 'shipper' with shippers; 1 distinct value, all among the 3 of shippers.shipper_id; confirm it. Uncomment to keep it.\n  //  await db.schema\n  //    .alterTable('orders')",
    );
    expect(migration).not.toContain('orders_shipper_ref_idx');
  });

  it('init again: a new table pointing at an existing one gets the foreign key, its column typed as the stored parent', async () => {
    const { out, write, initAt } = await evolving('evolve-fk');
    await write('teams.csv', 'teamCode,name\nA1,a\nB2,b\n');
    await initAt(0);
    // Today's teams have numeric codes only; the table's text column stays text, and so is the new child's.
    await write('teams.csv', 'teamCode,name\n1,c\n2,d\n');
    await write('players.csv', 'playerID,teamCode\n1,1\n2,2\n3,1\n');
    const summary = await initAt(1);
    expect(summary.changes).toEqual([
      'players: new table',
      'players.team_code → teams.team_code: foreign key added, with its index (same column name; 2 distinct values, all among the 2 of teams.team_code)',
    ]);
    const migration = await readFile(path.join(out, 'migrations/20261128010000_init_changes.ts'), 'utf8');
    expect(migration).toContain("    .addColumn('team_code', 'text', (c) => c.notNull())\n");
    expect(migration).toContain(
      "    .addForeignKeyConstraint('players_team_code_fkey', ['team_code'], 'teams', ['team_code'])\n",
    );
    expect(migration).toContain(
      "  await db.schema.createIndex('players_team_code_idx').on('players').column('team_code').execute();\n",
    );
    // The foreign keys written are remembered: the same files again change nothing.
    const again = await initAt(2);
    expect(again.changes).toEqual(['no changes: the files fit the existing tables']);
  });

  it('init again: a new foreign key closing a cycle with one written before is written commented out; the load order exists', async () => {
    const { out, write, initAt } = await evolving('evolve-cycle');
    await write('customers.csv', 'customerID,name\n1,a\n2,b\n');
    await write('orders.csv', 'orderID,customerID\n10,1\n11,2\n');
    await initAt(0);
    // orders.customer_id → customers is in the database; today's orders name a customer not in the file,
    // so inference does not find it again, and customers.last_order_id → orders would close a cycle.
    await write('customers.csv', 'customerID,name,lastOrderID\n1,a,10\n2,b,11\n');
    await write('orders.csv', 'orderID,customerID\n10,1\n11,3\n');
    const summary = await initAt(1);
    expect(summary.changes).toContain(
      "customers.last_order_id → orders.order_id: foreign key written commented out, to confirm ('last_order_id' names orders; 2 distinct values, all among the 2 of orders.order_id; not enforced: with orders.customer_id → customers.customer_id it makes a cycle (customers → orders → customers), and no load order would exist)",
    );
    expect(summary.loadOrder).toEqual(['customers', 'orders']);
    const migration = await readFile(path.join(out, 'migrations/20261128010000_init_changes.ts'), 'utf8');
    expect(migration).not.toMatch(/^ {4}\.addForeignKeyConstraint/m);
  });

  it('init again: inference breaks a cycle at the new foreign key, never at one in the database', async () => {
    const { write, initAt } = await evolving('evolve-cycle-inferred');
    await write('customers.csv', 'customerID,name\n1,a\n2,b\n');
    await write('orders.csv', 'orderID,customerID\n10,1\n11,2\n');
    await initAt(0);
    // Both found again; orders.customer_id is nullable now, which alone would make it the one given up.
    await write('customers.csv', 'customerID,name,lastOrderID\n1,a,10\n2,b,11\n');
    await write('orders.csv', 'orderID,customerID\n10,1\n11,\n');
    const summary = await initAt(1);
    expect(summary.relationships.map((r) => `${rel(r)}: ${r.evidence}`)).toEqual([
      "customers.last_order_id → orders.order_id false: 'last_order_id' names orders; 2 distinct values, all among the 2 of orders.order_id; not enforced: with orders.customer_id → customers.customer_id it makes a cycle (customers → orders → customers), and no load order would exist",
      'orders.customer_id → customers.customer_id true: same column name; 1 distinct value, all among the 2 of customers.customer_id',
    ]);
    expect(summary.loadOrder).toEqual(['customers', 'orders']);
  });

  it('init again on a table an earlier init named with letters (müller, 2024_total) keeps its columns', async () => {
    const { out, write, initAt } = await evolving('evolve-letters');
    await write('people.csv', 'id,Müller,2024 total\n1,a,10\n2,b,20\n');
    await initAt(0);
    // init-state.json as init wrote it before its names were plain identifiers (2026-11-28).
    const stateFile = path.join(out, 'init-state.json');
    const state = await readFile(stateFile, 'utf8');
    await writeFile(
      stateFile,
      state.replace('"muller"', '"müller"').replace('"_2024_total"', '"2024_total"'),
    );
    const again = await initAt(1);
    expect(again.changes).toEqual(['no changes: the files fit the existing tables']);
    expect(again.tables[0]?.columns.map((c) => c.column)).toEqual(['id', 'müller', '2024_total']);
    // columnNames maps Müller to müller and 2024 total to 2024_total: no column named in the dataset.
    expect(await readFile(path.join(out, 'datasets/people.ts'), 'utf8')).not.toContain('columns:');
  });

  it('init again on unchanged files writes nothing: no empty migration, no file rewritten', async () => {
    const { out, write, initAt } = await evolving('unchanged');
    await write('parents.csv', 'id,name\n1,a\n2,b\n');
    await write('kids.csv', 'id,parent_id\n1,1\n2,2\n3,1\n');
    await initAt(0, { schema: 't_c' });
    const before = await readFile(path.join(out, 'datasets/kids.ts'), 'utf8');
    const again = await initAt(1);
    expect(again.changes).toEqual(['no changes: the files fit the existing tables']);
    expect(again.written).toEqual([]);
    expect(await readdir(path.join(out, 'migrations'))).toEqual(['20261128000000_init.ts']);
    expect(await readFile(path.join(out, 'datasets/kids.ts'), 'utf8')).toBe(before);
    expect(renderSummary(again)).toContain('\nwrote nothing: the files there already say this\n');
  });

  it('init again: a relationship found only now between columns that existed before is reported, not added', async () => {
    const { out, write, initAt } = await evolving('evolve-old-columns');
    await write('teams.csv', 'teamCode,name\nA1,a\n');
    await write('players.csv', 'playerID,teamCode\n1,A1\n2,Z9\n');
    await initAt(0);
    await write('players.csv', 'playerID,teamCode\n3,A1\n');
    const summary = await initAt(1);
    expect(summary.changes).toEqual([
      'players.team_code → teams.team_code: not added, its columns existed before (add it by hand if wanted)',
    ]);
    // Nothing to add: no migration at all (an empty one would only be noise).
    expect(await readdir(path.join(out, 'migrations'))).toEqual(['20261128000000_init.ts']);
  });

  it('init again: new columns, widened types and new nulls become an alter migration; nothing dropped or narrowed', async () => {
    const { out, write, initAt } = await evolving('evolve');
    await write('items.csv', 'itemID,qty,price,label\n1,5,1.5,a\n2,7,2.25,b\n');
    await initAt(0);
    await write('items.csv', 'itemID,qty,price,colour\n1,70000,1.5,red\n2,,3,blue\n');
    const summary = await initAt(1);
    // price: 3 fits the existing numeric(3, 2), which stays (never narrowed).
    expect(summary.changes).toEqual([
      'items.qty: widened smallint → integer (1 value, range 70000..70000; 1 null (1× ""))',
      'items.qty: now has nulls (1): NOT NULL dropped',
      'items.label: not in the file; kept, now nullable (init never drops a column)',
      'items.colour: new column, text (nullable: the rows already loaded have none)',
    ]);
    const migration = await readFile(path.join(out, 'migrations/20261128010000_init_changes.ts'), 'utf8');
    const up = migration.slice(migration.indexOf('export async function up'), migration.indexOf('\n}\n'));
    expect(up.split('\n').filter((l) => l.includes('alterColumn') || l.includes('addColumn'))).toEqual([
      "    .alterColumn('qty', (c) => c.setDataType('integer'))",
      "    .alterColumn('qty', (c) => c.dropNotNull())",
      "    .alterColumn('label', (c) => c.dropNotNull())",
      "  await db.schema.alterTable('items').addColumn('colour', 'text').execute();",
    ]);
    const dataset = await readFile(path.join(out, 'datasets/items.ts'), 'utf8');
    expect(dataset).toContain(
      '    itemID: integer(),\n    qty: integer().optional(),\n    price: numeric({ precision: 3, scale: 2 }),\n    label: z.string().optional(),\n    colour: z.string().optional(),\n',
    );
    const config = await readFile(path.join(out, 'dropload.config.ts'), 'utf8');
    expect(config).toContain(
      [
        '  migrations: {',
        "    '20261128000000_init': migration_20261128000000_init,",
        "    '20261128010000_init_changes': migration_20261128010000_init_changes,",
        '  },',
      ].join('\n'),
    );
  });
});

describe('the summary counts', () => {
  it('says 1 row, 1 value, 1 more row that does not fit: singular for one', async () => {
    const solo = await file('solo.csv', 'id,name\n1,a\n');
    const misfits = Array.from({ length: 21 }, (_, i) => `${i + 2},b,extra`);
    const bad = await file('bad.csv', `id,name\n1,a\n${misfits.join('\n')}\n`);
    const text = renderSummary(await init([solo, bad], { out: path.join(temp.dir, 'counts') }));
    expect(text.split('\n').slice(0, 4)).toEqual([
      `solo  (${solo}, 1 row)`,
      '  id    smallint not null — 1 value, range 1..1',
      '  name  text not null — 1 value (e.g. "a")',
      '  primary key: id (id: 1 value, all distinct, none null)',
    ]);
    expect(text).toContain(`bad  (${bad}, 22 rows)`);
    expect(text).toContain('\n  … and 1 more row that does not fit\n');
  });
});

describe('the delimiter of a .csv file', () => {
  const books =
    'isbn;title;price;weight_kg;published\n9780000000011;A book;19,67;0,5;2024-01-02\n9780000000012;B, the book;5,00;1,25;2024-02-03\n';

  it('is guessed from its header and first records, and written into the dataset', async () => {
    const data = path.join(temp.dir, 'semicolon');
    await mkdir(data);
    await writeFile(path.join(data, 'books.csv'), books);
    const out = path.join(temp.dir, 'semicolon-out');
    const summary = await init([data], { out });
    const table = summary.tables[0];
    expect(table?.columns.map((c) => `${c.column} ${c.type}`)).toEqual([
      'isbn bigint',
      'title text',
      'price text',
      'weight_kg text',
      'published date',
    ]);
    expect(table?.misfitCount).toBe(0);
    expect(await readFile(path.join(out, 'datasets/books.ts'), 'utf8')).toContain(
      "  format: 'csv',\n  delimiter: ';',\n",
    );
    expect(await biomeChanged(out)).toEqual([]);
  });

  it('is the one --delimiter names, when given', async () => {
    const data = path.join(temp.dir, 'forced');
    await mkdir(data);
    await writeFile(path.join(data, 'books.csv'), books);
    const summary = await init([data], { out: path.join(temp.dir, 'forced-out'), delimiter: '|' });
    expect(summary.tables[0]?.columns.map((c) => c.column)).toEqual(['isbn_title_price_weight_kg_published']);
  });
});

describe('files the loader would refuse whole', () => {
  it('get no dataset or table; the summary says why, as the loader says it', async () => {
    const data = path.join(temp.dir, 'refused');
    await mkdir(data);
    await writeFile(path.join(data, 'dup.csv'), 'id,name,name\n1,a,b\n');
    await writeFile(
      path.join(data, 'garbage.csv'),
      Buffer.from([0x61, 0xff, 0x62, 0x2c, 0x63, 0x0a, 0x31, 0x0a]),
    );
    await writeFile(path.join(data, 'empty.csv'), '');
    await writeFile(path.join(data, 'zero.csv.gz'), '');
    await writeFile(path.join(data, 'blob.csv'), 'x'.repeat(1024 * 1024 + 10));
    await writeFile(path.join(data, 'good.csv'), 'id,name\n1,a\n');
    const out = path.join(temp.dir, 'refused-out');
    const summary = await init([data], { out });
    expect(summary.tables.map((t) => t.name)).toEqual(['good']);
    expect(summary.refused.map((r) => `${path.basename(r.file)}: ${r.reason}`)).toEqual([
      'blob.csv: header line is longer than maxRecordBytes (1048576 bytes)',
      'dup.csv: header names column "name" twice (columns 2 and 3)',
      'empty.csv: file is empty (0 bytes)',
      'garbage.csv: header (line 1) is not valid UTF-8; save the file as UTF-8',
      'zero.csv.gz: file is empty (0 bytes)',
    ]);
    expect(await readdir(path.join(out, 'datasets'))).toEqual(['good.ts']);
    expect(renderSummary(summary)).toContain(
      'not written (the loader would refuse the whole file):\n  blob.csv: header line is longer than maxRecordBytes (1048576 bytes)\n',
    );
  });

  it('a file that fails a check, its header read or its profile is refused alone; the others are written', async () => {
    const data = path.join(temp.dir, 'hostile');
    await mkdir(data);
    await writeFile(path.join(data, 'good.csv'), 'id,name\n1,a\n');
    // Classic Mac line endings: one long header line, with empty names between its commas.
    await writeFile(path.join(data, 'cronly.csv'), 'id,name,d\r1,a,\r2,b,\r');
    // A trailing delimiter: an empty last name, which the loader ignores (with a note).
    await writeFile(path.join(data, 'traildelim.csv'), 'id,name,\n1,a,\n2,b,\n');
    const rows = Array.from({ length: 100_000 }, (_, i) => `${i},name ${i * 7919}`).join('\n');
    const gz = gzipSync(`id,name\n${rows}\n`);
    // Cut within the start the check reads, and past it (only profiling the whole file finds that).
    await writeFile(path.join(data, 'trunc-head.csv.gz'), gz.subarray(0, 100));
    await writeFile(path.join(data, 'trunc-tail.csv.gz'), gz.subarray(0, gz.length - 100));
    await writeFile(path.join(data, 'csv-as.parquet'), 'id,name\n1,a\n');
    const out = path.join(temp.dir, 'hostile-out');
    const summary = await init([data], { out });
    expect(summary.tables.map((t) => [t.name, t.columns.map((c) => c.column)])).toEqual([
      ['good', ['id', 'name']],
      ['traildelim', ['id', 'name']],
    ]);
    expect(summary.refused.map((r) => `${path.basename(r.file)}: ${r.reason}`)).toEqual([
      'cronly.csv: file uses CR-only line endings (classic Mac); save it with LF or CRLF line endings',
      'csv-as.parquet: not a readable Parquet file: parquet file invalid (footer != PAR1)',
      'trunc-head.csv.gz: gzip data is corrupt or truncated: unexpected end of file',
      'trunc-tail.csv.gz: gzip data is corrupt or truncated: unexpected end of file',
    ]);
    expect(await readdir(path.join(out, 'datasets'))).toEqual(['good.ts', 'traildelim.ts']);
  });

  it('none left to write: init fails, saying why for each', async () => {
    const p = await file('only-empty.csv', '');
    await expect(init([p], { out: path.join(temp.dir, 'none-out') })).rejects.toThrow(
      'nothing to write: the loader would refuse every file: only-empty.csv: file is empty (0 bytes)',
    );
  });
});

describe('a file whose every row misfits', () => {
  it('says the delimiter may be wrong, not only that rows do not fit', async () => {
    // Decimal commas in a semicolon file read (forced) as comma-separated: 3 fields, 1 in the header.
    const p = await file('semi-as-comma.csv', 'price;weight\n1,5;2,5\n4,5;5,5\n');
    const profile = await profileFile(p, snakeIdentifier, () => true, { delimiter: ',' });
    expect(profile.misfits).toEqual([
      {
        line: 2,
        reason:
          '3 fields, header has 1 (unquoted comma?); every row misfits: is the delimiter not ","? pass --delimiter',
      },
      {
        line: 3,
        reason:
          '3 fields, header has 1 (unquoted comma?); every row misfits: is the delimiter not ","? pass --delimiter',
      },
    ]);
  });
});

describe('monthly files of one table', () => {
  const folder = async (name: string, files: Record<string, string | Uint8Array>) => {
    const p = path.join(temp.dir, name);
    await mkdir(p);
    for (const [f, text] of Object.entries(files)) await writeFile(path.join(p, f), text);
    return p;
  };
  const grouped = async (p: string) =>
    (await groupFiles((await readdir(p)).sort().map((f) => path.join(p, f)))).map((g) => [
      g.base,
      g.files.map((f) => path.basename(f)),
      g.fields,
    ]);

  it('group when every header is among the widest, whatever the compression; a renamed column or another format stays apart', async () => {
    const renamed = await folder('renamed', {
      's_2024_01.csv': 'a,b,c\n1,2,3\n',
      's_2024_02.csv': 'a,b,d\n1,2,3\n',
    });
    expect(await grouped(renamed)).toEqual([
      ['s_2024_01', ['s_2024_01.csv'], ['a', 'b', 'c']],
      ['s_2024_02', ['s_2024_02.csv'], ['a', 'b', 'd']],
    ]);
    await writeFile(path.join(renamed, 's_2024_03.csv.gz'), gzipSync('d,a,c,b\n1,2,3,4\n'));
    expect(await grouped(renamed)).toEqual([
      ['s', ['s_2024_01.csv', 's_2024_02.csv', 's_2024_03.csv.gz'], ['d', 'a', 'c', 'b']],
    ]);
    const formats = await folder('formats', { 't_1.csv': 'a,b\n1,2\n', 't_2.tsv': 'a\tb\n1\t2\n' });
    expect(await grouped(formats)).toEqual([
      ['t_1', ['t_1.csv'], ['a', 'b']],
      ['t_2', ['t_2.tsv'], ['a', 'b']],
    ]);
  });

  it('a new month given alone joins the table an earlier init made of its stem, and adds its column', async () => {
    const p = await folder('alone', {
      'inv_2024_01.csv': 'inv_id,total\n1,1.5\n',
      'inv_2024_02.csv': 'inv_id,total\n2,2.5\n',
    });
    const out = path.join(temp.dir, 'alone-out');
    await init([p], { out });
    const month = path.join(p, 'inv_2024_03.csv');
    await writeFile(month, 'inv_id,total,currency\n3,3.5,EUR\n');
    const again = await init([month], { out });
    expect(again.tables.map((t) => [t.name, t.files.map((f) => path.basename(f))])).toEqual([
      ['inv', ['inv_2024_03.csv']],
    ]);
    expect(again.changes).toEqual([
      'inv.currency: new column, text (nullable: the rows already loaded have none)',
    ]);
    const renamed = path.join(p, 'inv_2024_04.csv');
    await writeFile(renamed, 'invoice,amount\n4,4.5\n');
    expect((await init([renamed], { out })).changes).toEqual(['inv_2024_04: new table']);
    // A file that made a table of its own name stays that table's, though its stem names another.
    const other = await folder('own', { 'address.csv': 'id,city\n1,a\n', 'address2.csv': 'id\n2\n' });
    const own = path.join(temp.dir, 'own-out');
    await init([other], { out: own });
    await writeFile(path.join(other, 'address2.csv'), 'id\n2\n3\n');
    const third = await init([other], { out: own });
    expect(third.tables.map((t) => [t.name, t.rows])).toEqual([
      ['address', 1],
      ['address2', 2],
    ]);
  });

  it('read apart by header, count a key repeated across them as a duplicate and a missing column as nulls', async () => {
    const p = await folder('merged', {
      'm_2024_01.csv': 'id,code,total\n1,A,1.5\n2,B,2\n',
      'm_2024_02.csv': 'id,extra,code,total\n2,x,C,\n3,,D,4.25\n',
    });
    const summary = await init([p], { out: path.join(temp.dir, 'merged-out') });
    const [t] = summary.tables;
    expect([t?.name, t?.rows, t?.primaryKey, t?.keyEvidence]).toEqual([
      'm',
      4,
      [],
      'none: no id-like column or pair of them is unique and never null',
    ]);
    expect(
      t?.columns.map((c) => `${c.column} ${c.type}${c.notNull ? ' not null' : ''} — ${c.evidence}`),
    ).toEqual([
      'id smallint not null — 4 values, range 1..3',
      'extra text — 1 value (e.g. "x"); 3 nulls (1× "")',
      'code text not null — 4 values (e.g. "A")',
      'total numeric(3, 2) — 3 values, up to 1 integer digits, max 2 decimals; 1 null (1× "")',
    ]);
  });
});
