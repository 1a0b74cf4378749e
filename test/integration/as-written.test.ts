import { parquetWriteBuffer } from 'hyparquet-writer';
import { type Kysely, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineDataset } from '../../shared/config/dataset.ts';
import { bigintText, integer, numeric } from '../../shared/config/fields.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { rejectKindsOfKey, rejectsOfKey, startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/**
 * Every row lands as the file wrote it or is rejected saying why: values that used to change on the way
 * in without a word (NDJSON numbers a double does not hold).
 */

const migration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('aw_docs')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('doc', 'jsonb')
      .execute();
    await db.schema
      .createTable('aw_amounts')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('amount', 'numeric')
      .addColumn('big', sql`numeric(30)`)
      .addColumn('ratio', 'numeric')
      .execute();
    await db.schema
      .createTable('aw_parent')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .execute();
    await db.schema
      .createTable('aw_child')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('parent_id', 'integer', (c) => c.references('aw_parent.id'))
      .addColumn('doc', 'jsonb')
      .execute();
    await db.schema
      .createTable('aw_people')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('name', 'text')
      .addColumn('score', 'numeric')
      .execute();
  },
};

const person = z.object({ id: z.coerce.number().int(), name: z.string(), score: z.number().optional() });
const personTarget = { table: 'aw_people', columns: { id: 'id', name: 'name', score: 'score' }, key: ['id'] };

const config = {
  datasets: [
    defineDataset({
      name: 'docs',
      format: 'ndjson',
      table: 'aw_docs',
      schema: z.object({ id: z.number().int(), doc: z.unknown().optional() }),
    }),
    defineDataset({
      name: 'docs-tables',
      format: 'ndjson',
      schema: z.object({ id: z.number().int(), doc: z.unknown().optional() }),
      targets: [{ table: 'aw_docs', columns: { id: 'id', doc: 'doc' }, key: ['id'] }],
    }),
    defineDataset({
      name: 'parents',
      format: 'csv',
      table: 'aw_parent',
      schema: z.object({ id: z.coerce.number().int() }),
    }),
    defineDataset({
      name: 'children',
      format: 'ndjson',
      table: 'aw_child',
      schema: z.object({ id: z.number().int(), parent_id: z.number().int(), doc: z.unknown().optional() }),
    }),
    defineDataset({
      name: 'json-docs',
      format: 'ndjson',
      table: 'aw_docs',
      schema: z.object({ id: z.number().int(), doc: z.json().optional() }),
    }),
    defineDataset({
      name: 'amounts',
      format: 'ndjson',
      table: 'aw_amounts',
      schema: z.object({
        id: integer(),
        amount: numeric(),
        big: bigintText().optional(),
        ratio: z.number().optional(),
      }),
    }),
    defineDataset({ name: 'people-csv', format: 'csv', schema: person, targets: [personTarget] }),
    defineDataset({ name: 'people-json', format: 'ndjson', schema: person, targets: [personTarget] }),
    defineDataset({ name: 'people-pq', format: 'parquet', schema: person, table: 'aw_people' }),
    defineDataset({ name: 'people-pq-tables', format: 'parquet', schema: person, targets: [personTarget] }),
  ],
  migrations: { '20260101000000_as_written': migration },
};

const TABLES = ['aw_docs', 'aw_amounts', 'aw_people', 'aw_child', 'aw_parent'];

let p: TestPipeline;
let db: Kysely<Database>;
beforeAll(async () => {
  p = await startTestPipeline(config, TABLES);
  db = p.deps.db;
});
afterAll(async () => {
  await p?.stop();
});

const rejectsFor = async (key: string) =>
  (await rejectsOfKey(db, key)).map((r) => [r.line, r.column, r.reason]);

describe('NDJSON numbers a double does not hold', () => {
  it('inside a z.unknown() document: stored as written, digit for digit (jsonb keeps numeric exactly)', async () => {
    const key = 'incoming/docs/numbers.ndjson';
    const lines = [
      '{"id":1,"doc":{"v":1e-400}}',
      '{"id":2,"doc":{"big":12345678901234567890}}',
      '{"id":3,"doc":{"v":1e400}}',
      '{"id":4,"doc":{"v":0.1,"w":9007199254740992,"x":1.5e300,"y":[1,2.50,-0],"s":"12345678901234567890"}}',
      '{"id":5,"doc":{"list":[1,{"v":0.1000000000000000055}]}}',
      '{"id":6,"doc":{"v":1e-320},"extra":12345678901234567890}',
      '{"id":7,"doc":12345678901234567890}',
    ];
    const { reports, timedOut } = await p.load(key, `${lines.join('\n')}\n`);
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 7, loaded: 7, rejected: 0 } });
    // jsonb compares numbers as numeric: each stored document is the file's.
    const docs = lines.map((l) => l);
    const stored = await sql<{ id: number; same: boolean; big: string | null }>`
      select d.id, d.doc = (f.line::jsonb -> 'doc') as same, d.doc #>> '{big}' as big
      from aw_docs d join unnest(${docs}::text[]) with ordinality f(line, n) on f.n = d.id
      where d.id between 1 and 7 order by d.id`.execute(db);
    expect(stored.rows.map((r) => [r.id, r.same])).toEqual([1, 2, 3, 4, 5, 6, 7].map((id) => [id, true]));
    expect(stored.rows[1]?.big).toBe('12345678901234567890');
    // Not merely equal as doubles would be: the stored number is not the double's.
    const differs = await sql<{ n: number }>`
      select count(*)::int as n from aw_docs
      where (id = 1 and doc -> 'v' <> '0'::jsonb) or (id = 5 and doc #> '{list,1,v}' <> '0.1'::jsonb)`.execute(
      db,
    );
    expect(differs.rows[0]?.n).toBe(2);
  });

  it('the same documents in a multi-table dataset: stored as written', async () => {
    const key = 'incoming/docs-tables/numbers.ndjson';
    const lines = [
      '{"id":31,"doc":{"big":12345678901234567890,"v":[1e-400,1e400]}}',
      '{"id":32,"doc":{"v":0.1000000000000000055}}',
    ];
    const { reports, timedOut } = await p.load(key, `${lines.join('\n')}\n`);
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 2, loaded: 2, rejected: 0 } });
    const stored = await sql<{ id: number; same: boolean }>`
      select id, doc = case id when 31 then ${lines[0]}::jsonb -> 'doc' else ${lines[1]}::jsonb -> 'doc' end as same
      from aw_docs where id between 31 and 32 order by id`.execute(db);
    expect(stored.rows).toEqual([
      { id: 31, same: true },
      { id: 32, same: true },
    ]);
  });

  it('a row that waits for its parent keeps its document as written when it loads later', async () => {
    const line =
      '{"id":1,"parent_id":7,"doc":{"big":12345678901234567890,"v":[1e-400,0.1000000000000000055]}}';
    const child = await p.load('incoming/children/c.ndjson', `${line}\n`);
    expect(child.reports[0]).toMatchObject({ state: 'waiting', rows: { read: 1, waiting: 1 } });
    await p.load('incoming/parents/p.csv', 'id\n7\n');
    const deadline = Date.now() + 30_000;
    const waiting = async () =>
      (await sql<{ n: number }>`select count(*)::int as n from dropload.orphan`.execute(db)).rows[0]?.n;
    while ((await waiting()) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const stored = await sql<{ same: boolean }>`
      select doc = (${line}::jsonb -> 'doc') as same from aw_child where id = 1`.execute(db);
    expect(stored.rows).toEqual([{ same: true }]);
  });

  it('inside a document a schema reads (z.json(), z.object): rejected naming the path, with the number as written and what it would be', async () => {
    const key = 'incoming/json-docs/numbers.ndjson';
    const lines = [
      '{"id":21,"doc":{"v":1e-400}}',
      '{"id":22,"doc":{"big":12345678901234567890}}',
      '{"id":24,"doc":{"v":0.1,"w":9007199254740992,"x":1.5e300,"y":[1,2.50,-0]}}',
      '{"id":25,"doc":{"list":[1,{"v":0.1000000000000000055}]}}',
    ];
    const { reports, timedOut } = await p.load(key, `${lines.join('\n')}\n`);
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 4, loaded: 1, rejected: 3 } });
    expect(await rejectsFor(key)).toEqual([
      [
        1,
        'doc.v',
        'a number a double does not hold as written (got 1e-400, it would be stored as 0): write it as a string',
      ],
      [
        2,
        'doc.big',
        'a number a double does not hold as written (got 12345678901234567890, it would be stored as 12345678901234567000): write it as a string',
      ],

      [
        4,
        'doc.list[1].v',
        'a number a double does not hold as written (got 0.1000000000000000055, it would be stored as 0.1): write it as a string',
      ],
    ]);
    expect(await rejectKindsOfKey(db, key)).toEqual(['unwritable', 'unwritable', 'unwritable']);
    const stored = await sql<{ id: number; same: boolean }>`
      select id, doc = (${lines[2]}::jsonb -> 'doc') as same from aw_docs where id between 21 and 25`.execute(
      db,
    );
    expect(stored.rows).toEqual([{ id: 24, same: true }]);
  });

  it('beyond a double inside a z.json() document: rejected naming the path, not as the JSON null zod shows', async () => {
    const key = 'incoming/json-docs/beyond.ndjson';
    const lines = [
      '{"id":26,"doc":{"x":1e400}}',
      '{"id":27,"doc":{"list":[1,{"v":-1e400}]}}',
      '{"id":28,"doc":{"x":1}}',
    ];
    const { reports, timedOut } = await p.load(key, `${lines.join('\n')}\n`);
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 3, loaded: 1, rejected: 2 } });
    const reason = 'a number JSON cannot hold (beyond the range of a double)';
    expect(await rejectsFor(key)).toEqual([
      [1, 'doc.x', reason],
      [2, 'doc.list[1].v', reason],
    ]);
    expect(await rejectKindsOfKey(db, key)).toEqual(['unwritable', 'unwritable']);
  });

  it('top-level fields: numeric() and bigintText() keep every digit written; z.number() into numeric is rejected', async () => {
    const key = 'incoming/amounts/numbers.ndjson';
    const lines = [
      '{"id":1,"amount":0.1000000000000000055,"big":12345678901234567890}',
      '{"id":2,"amount":12345678901234567.89}',
      '{"id":3,"amount":1,"ratio":0.1000000000000000055}',
      '{"id":4,"amount":1e-400}',
      '{"id":5,"amount":2.50,"ratio":0.25}',
      '{"id":9007199254740993,"amount":1}',
    ];
    const { reports, timedOut } = await p.load(key, `${lines.join('\n')}\n`);
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 6, loaded: 4, rejected: 2 } });
    expect(await rejectsFor(key)).toEqual([
      [
        3,
        'ratio',
        'a number a double does not hold as written (got 0.1000000000000000055, it would be stored as 0.1): write it as a string',
      ],
      [
        6,
        'id',
        'not a whole number (got "9007199254740993"): beyond 2^53, JSON numbers lose digits: quote it as a string',
      ],
    ]);
    const stored = await sql<{ id: number; amount: string; big: string | null; ratio: string | null }>`
      select id, amount::text, big::text, ratio::text from aw_amounts order by id`.execute(db);
    expect(stored.rows).toEqual([
      { id: 1, amount: '0.1000000000000000055', big: '12345678901234567890', ratio: null },
      { id: 2, amount: '12345678901234567.89', big: null, ratio: null },
      { id: 4, amount: `0.${'0'.repeat(399)}1`, big: null, ratio: null },
      { id: 5, amount: '2.5', big: null, ratio: '0.25' },
    ]);
  });
});

describe('an NDJSON object that names a key twice', () => {
  it('is rejected naming the key, its path and where the second one is; keys alike in other objects are not', async () => {
    const key = 'incoming/docs/duplicates.ndjson';
    const lines = [
      '{"id":10,"doc":{"a":1},"id":11}',
      '{"id":12,"doc":{"a":1,"b":{"c":2},"a":2}}',
      '{"id":13,"doc":{"note":"a:b","at":"10:00","q":"\\":"}}',
      '{"id":14,"doc":[{"k":1},{"k":2}]}',
      '{"id":15,"doc":{"x\\":y":1,"x\\":y":2}}',
    ];
    const { reports, timedOut } = await p.load(key, `${lines.join('\n')}\n`);
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 5, loaded: 2, rejected: 3 } });
    expect(await rejectsFor(key)).toEqual([
      [1, 'id', 'duplicate key "id" (again at character 24 of the line; JSON.parse would keep the last)'],
      [2, 'doc.a', 'duplicate key "a" (again at character 35 of the line; JSON.parse would keep the last)'],
      [
        5,
        'doc.x":y',
        'duplicate key "x\\":y" (again at character 27 of the line; JSON.parse would keep the last)',
      ],
    ]);
    expect(await rejectKindsOfKey(db, key)).toEqual(['malformed', 'malformed', 'malformed']);
    const stored = await sql<{
      id: number;
    }>`select id from aw_docs where id between 10 and 15 order by id`.execute(db);
    expect(stored.rows).toEqual([{ id: 13 }, { id: 14 }]);
  });
});

const NUL = 'a NUL byte (0x00), which Postgres text cannot hold';

/** A Parquet file of people: ids and names. */
const peopleParquet = (ids: number[], names: string[]) =>
  new Uint8Array(
    parquetWriteBuffer({
      columnData: [
        { name: 'id', data: ids, type: 'INT32' },
        { name: 'name', data: names, type: 'STRING' },
      ],
    }),
  );

const peopleBetween = async (from: number, to: number) =>
  (
    await sql<{
      id: number;
      name: string;
    }>`select id, name from aw_people where id between ${from} and ${to} order by id`.execute(db)
  ).rows;

describe('values Postgres cannot store, in multi-table datasets and Parquet, as in a single-table CSV', () => {
  it('a multi-table CSV: a NUL rejects its record as unwritable, naming the column; the others load', async () => {
    const key = 'incoming/people-csv/nul.csv';
    const { reports, timedOut } = await p.load(key, 'id,name\n1,ok\n2,bad\u0000name\n3,fine\n');
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 3, loaded: 2, rejected: 1 } });
    expect(await rejectsFor(key)).toEqual([[3, 'name', NUL]]);
    expect(await rejectKindsOfKey(db, key)).toEqual(['unwritable']);
    expect(await peopleBetween(1, 3)).toEqual([
      { id: 1, name: 'ok' },
      { id: 3, name: 'fine' },
    ]);
  });

  it('a multi-table NDJSON: a NUL, a lone surrogate and an inexact number each reject their record', async () => {
    const key = 'incoming/people-json/values.ndjson';
    const lines = [
      '{"id":11,"name":"a\\u0000b"}',
      '{"id":12,"name":"\\ud800"}',
      '{"id":13,"name":"big","score":0.1000000000000000055}',
      '{"id":14,"name":"ok","score":0.25}',
    ];
    const { reports, timedOut } = await p.load(key, `${lines.join('\n')}\n`);
    expect(timedOut).toBe(false);
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 4, loaded: 1, rejected: 3 } });
    expect(await rejectsFor(key)).toEqual([
      [1, 'name', NUL],
      [
        2,
        'name',
        'a lone UTF-16 surrogate (\\ud800), which UTF-8 cannot hold (it would be stored as U+FFFD)',
      ],
      [
        3,
        'score',
        'a number a double does not hold as written (got 0.1000000000000000055, it would be stored as 0.1): write it as a string',
      ],
    ]);
    expect(await rejectKindsOfKey(db, key)).toEqual(['unwritable', 'unwritable', 'unwritable']);
    expect(await peopleBetween(11, 14)).toEqual([{ id: 14, name: 'ok' }]);
  });

  it('Parquet, one table or several: a NUL in a string rejects its row as unwritable, naming the column', async () => {
    for (const [dataset, first] of [
      ['people-pq', 21],
      ['people-pq-tables', 31],
    ] as const) {
      const key = `incoming/${dataset}/nul.parquet`;
      const ids = [first, first + 1, first + 2];
      const { reports, timedOut } = await p.load(key, peopleParquet(ids, ['ok', 'a\u0000b', 'fine']));
      expect(timedOut).toBe(false);
      expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 3, loaded: 2, rejected: 1 } });
      expect(await rejectsFor(key)).toEqual([[2, 'name', NUL]]);
      expect(await rejectKindsOfKey(db, key)).toEqual(['unwritable']);
      expect((await peopleBetween(first, first + 2)).map((r) => r.id)).toEqual([first, first + 2]);
    }
  });
});
