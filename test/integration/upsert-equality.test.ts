import { type Kysely, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineDataset } from '../../shared/config/dataset.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { tableShape } from '../../shared/load/write/writing.ts';
import { rejectsOfKey, startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/**
 * An upsert's "unchanged" test on a table with columns whose type has no equality (json, a domain over
 * json, json[], point) or only one that is not equality (box's `=` compares areas): such a column is
 * compared as its text. Before, every chunk failed (`operator does not exist: json = json`), and a box
 * changed to one of the same area counted unchanged and was not written.
 */

const migration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`create domain ue_json as json`.execute(db);
    await sql`create type ue_pair as (a int, j json)`.execute(db);
    await sql`create type ue_plain as (a int, b text)`.execute(db);
    await sql`create type ue_mood as enum ('ok', 'sad')`.execute(db);
    await sql`create table ue_docs (
      id integer primary key check (id < 1000), name varchar(20), doc json, jd ue_json, arr json[],
      loc point, b box)`.execute(db);
    await sql`create table ue_boxes (id integer primary key, b box)`.execute(db);
    await sql`create table ue_group (id integer primary key, label json)`.execute(db);
    await sql`create table ue_item (
      id integer primary key check (id < 1000), group_id integer references ue_group (id), doc json)`.execute(
      db,
    );
    await sql`create table ue_line (
      id integer primary key check (id < 1000), group_id integer references ue_group (id), doc json)`.execute(
      db,
    );
    await sql`create table ue_types (
      id integer primary key, n numeric, v varchar(5), t text, jb jsonb, j json, jd ue_json, ja json[],
      jda ue_json[], ia int[], p point, b box, x xml, m ue_mood, r int4range, c ue_pair, cp ue_plain,
      cpa ue_plain[])`.execute(db);
  },
};

const docsSchema = (coerce: boolean) =>
  z.object({
    id: coerce ? z.coerce.number().int() : z.number().int(),
    name: z.string(),
    doc: z.string(),
    jd: z.string(),
    arr: z.string(),
    loc: z.string(),
    b: z.string(),
  });

const config = {
  datasets: [
    defineDataset({
      name: 'docs-csv',
      format: 'csv',
      table: 'ue_docs',
      mode: 'upsert',
      key: ['id'],
      schema: docsSchema(true),
    }),
    defineDataset({
      name: 'docs-ndjson',
      format: 'ndjson',
      table: 'ue_docs',
      mode: 'upsert',
      key: ['id'],
      schema: z.object({
        id: z.number().int(),
        name: z.string(),
        doc: z.json(),
        jd: z.json(),
        arr: z.string(),
        loc: z.string(),
        b: z.string(),
      }),
    }),
    defineDataset({
      name: 'docs-file',
      format: 'csv',
      table: 'ue_docs',
      mode: 'upsert',
      key: ['id'],
      publish: 'file',
      schema: docsSchema(true),
    }),
    defineDataset({
      name: 'boxes',
      format: 'csv',
      table: 'ue_boxes',
      mode: 'upsert',
      key: ['id'],
      schema: z.object({ id: z.coerce.number().int(), b: z.string() }),
    }),
    defineDataset({
      name: 'items-ndjson',
      format: 'ndjson',
      schema: z.object({ id: z.number().int(), group: z.number().int(), label: z.json(), doc: z.json() }),
      targets: [
        { table: 'ue_group', columns: { id: 'group', label: 'label' }, key: ['id'] },
        { table: 'ue_item', columns: { id: 'id', group_id: 'group', doc: 'doc' }, key: ['id'] },
      ],
    }),
    defineDataset({
      name: 'lines-ndjson',
      format: 'ndjson',
      schema: z.object({
        group: z.number().int(),
        label: z.json(),
        lines: z.array(z.object({ id: z.number().int(), doc: z.json() })),
      }),
      targets: [
        { table: 'ue_group', columns: { id: 'group', label: 'label' }, key: ['id'] },
        {
          table: 'ue_line',
          each: 'lines[]',
          columns: { id: 'id', group_id: '/group', doc: 'doc' },
          key: ['id'],
        },
      ],
    }),
    defineDataset({
      name: 'items-csv',
      format: 'csv',
      schema: z.object({
        id: z.coerce.number().int(),
        group: z.coerce.number().int(),
        label: z.string(),
        doc: z.string(),
      }),
      targets: [
        { table: 'ue_group', columns: { id: 'group', label: 'label' }, key: ['id'] },
        { table: 'ue_item', columns: { id: 'id', group_id: 'group', doc: 'doc' }, key: ['id'] },
      ],
    }),
  ],
  migrations: { '20260101000000_upsert_equality': migration },
};

const TABLES = ['ue_item', 'ue_line', 'ue_group', 'ue_docs', 'ue_boxes', 'ue_types'];

let p: TestPipeline;
let db: Kysely<Database>;
beforeAll(async () => {
  p = await startTestPipeline(config, TABLES);
  db = p.deps.db;
});
afterAll(async () => {
  await p?.stop();
});

const counts = (read: number, inserted: number, updated: number, unchanged: number, rejected = 0) => ({
  read,
  loaded: inserted + updated + unchanged,
  inserted,
  updated,
  unchanged,
  waiting: 0,
  rejected,
  open: rejected,
});

/** The rows of `table` with ids in [from, to): every column as text, and the transaction that wrote it. */
async function stored(table: string, from: number, to: number) {
  const { rows } = await sql<Record<string, string | null>>`
    select t::text as row, xmin::text as xmin from ${sql.table(table)} as t
    where id >= ${from} and id < ${to} order by id`.execute(db);
  return rows;
}

const rowsOf = async (table: string, from: number, to: number) =>
  (await stored(table, from, to)).map((r) => r.row);

/** A CSV of ue_docs rows: [id, name, doc, jd, arr, loc, b]. */
const docsCsv = (rows: (string | number)[][]) =>
  `id,name,doc,jd,arr,loc,b\n${rows.map((r) => r.map((v) => `"${String(v).replaceAll('"', '""')}"`).join(',')).join('\n')}\n`;

const DOCS = (base: number) => [
  [base, 'one', '{"a":1}', '{"x": [1]}', '{1,2}', '(1,2)', '(1,1),(0,0)'],
  [base + 1, 'two', '[1, 2]', '"s"', '{"\\"q\\""}', '(0,0)', '(2,2),(0,0)'],
  [base + 2, 'three', 'null', '{}', '{}', '(3,4)', '(1,1),(0,0)'],
];
const DOCS_STORED = (base: number) => [
  `(${base},one,"{""a"":1}","{""x"": [1]}","{1,2}","(1,2)","(1,1),(0,0)")`,
  `(${base + 1},two,"[1, 2]","""s""","{""\\\\""q\\\\""""}","(0,0)","(2,2),(0,0)")`,
  `(${base + 2},three,null,{},{},"(3,4)","(1,1),(0,0)")`,
];

describe('a single-table upsert into a table with json, a json domain, json[], point and box columns', () => {
  for (const [name, base] of [
    ['docs-csv', 0],
    ['docs-file', 100],
  ] as const) {
    it(`${name}: loads; the same rows again are unchanged and not rewritten; changed ones update`, async () => {
      const first = await p.load(`incoming/${name}/a.csv`, docsCsv(DOCS(base)));
      expect(first.reports[0]).toMatchObject({ state: 'loaded', rows: counts(3, 3, 0, 0) });
      const before = await stored('ue_docs', base, base + 10);
      expect(before.map((r) => r.row)).toEqual(DOCS_STORED(base));

      const again = await p.load(`incoming/${name}/b.csv`, docsCsv(DOCS(base)));
      expect(again.reports[0]).toMatchObject({ state: 'loaded', rows: counts(3, 0, 0, 3) });
      expect(await stored('ue_docs', base, base + 10)).toEqual(before);

      // Row 0: json changed; row 1: a box of the same area (box `=` would call it equal); row 2 as it was.
      const changed = DOCS(base);
      (changed[0] as string[])[2] = '{"a":2}';
      (changed[1] as string[])[6] = '(4,1),(0,0)';
      const third = await p.load(`incoming/${name}/c.csv`, docsCsv(changed));
      expect(third.reports[0]).toMatchObject({ state: 'loaded', rows: counts(3, 0, 2, 1) });
      const after = await stored('ue_docs', base, base + 10);
      expect(after.map((r) => r.row)).toEqual([
        `(${base},one,"{""a"":2}","{""x"": [1]}","{1,2}","(1,2)","(1,1),(0,0)")`,
        `(${base + 1},two,"[1, 2]","""s""","{""\\\\""q\\\\""""}","(0,0)","(4,1),(0,0)")`,
        (DOCS_STORED(base) as string[])[2],
      ]);
      expect(after[2]?.xmin).toBe(before[2]?.xmin);
    });
  }

  it('docs-ndjson: the same, and a json domain, json[] and point changed each count updated', async () => {
    const doc = (id: number, d: unknown, jd: unknown, arr: string, loc: string) =>
      JSON.stringify({ id, name: 'n', doc: d, jd, arr, loc, b: '(1,1),(0,0)' });
    const rows = [
      doc(200, { a: 1 }, [1], '{1}', '(1,1)'),
      doc(201, { a: 1 }, [1], '{1}', '(1,1)'),
      doc(202, { a: 1 }, [1], '{1}', '(1,1)'),
      doc(203, { a: 1 }, [1], '{1}', '(1,1)'),
    ];
    const first = await p.load('incoming/docs-ndjson/a.ndjson', `${rows.join('\n')}\n`);
    expect(first.reports[0]).toMatchObject({ state: 'loaded', rows: counts(4, 4, 0, 0) });
    const again = await p.load('incoming/docs-ndjson/b.ndjson', `${rows.join('\n')}\n`);
    expect(again.reports[0]).toMatchObject({ state: 'loaded', rows: counts(4, 0, 0, 4) });
    const changed = [
      doc(200, { a: 1 }, [2], '{1}', '(1,1)'),
      doc(201, { a: 1 }, [1], '{2}', '(1,1)'),
      doc(202, { a: 1 }, [1], '{1}', '(1,2)'),
      doc(203, { a: 1 }, [1], '{1}', '(1,1)'),
    ];
    const third = await p.load('incoming/docs-ndjson/c.ndjson', `${changed.join('\n')}\n`);
    expect(third.reports[0]).toMatchObject({ state: 'loaded', rows: counts(4, 0, 3, 1) });
    expect(await rowsOf('ue_docs', 200, 210)).toEqual([
      '(200,n,"{""a"":1}",[2],{1},"(1,1)","(1,1),(0,0)")',
      '(201,n,"{""a"":1}",[1],{2},"(1,1)","(1,1),(0,0)")',
      '(202,n,"{""a"":1}",[1],{1},"(1,2)","(1,1),(0,0)")',
      '(203,n,"{""a"":1}",[1],{1},"(1,1)","(1,1),(0,0)")',
    ]);
  });

  it('beside a row a CHECK refuses (row by row): the same rows unchanged, a changed one updated', async () => {
    const rows = [...DOCS(300), [1001, 'x', '{}', '{}', '{}', '(0,0)', '(1,1),(0,0)']];
    const first = await p.load('incoming/docs-csv/r1.csv', docsCsv(rows));
    expect(first.reports[0]).toMatchObject({ state: 'loaded', rows: counts(4, 3, 0, 0, 1) });
    const before = await stored('ue_docs', 300, 310);
    const again = await p.load('incoming/docs-csv/r2.csv', docsCsv(rows));
    expect(again.reports[0]).toMatchObject({ state: 'loaded', rows: counts(4, 0, 0, 3, 1) });
    expect(await stored('ue_docs', 300, 310)).toEqual(before);
    (rows[0] as string[])[2] = '{"a":3}';
    const third = await p.load('incoming/docs-csv/r3.csv', docsCsv(rows));
    expect(third.reports[0]).toMatchObject({ state: 'loaded', rows: counts(4, 0, 1, 2, 1) });
    expect((await rejectsOfKey(db, 'incoming/docs-csv/r3.csv')).map((r) => r.line)).toEqual([5]);
    expect(await rowsOf('ue_docs', 300, 301)).toEqual([
      '(300,one,"{""a"":3}","{""x"": [1]}","{1,2}","(1,2)","(1,1),(0,0)")',
    ]);
  });
});

describe('a box column alone (its `=` compares areas)', () => {
  it('a box changed to another of the same area counts updated and is written', async () => {
    const first = await p.load('incoming/boxes/a.csv', 'id,b\n1,"(2,2),(0,0)"\n2,"(1,1),(0,0)"\n');
    expect(first.reports[0]).toMatchObject({ state: 'loaded', rows: counts(2, 2, 0, 0) });
    const second = await p.load('incoming/boxes/b.csv', 'id,b\n1,"(4,1),(0,0)"\n2,"(1,1),(0,0)"\n');
    expect(second.reports[0]).toMatchObject({ state: 'loaded', rows: counts(2, 0, 1, 1) });
    expect(await rowsOf('ue_boxes', 0, 10)).toEqual(['(1,"(4,1),(0,0)")', '(2,"(1,1),(0,0)")']);
  });
});

describe('a multi-table dataset (upserts) with json columns', () => {
  const ndjson = (rows: object[]) => `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;
  const items = (base: number, doc: (i: number) => unknown) =>
    [0, 1, 2].map((i) => ({ id: base + i, group: base + i, label: { g: base + i }, doc: doc(i) }));

  it('NDJSON: loads; the same records again are unchanged and not rewritten; a changed doc updates', async () => {
    const first = await p.load('incoming/items-ndjson/a.ndjson', ndjson(items(0, (i) => ({ i }))));
    expect(first.reports[0]).toMatchObject({ state: 'loaded', rows: counts(3, 3, 0, 0) });
    const before = [await stored('ue_group', 0, 10), await stored('ue_item', 0, 10)];
    expect(before[1]?.map((r) => r.row)).toEqual([
      '(0,0,"{""i"":0}")',
      '(1,1,"{""i"":1}")',
      '(2,2,"{""i"":2}")',
    ]);
    const again = await p.load('incoming/items-ndjson/b.ndjson', ndjson(items(0, (i) => ({ i }))));
    expect(again.reports[0]).toMatchObject({ state: 'loaded', rows: counts(3, 0, 0, 3) });
    expect([await stored('ue_group', 0, 10), await stored('ue_item', 0, 10)]).toEqual(before);
    const third = await p.load(
      'incoming/items-ndjson/c.ndjson',
      ndjson(items(0, (i) => ({ i: i === 1 ? 9 : i }))),
    );
    expect(third.reports[0]).toMatchObject({ state: 'loaded', rows: counts(3, 0, 1, 2) });
    expect(await rowsOf('ue_item', 0, 10)).toEqual([
      '(0,0,"{""i"":0}")',
      '(1,1,"{""i"":9}")',
      '(2,2,"{""i"":2}")',
    ]);
    expect(await stored('ue_group', 0, 10)).toEqual(before[0]);
  });

  it('CSV, beside a record a CHECK refuses (record by record): unchanged, then a changed label updates', async () => {
    const csv = (label: (i: number) => string) =>
      `id,group,label,doc\n${[0, 1, 2].map((i) => `${10 + i},${10 + i},"${label(i)}","[${i}]"`).join('\n')}\n1001,19,"{}","[]"\n`;
    const first = await p.load(
      'incoming/items-csv/a.csv',
      csv(() => '{""l"": 1}'),
    );
    expect(first.reports[0]).toMatchObject({ state: 'loaded', rows: counts(4, 3, 0, 0, 1) });
    const before = [await stored('ue_group', 10, 20), await stored('ue_item', 10, 20)];
    const again = await p.load(
      'incoming/items-csv/b.csv',
      csv(() => '{""l"": 1}'),
    );
    expect(again.reports[0]).toMatchObject({ state: 'loaded', rows: counts(4, 0, 0, 3, 1) });
    expect([await stored('ue_group', 10, 20), await stored('ue_item', 10, 20)]).toEqual(before);
    const third = await p.load(
      'incoming/items-csv/c.csv',
      csv((i) => (i === 2 ? '{""l"":1}' : '{""l"": 1}')),
    );
    expect(third.reports[0]).toMatchObject({ state: 'loaded', rows: counts(4, 0, 1, 2, 1) });
    expect(await rowsOf('ue_group', 10, 20)).toEqual([
      '(10,"{""l"": 1}")',
      '(11,"{""l"": 1}")',
      '(12,"{""l"":1}")',
    ]);
  });
});

describe('records of several rows of a table (record by record) with json columns', () => {
  const ndjson = (doc: (id: number) => unknown) =>
    `${[40, 41, 42, 43]
      .map((g) => {
        const ids = g === 43 ? [1001, 1002] : [2 * g, 2 * g + 1];
        return JSON.stringify({ group: g, label: [g], lines: ids.map((id) => ({ id, doc: doc(id) })) });
      })
      .join('\n')}\n`;

  it('beside a record a CHECK refuses: the same records unchanged and not rewritten, a changed line updated', async () => {
    const first = await p.load(
      'incoming/lines-ndjson/a.ndjson',
      ndjson((id) => ({ id })),
    );
    expect(first.reports[0]).toMatchObject({ state: 'loaded', rows: counts(4, 3, 0, 0, 1) });
    const before = [await stored('ue_group', 40, 50), await stored('ue_line', 80, 90)];
    expect(before[1]?.map((r) => r.row)).toEqual(
      [80, 81, 82, 83, 84, 85].map((id) => `(${id},${Math.floor(id / 2)},"{""id"":${id}}")`),
    );
    const again = await p.load(
      'incoming/lines-ndjson/b.ndjson',
      ndjson((id) => ({ id })),
    );
    expect(again.reports[0]).toMatchObject({ state: 'loaded', rows: counts(4, 0, 0, 3, 1) });
    expect([await stored('ue_group', 40, 50), await stored('ue_line', 80, 90)]).toEqual(before);
    const third = await p.load(
      'incoming/lines-ndjson/c.ndjson',
      ndjson((id) => ({ id: id === 83 ? 0 : id })),
    );
    expect(third.reports[0]).toMatchObject({ state: 'loaded', rows: counts(4, 0, 1, 2, 1) });
    expect(await rowsOf('ue_line', 82, 84)).toEqual(['(82,41,"{""id"":82}")', '(83,41,"{""id"":0}")']);
  });
});

describe('tableShape', () => {
  it('names the columns compared as text: those whose type has no default btree or hash equality', async () => {
    const shape = await tableShape(db, 'ue_types', 'upsert');
    expect([...shape.textCompared].sort()).toEqual(['b', 'c', 'j', 'ja', 'jd', 'jda', 'p', 'x']);
    expect(shape.get('jda')).toBe('ue_json[]');
  });

  it('names none for a table whose every type has equality, nor for a mode other than upsert', async () => {
    expect([...(await tableShape(db, 'ue_group', 'upsert')).textCompared]).toEqual(['label']);
    expect([...(await tableShape(db, 'ue_boxes', 'insert')).textCompared]).toEqual([]);
  });

  it('names the json-typed columns (json, jsonb, a domain over one; not json[]) for an NDJSON dataset only', async () => {
    expect([...(await tableShape(db, 'ue_types', 'insert', 'ndjson')).jsonTyped]).toEqual(['jb', 'j', 'jd']);
    expect([...(await tableShape(db, 'ue_types', 'upsert', 'csv')).jsonTyped]).toEqual([]);
    expect([...(await tableShape(db, 'ue_types')).jsonTyped]).toEqual([]);
    expect([...(await tableShape(db, 'dropload.file', 'upsert')).textCompared]).toEqual([]);
  });
});
