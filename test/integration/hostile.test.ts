import { parquetWriteBuffer } from 'hyparquet-writer';
import { type Kysely, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineDataset } from '../../shared/config/dataset.ts';
import { MAX_NESTING_DEPTH } from '../../shared/formats/parsing.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { rejectKindsOfKey, rejectsOfKey, startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/**
 * Hostile files (issue 10, items 5, 6 and 8): text the database refuses, records nested deeper than
 * any stack, values that cannot be written, and work that takes long. Each ends with a clear reason
 * where an operator looks (the file's error, a reject with its line), its neighbours load, and no
 * file stays in `splitting` or `loading`.
 */

const SLEEP_SECONDS = 1.5;

const migration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('hostile_rows')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('note', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('hostile_docs')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('note', 'text')
      .addColumn('payload', 'jsonb')
      .execute();
    await db.schema
      .createTable('hostile_words')
      .addColumn('code', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('hostile_pq')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .execute();
    // Each insert statement into it takes SLEEP_SECONDS: a chunk whose work is measurably long.
    await db.schema
      .createTable('hostile_slow')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .execute();
    await sql`create function hostile_sleep() returns trigger language plpgsql as $$
      begin perform pg_sleep(${sql.lit(SLEEP_SECONDS)}); return null; end $$`.execute(db);
    await sql`create trigger hostile_sleep before insert on hostile_slow
      for each statement execute function hostile_sleep()`.execute(db);
    // The ledger refuses the chunk plan of any file whose key says so, with a data exception (class 22):
    // a stand-in for any text read from a file that the database cannot store.
    await sql`create function hostile_refuse_plan() returns trigger language plpgsql as $$
      begin
        if (select key from dropload.file where id = new.file_id) like '%ledger-refuses%' then
          raise exception 'character with byte sequence 0xe2 0x82 0xac has no equivalent' using errcode = '22P05';
        end if;
        return new;
      end $$`.execute(db);
    await sql`create trigger hostile_refuse_plan before insert on dropload.chunk
      for each row execute function hostile_refuse_plan()`.execute(db);
  },
};

/** A value written by a transform JSON cannot serialize (a BigInt inside an object), or one whose transform throws. */
const meta = z.string().transform((s) => {
  if (s === 'boom') throw new Error('the transform blew up');
  return s === 'bigint' ? { n: 1n } : { s };
});

const config = {
  datasets: [
    defineDataset({
      name: 'rows',
      format: 'csv',
      table: 'hostile_rows',
      schema: z.object({ id: z.coerce.number().int(), note: z.string() }),
    }),
    defineDataset({
      name: 'words',
      format: 'csv',
      table: 'hostile_words',
      schema: z.object({ code: z.string(), name: z.string() }),
    }),
    defineDataset({
      name: 'docs',
      format: 'ndjson',
      table: 'hostile_docs',
      schema: z.object({ id: z.number().int(), note: z.string(), payload: z.unknown().optional() }),
    }),
    defineDataset({
      name: 'json-docs',
      format: 'ndjson',
      table: 'hostile_docs',
      schema: z.object({ id: z.number().int(), note: z.string(), payload: z.json().optional() }),
    }),
    defineDataset({
      name: 'meta',
      format: 'csv',
      table: 'hostile_docs',
      columns: { meta: 'payload' },
      schema: z.object({ id: z.coerce.number().int(), meta }),
    }),
    defineDataset({
      name: 'meta-tables',
      format: 'csv',
      schema: z.object({ id: z.coerce.number().int(), meta }),
      targets: [{ table: 'hostile_docs', columns: { id: 'id', payload: 'meta' }, key: ['id'] }],
    }),
    defineDataset({
      name: 'pq',
      format: 'parquet',
      table: 'hostile_pq',
      schema: z.object({ id: z.number().int() }),
    }),
    defineDataset({
      name: 'slow',
      format: 'csv',
      table: 'hostile_slow',
      schema: z.object({ id: z.coerce.number().int() }),
    }),
  ],
  migrations: { '20260101000000_hostile': migration },
};

let p: TestPipeline;
let db: Kysely<Database>;
beforeAll(async () => {
  p = await startTestPipeline(config, [
    'hostile_rows',
    'hostile_words',
    'hostile_docs',
    'hostile_pq',
    'hostile_slow',
  ]);
  db = p.deps.db;
});
afterAll(async () => {
  await p?.stop();
});

const rejectsFor = (key: string) => rejectsOfKey(db, key);

const rowsBetween = async (from: number, to: number) =>
  (
    await sql<{
      id: number;
      note: string;
    }>`select id, note from hostile_rows where id between ${from} and ${to} order by id`.execute(db)
  ).rows;

const docsBetween = async (from: number, to: number) =>
  (
    await sql<{
      id: number;
      note: string | null;
      payload: unknown;
    }>`select id, note, payload from hostile_docs where id between ${from} and ${to} order by id`.execute(db)
  ).rows;

/** Whether row `id`'s stored payload is `json` (jsonb compares its numbers exactly). */
const payloadIs = async (id: number, json: string) =>
  (
    await sql<{
      same: boolean;
    }>`select payload = ${json}::jsonb as same from hostile_docs where id = ${id}`.execute(db)
  ).rows[0]?.same;

/** `depth` arrays, one inside the next: `[[[…]]]`. */
const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('text the database refuses (NUL bytes, data exceptions) never wedges a file', () => {
  it('a NUL byte in a required header column fails the file, naming the column', async () => {
    const { reports, timedOut } = await p.load('incoming/rows/nul-header.csv', 'id,no\u0000te\n1,x\n');
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({
      state: 'failed',
      error: 'header column 2 ("no\uFFFDte") contains a NUL byte; remove it and drop the file again',
    });
  });

  it('a NUL byte in a column nothing reads fails the file too (it would be stored in the ledger)', async () => {
    const { reports, timedOut } = await p.load('incoming/rows/nul-extra.csv', 'id,note,ex\u0000tra\n2,x,y\n');
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({
      state: 'failed',
      error: 'header column 3 ("ex\uFFFDtra") contains a NUL byte; remove it and drop the file again',
    });
    expect(await rowsBetween(2, 2)).toEqual([]);
  });

  it('a NUL byte in a value rejects that row only, naming its column; the reject stores it as U+FFFD', async () => {
    const { reports, timedOut } = await p.load(
      'incoming/rows/nul-value.csv',
      'id,note\n10,fine\n11,bad\u0000value\n12,fine too\n',
    );
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 3, loaded: 2, rejected: 1 } });
    const [reject] = await rejectsFor('incoming/rows/nul-value.csv');
    expect(reject).toMatchObject({
      line: 3,
      column: 'note',
      reason: 'a NUL byte (0x00), which Postgres text cannot hold',
      raw: '11,bad\uFFFDvalue',
    });
    expect(await rejectKindsOfKey(db, 'incoming/rows/nul-value.csv')).toEqual(['unwritable']);
    expect(await rowsBetween(10, 12)).toEqual([
      { id: 10, note: 'fine' },
      { id: 12, note: 'fine too' },
    ]);
  });

  it('two exports joined: the repeated header (after its BOM too) is rejected as that, a BOM before a value named', async () => {
    const key = 'incoming/rows/joined.csv';
    const { reports, timedOut } = await p.load(
      key,
      'id,note\n130,a\nid,note\n131,b\n\ufeffid,note\n\ufeff132,c\n',
    );
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 5, loaded: 2, rejected: 3 } });
    expect((await rejectsFor(key)).map((r) => [r.line, r.column, r.reason])).toEqual([
      [3, null, 'the header repeated at line 3 (two exports concatenated?)'],
      [5, null, 'the header repeated at line 5 (two exports concatenated?)'],
      [
        6,
        'id',
        'a byte-order mark at the start of line 6: an invisible U+FEFF before "132" (two exports concatenated?)',
      ],
    ]);
  });

  describe('a chunk with a line that is not UTF-8 checks its other lines as a valid chunk does', () => {
    const latin1 = (...parts: (string | number[])[]) =>
      Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : Buffer.from(part))));
    const NOT_UTF8 = 'bytes are not valid UTF-8 (first bad byte at offset 6 of the line)';
    /** What `id,…\n<id>,caf<0xe9>\nid,…\n<BOM><id+1>,…` is rejected for: the Latin-1 line, the header again, the BOM line. */
    const joinedLatin1Rejects = (bomId: number) => [
      [2, null, 'bytes are not valid UTF-8 (first bad byte at offset 7 of the line)'],
      [3, null, 'the header repeated at line 3 (two exports concatenated?)'],
      [
        4,
        'id',
        `a byte-order mark at the start of line 4: an invisible U+FEFF before "${bomId}" (two exports concatenated?)`,
      ],
    ];

    it('text columns: the repeated header and a BOM line are rejected, not loaded', async () => {
      const key = 'incoming/words/joined-latin1.csv';
      const body = latin1(
        'code,name\nw1,Caf',
        [0xe9],
        '\ncode,name\n\ufeffcode,name\n\ufeffw2,bom\nw3,nul\u0000here\nw4,plain\n',
      );
      const { reports, timedOut } = await p.load(key, body);
      expect(timedOut).toBe(false);
      expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 6, loaded: 1, rejected: 5 } });
      expect((await rejectsFor(key)).map((r) => [r.line, r.column, r.reason])).toEqual([
        [2, null, NOT_UTF8],
        [3, null, 'the header repeated at line 3 (two exports concatenated?)'],
        [4, null, 'the header repeated at line 4 (two exports concatenated?)'],
        [
          5,
          'code',
          'a byte-order mark at the start of line 5: an invisible U+FEFF before "w2" (two exports concatenated?)',
        ],
        [6, 'name', 'a NUL byte (0x00), which Postgres text cannot hold'],
      ]);
      expect(await rejectKindsOfKey(db, key)).toEqual([
        'unreadable',
        'malformed',
        'malformed',
        'malformed',
        'unwritable',
      ]);
      const words = await sql<{
        code: string;
        name: string;
      }>`select code, name from hostile_words order by code`.execute(db);
      expect(words.rows).toEqual([{ code: 'w4', name: 'plain' }]);
    });

    it('integer columns: the repeated header is rejected as that, not as "not a whole number"', async () => {
      const key = 'incoming/rows/joined-latin1.csv';
      const body = latin1('id,note\n150,caf', [0xe9], '\nid,note\n\ufeff151,b\n152,c\n');
      const { reports, timedOut } = await p.load(key, body);
      expect(timedOut).toBe(false);
      expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 4, loaded: 1, rejected: 3 } });
      expect((await rejectsFor(key)).map((r) => [r.line, r.column, r.reason])).toEqual(
        joinedLatin1Rejects(151),
      );
      expect(await rowsBetween(150, 153)).toEqual([{ id: 152, note: 'c' }]);
    });

    it('several tables: the repeated header and a BOM line are rejected', async () => {
      const key = 'incoming/meta-tables/joined-latin1.csv';
      const body = latin1('id,meta\n170,caf', [0xe9], '\nid,meta\n\ufeff171,b\n172,c\n');
      const { reports, timedOut } = await p.load(key, body);
      expect(timedOut).toBe(false);
      expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 4, loaded: 1, rejected: 3 } });
      expect((await rejectsFor(key)).map((r) => [r.line, r.column, r.reason])).toEqual(
        joinedLatin1Rejects(171),
      );
      expect(await docsBetween(170, 173)).toEqual([{ id: 172, note: null, payload: { s: 'c' } }]);
    });

    it('NDJSON: a value that would be stored changed is rejected naming its column', async () => {
      const key = 'incoming/docs/changed-latin1.ndjson';
      const body = latin1(
        '{"id":180,"note":"caf',
        [0xe9],
        '"}\n{"id":181,"note":"\\ud800"}\n{"id":182,"note":"n","payload":{"x":1e400}}\n{"id":183,"note":"ok"}\n',
      );
      const { reports, timedOut } = await p.load(key, body);
      expect(timedOut).toBe(false);
      expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 4, loaded: 2, rejected: 2 } });
      expect((await rejectsFor(key)).map((r) => [r.line, r.column, r.reason])).toEqual([
        [1, null, 'bytes are not valid UTF-8 (first bad byte at offset 21 of the line)'],
        [
          2,
          'note',
          'a lone UTF-16 surrogate (\\ud800), which UTF-8 cannot hold (it would be stored as U+FFFD)',
        ],
      ]);
      // 1e400 in a document passed through as it is (z.unknown()) is stored as written: jsonb keeps it.
      expect((await docsBetween(180, 183)).map((r) => r.id)).toEqual([182, 183]);
      expect(await payloadIs(182, '{"x":1e400}')).toBe(true);
    });
  });

  it('NDJSON values that would be stored changed are rejected naming their column', async () => {
    const key = 'incoming/docs/changed.ndjson';
    const lines = [
      '{"id":40,"note":"kept","payload":{"x":1}}',
      '{"id":41,"note":"\\ud800"}',
      '{"id":42,"note":"n","payload":{"x":1e400}}',
      '{"id":9007199254740993,"note":"n"}',
    ];
    const { reports, timedOut } = await p.load(key, `${lines.join('\n')}\n`);
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 4, loaded: 2, rejected: 2 } });
    // 1e400 in a document passed through as it is (z.unknown()) is stored as written: jsonb keeps it.
    expect(await payloadIs(42, '{"x":1e400}')).toBe(true);
    expect((await rejectsFor(key)).map((r) => [r.line, r.column, r.reason, r.raw])).toEqual([
      [
        2,
        'note',
        'a lone UTF-16 surrogate (\\ud800), which UTF-8 cannot hold (it would be stored as U+FFFD)',
        lines[1],
      ],
      [
        4,
        'id',
        expect.stringMatching(
          /\(got "9007199254740993"\): beyond 2\^53, JSON numbers lose digits: quote it as a string$/,
        ),
        lines[3],
      ],
    ]);
  });

  it('a key with a NUL byte, control characters and a newline is stored and its file loads', async () => {
    const key = 'incoming/rows/odd\u0000name\u0001\ttab\nline ✓.csv';
    const { reports, timedOut } = await p.load(key, 'id,note\n20,odd key\n');
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 1, loaded: 1 } });
    const stored = await db
      .selectFrom('dropload.file')
      .select('key')
      .where('key', 'like', 'incoming/rows/odd%')
      .execute();
    expect(stored).toEqual([{ key: 'incoming/rows/odd\uFFFDname\u0001\ttab\nline ✓.csv' }]);
    expect(await rowsBetween(20, 20)).toEqual([{ id: 20, note: 'odd key' }]);
  });

  it('any data exception while recording the split fails the file with the reason instead of retrying forever', async () => {
    const { reports, timedOut } = await p.load('incoming/rows/ledger-refuses.csv', 'id,note\n30,x\n');
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({
      state: 'failed',
      error:
        'the database refused what was read from the file (SQLSTATE 22P05): character with byte sequence 0xe2 0x82 0xac has no equivalent',
    });
    expect(await rowsBetween(30, 30)).toEqual([]);
  });
});

describe('records nested deeper than the limit, and values that cannot be written', () => {
  it('NDJSON nested 5,000 deep is rejected as that record; its neighbours load (a field the schema passes through)', async () => {
    const lines = [
      '{"id":1,"note":"a","payload":{"k":[1,2]}}',
      `{"id":2,"note":"b","payload":${nested(5000)}}`,
      '{"id":3,"note":"c"}',
      `{"id":4,"note":${nested(5000)}}`,
      `{"id":5,"note":"e","payload":${nested(MAX_NESTING_DEPTH - 1)}}`,
      `{"id":6,"note":"f","payload":${nested(MAX_NESTING_DEPTH)}}`,
      '{"id":7,"note":"g"}',
    ];
    const { reports, timedOut } = await p.load('incoming/docs/deep.ndjson', `${lines.join('\n')}\n`);
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 7, loaded: 4, rejected: 3 } });
    const too = (depth: number) =>
      `record is nested ${depth} levels deep, over the limit of ${MAX_NESTING_DEPTH} levels`;
    expect((await rejectsFor('incoming/docs/deep.ndjson')).map((r) => [r.line, r.column, r.reason])).toEqual([
      [2, null, too(5001)],
      [4, null, too(5001)],
      [6, null, too(MAX_NESTING_DEPTH + 1)],
    ]);
    const rows = await docsBetween(1, 7);
    expect(rows.map((r) => r.id)).toEqual([1, 3, 5, 7]);
    expect(rows[0]?.payload).toEqual({ k: [1, 2] });
    expect(JSON.stringify(rows[2]?.payload)).toBe(nested(MAX_NESTING_DEPTH - 1));
  });

  it('the same file under a z.json() schema (which recurses) ends the same way', async () => {
    const lines = [
      '{"id":101,"note":"a"}',
      `{"id":102,"note":"b","payload":${nested(5000)}}`,
      '{"id":103,"note":"c","payload":[1]}',
    ];
    const { reports, timedOut } = await p.load('incoming/json-docs/deep.ndjson', `${lines.join('\n')}\n`);
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 3, loaded: 2, rejected: 1 } });
    expect((await rejectsFor('incoming/json-docs/deep.ndjson')).map((r) => r.line)).toEqual([2]);
    expect(await rejectKindsOfKey(db, 'incoming/json-docs/deep.ndjson')).toEqual(['malformed']);
    expect((await docsBetween(101, 103)).map((r) => r.id)).toEqual([101, 103]);
  });

  it('a value that cannot be written, or a schema that throws, rejects its row, never the chunk', async () => {
    const body = 'id,meta\n201,fine\n202,bigint\n203,boom\n204,also fine\n';
    const { reports, timedOut } = await p.load('incoming/meta/values.csv', body);
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 4, loaded: 2, rejected: 2 } });
    expect(await rejectsFor('incoming/meta/values.csv')).toEqual([
      {
        line: 3,
        column: 'meta',
        reason: 'value cannot be written: TypeError: Do not know how to serialize a BigInt',
        raw: '202,bigint',
      },
      {
        line: 4,
        column: null,
        reason: 'the schema threw while checking the record: Error: the transform blew up',
        raw: '203,boom',
      },
    ]);
    expect(await rejectKindsOfKey(db, 'incoming/meta/values.csv')).toEqual(['unwritable', 'invalid']);
    expect((await docsBetween(201, 204)).map((r) => [r.id, r.payload])).toEqual([
      [201, { s: 'fine' }],
      [204, { s: 'also fine' }],
    ]);
  });
});

/** A Parquet file with an `id` column and a column of `depth` groups nested one in the next. */
function nestedParquet(depth: number): Uint8Array {
  const schema: NonNullable<Parameters<typeof parquetWriteBuffer>[0]['schema']> = [
    { name: 'root', num_children: 2 },
    { name: 'id', type: 'INT32', repetition_type: 'REQUIRED' },
  ];
  for (let i = 0; i < depth; i++)
    schema.push({ name: `g${i}`, repetition_type: 'OPTIONAL', num_children: 1 });
  schema.push({ name: 'leaf', type: 'INT32', repetition_type: 'OPTIONAL' });
  const columnData = [
    { name: 'id', data: [1, 2] },
    { name: 'g0', data: [null, null] },
  ];
  return new Uint8Array(parquetWriteBuffer({ columnData, schema }));
}

describe('the same on the multi-table path', () => {
  it('a value that cannot be written, or a schema that throws, rejects its row, never the chunk', async () => {
    const body = 'id,meta\n301,fine\n302,bigint\n303,boom\n304,also fine\n';
    const { reports, timedOut } = await p.load('incoming/meta-tables/values.csv', body);
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 4, loaded: 2, rejected: 2 } });
    expect((await rejectsFor('incoming/meta-tables/values.csv')).map((r) => [r.line, r.reason])).toEqual([
      [3, 'value cannot be written: TypeError: Do not know how to serialize a BigInt'],
      [4, 'the schema threw while checking the record: Error: the transform blew up'],
    ]);
    expect(await rejectKindsOfKey(db, 'incoming/meta-tables/values.csv')).toEqual(['unwritable', 'invalid']);
    expect((await docsBetween(301, 304)).map((r) => r.id)).toEqual([301, 304]);
  });
});

describe('a Parquet row rejected', () => {
  it("keeps a 64-bit integer's exact digits in its stored line", async () => {
    const schema: NonNullable<Parameters<typeof parquetWriteBuffer>[0]['schema']> = [
      { name: 'root', num_children: 1 },
      { name: 'id', type: 'INT64', repetition_type: 'REQUIRED' },
    ];
    const body = new Uint8Array(
      parquetWriteBuffer({ columnData: [{ name: 'id', data: [9007199254740993n] }], schema }),
    );
    const { reports, timedOut } = await p.load('incoming/pq/big-int64.parquet', body);
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 1, loaded: 0, rejected: 1 } });
    const [reject] = await rejectsFor('incoming/pq/big-int64.parquet');
    expect(reject).toMatchObject({ line: 1, column: 'id', raw: '{"id":9007199254740993}' });
  });
});

describe('Parquet nested deeper than the limit', () => {
  it('fails the file naming the depth before anything recurses on its schema; a shallow one loads', async () => {
    const deep = await p.load('incoming/pq/deep.parquet', nestedParquet(MAX_NESTING_DEPTH));
    expect(deep.timedOut).toBe(false);
    expect(deep.reports[0]).toMatchObject({
      state: 'failed',
      error: `Parquet schema nests ${MAX_NESTING_DEPTH + 1} levels deep, over the limit of ${MAX_NESTING_DEPTH} levels`,
    });
    const shallow = await p.load('incoming/pq/shallow.parquet', nestedParquet(3));
    expect(shallow.reports[0]).toMatchObject({ state: 'loaded', rows: { read: 2, loaded: 2 } });
  });
});

describe('durations', () => {
  it("a chunk's long work shows in the file's seconds (the ledger's clock, not the transaction's start)", async () => {
    const { reports, timedOut } = await p.load('incoming/slow/slow.csv', 'id\n1\n2\n3\n');
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 3, loaded: 3 } });
    expect(reports[0]?.seconds).toBeGreaterThanOrEqual(SLEEP_SECONDS);
    const [times] = (
      await sql<{ file: number; chunk: number }>`
        select extract(epoch from f.finished_at - f.created_at)::float8 as file,
               extract(epoch from c.loaded_at - f.created_at)::float8 as chunk
        from dropload.file f join dropload.chunk c on c.file_id = f.id
        where f.key = 'incoming/slow/slow.csv'`.execute(db)
    ).rows;
    expect(times?.file).toBeGreaterThanOrEqual(SLEEP_SECONDS);
    expect(times?.chunk).toBeGreaterThanOrEqual(SLEEP_SECONDS);
  });
});
