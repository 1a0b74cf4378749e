import { parquetWriteBuffer } from 'hyparquet-writer';
import { type Kysely, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineDataset } from '../../shared/config/dataset.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { retryRejects } from '../../shared/ops/retry-rejects.ts';
import { rejectsOfKey, startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/**
 * An NDJSON string written whole to a json/jsonb column is stored as that JSON string: the file said a
 * string, not JSON text (`"[1,2]"`, not the array). A CSV (or Parquet) cell for such a column is JSON text.
 */

const migration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('js_docs')
      .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id < 1000`))
      .addColumn('doc', 'jsonb')
      .addColumn('j', 'json')
      .execute();
    await db.schema
      .createTable('js_upserted')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('doc', 'jsonb')
      .execute();
    await db.schema
      .createTable('js_parent')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .execute();
    await db.schema
      .createTable('js_child')
      .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id < 1000`))
      .addColumn('parent_id', 'integer', (c) => c.references('js_parent.id'))
      .addColumn('doc', 'jsonb')
      .execute();
    await db.schema
      .createTable('js_group')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('label', 'jsonb')
      .execute();
    await db.schema
      .createTable('js_item')
      .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id < 1000`))
      .addColumn('group_id', 'integer', (c) => c.references('js_group.id'))
      .addColumn('doc', 'jsonb')
      .execute();
    // A domain over jsonb (over a domain): its column shows the domain's name, its text is still read as JSON.
    await sql`create domain rv_doc as jsonb`.execute(db);
    await sql`create domain rv_doc_deep as rv_doc`.execute(db);
    await sql`create table rv_docs (id int primary key, doc rv_doc, deep rv_doc_deep)`.execute(db);
    await sql`create table rv_group (id int primary key, label rv_doc)`.execute(db);
    await sql`create table js_tag (id bigint generated always as identity primary key, name jsonb unique)`.execute(
      db,
    );
    await sql`create table js_tagged (id int primary key, tag_ref bigint not null references js_tag (id))`.execute(
      db,
    );
  },
};

const docsOf = (name: string, doc: z.ZodType) =>
  defineDataset({
    name,
    format: 'ndjson',
    table: 'js_docs',
    schema: z.object({ id: z.number().int(), doc: doc.optional(), j: doc.optional() }),
  });

const config = {
  datasets: [
    docsOf('docs-unknown', z.unknown()),
    docsOf('docs-json', z.json()),
    docsOf('docs-string', z.string()),
    // Upserts COPY into a staging table first (upserts into json columns: upsert-equality.test.ts).
    defineDataset({
      name: 'docs-upsert',
      format: 'ndjson',
      table: 'js_upserted',
      mode: 'upsert',
      key: ['id'],
      schema: z.object({ id: z.number().int(), doc: z.unknown() }),
    }),
    defineDataset({
      name: 'docs-csv',
      format: 'csv',
      table: 'js_docs',
      schema: z.object({ id: z.coerce.number().int(), doc: z.string(), j: z.string() }),
    }),
    defineDataset({
      name: 'docs-parquet',
      format: 'parquet',
      table: 'js_docs',
      schema: z.object({ id: z.number().int(), doc: z.string() }),
    }),
    defineDataset({
      name: 'parents',
      format: 'csv',
      table: 'js_parent',
      schema: z.object({ id: z.coerce.number().int() }),
    }),
    defineDataset({
      name: 'children',
      format: 'ndjson',
      table: 'js_child',
      schema: z.object({ id: z.number().int(), parent_id: z.number().int(), doc: z.unknown() }),
    }),
    defineDataset({
      name: 'items',
      format: 'ndjson',
      schema: z.object({ id: z.number().int(), group: z.number().int(), label: z.string(), doc: z.json() }),
      targets: [
        { table: 'js_group', columns: { id: 'group', label: 'label' }, key: ['id'] },
        { table: 'js_item', columns: { id: 'id', group_id: 'group', doc: 'doc' }, key: ['id'] },
      ],
    }),
    defineDataset({
      name: 'domain-docs',
      format: 'ndjson',
      table: 'rv_docs',
      schema: z.object({ id: z.number().int(), doc: z.unknown(), deep: z.unknown() }),
    }),
    defineDataset({
      name: 'domain-items',
      format: 'ndjson',
      schema: z.object({ id: z.number().int(), label: z.string(), doc: z.json() }),
      targets: [
        { table: 'rv_group', columns: { id: 'id', label: 'label' }, key: ['id'] },
        { table: 'rv_docs', columns: { id: 'id', doc: 'doc' }, key: ['id'] },
      ],
    }),
    defineDataset({
      name: 'tagged',
      format: 'ndjson',
      schema: z.object({ id: z.number().int(), tag: z.unknown() }),
      targets: [
        { table: 'js_tag', columns: { name: 'tag' }, key: ['name'] },
        {
          table: 'js_tagged',
          columns: { id: 'id' },
          references: { tag_ref: { table: 'js_tag', key: { name: 'tag' } } },
          key: ['id'],
        },
      ],
    }),
  ],
  migrations: { '20260101000000_json_strings': migration },
};

const TABLES = [
  'rv_docs',
  'rv_group',
  'js_item',
  'js_group',
  'js_child',
  'js_parent',
  'js_upserted',
  'js_docs',
];

let p: TestPipeline;
let db: Kysely<Database>;
beforeAll(async () => {
  p = await startTestPipeline(config, TABLES);
  db = p.deps.db;
});
afterAll(async () => {
  await p?.stop();
});

/** Strings that read as JSON text, and one COPY must escape once JSON-encoded (a quote, a backslash, a tab). */
const STRINGS = ['[1,2]', '42', 'ok', 'null', 'a "q" \\ b\tc'];
/** How jsonb and json give each back as text: the JSON string. */
const STORED = ['"[1,2]"', '"42"', '"ok"', '"null"', '"a \\"q\\" \\\\ b\\tc"'];

const ndjson = (rows: object[]) => `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;

/** The stored documents of `table` with ids in [from, to), as text. */
async function storedDocs(table: string, from: number, to: number, column = 'doc') {
  const rows = await sql<{ id: number; doc: string | null }>`
    select id, ${sql.ref(column)}::text as doc from ${sql.table(table)}
    where id >= ${from} and id < ${to} order by id`.execute(db);
  return rows.rows.map((r) => [r.id, r.doc]);
}

describe('an NDJSON string written whole to a json/jsonb column', () => {
  for (const [name, base] of [
    ['docs-unknown', 0],
    ['docs-json', 100],
    ['docs-string', 200],
  ] as const) {
    it(`${name}: stored as the JSON string, in jsonb and json alike`, async () => {
      const key = `incoming/${name}/strings.ndjson`;
      const rows = STRINGS.map((s, i) => ({ id: base + i, doc: s, j: s }));
      const { reports } = await p.load(key, ndjson(rows));
      expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 5, loaded: 5, rejected: 0 } });
      const expected = STORED.map((s, i) => [base + i, s]);
      expect(await storedDocs('js_docs', base, base + 10)).toEqual(expected);
      expect(await storedDocs('js_docs', base, base + 10, 'j')).toEqual(expected);
    });
  }

  it('docs-upsert (COPY into a staging table, then insert … on conflict): stored as the JSON string', async () => {
    const key = 'incoming/docs-upsert/strings.ndjson';
    const { reports } = await p.load(key, ndjson(STRINGS.map((s, i) => ({ id: i, doc: s }))));
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 5, loaded: 5, rejected: 0 } });
    expect(await storedDocs('js_upserted', 0, 10)).toEqual(STORED.map((s, i) => [i, s]));
  });

  it('a document that is not a string is stored as the document, beside strings', async () => {
    const key = 'incoming/docs-json/mixed.ndjson';
    const rows = [
      { id: 150, doc: { a: '[1]', b: [1, 'x'] } },
      { id: 151, doc: [1, 2] },
      { id: 152, doc: 42 },
      { id: 153, doc: '42' },
    ];
    const { reports } = await p.load(key, ndjson(rows));
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 4, loaded: 4, rejected: 0 } });
    expect(await storedDocs('js_docs', 150, 160)).toEqual([
      [150, '{"a": "[1]", "b": [1, "x"]}'],
      [151, '[1, 2]'],
      [152, '42'],
      [153, '"42"'],
    ]);
  });

  it('beside a row a CHECK refuses (the statement and row-by-row path): stored as the JSON string', async () => {
    const key = 'incoming/docs-unknown/refused.ndjson';
    const rows = [...STRINGS.map((s, i) => ({ id: 400 + i, doc: s, j: s })), { id: 1001, doc: 'ok' }];
    const { reports } = await p.load(key, ndjson(rows));
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 6, loaded: 5, rejected: 1 } });
    expect((await rejectsOfKey(db, key)).map((r) => r.line)).toEqual([6]);
    expect(await storedDocs('js_docs', 400, 410)).toEqual(STORED.map((s, i) => [400 + i, s]));
    expect(await storedDocs('js_docs', 400, 410, 'j')).toEqual(STORED.map((s, i) => [400 + i, s]));
  });

  it('a CSV cell for a json/jsonb column is JSON text, as before', async () => {
    const key = 'incoming/docs-csv/cells.csv';
    const { reports } = await p.load(
      key,
      'id,doc,j\n500,"[1,2]","[1,2]"\n501,42,42\n502,"""ok""","""ok"""\n',
    );
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 3, loaded: 3, rejected: 0 } });
    expect(await storedDocs('js_docs', 500, 510)).toEqual([
      [500, '[1, 2]'],
      [501, '42'],
      [502, '"ok"'],
    ]);
    expect(await storedDocs('js_docs', 500, 510, 'j')).toEqual([
      [500, '[1,2]'],
      [501, '42'],
      [502, '"ok"'],
    ]);
  });
});

describe('a Parquet string cell for a jsonb column', () => {
  it('is JSON text, as a CSV cell is', async () => {
    const file = parquetWriteBuffer({
      columnData: [
        { name: 'id', data: [600, 601, 602], type: 'INT32' },
        { name: 'doc', data: ['[1,2]', '42', '"ok"'], type: 'STRING' },
      ],
    });
    const { reports } = await p.load('incoming/docs-parquet/cells.parquet', new Uint8Array(file));
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 3, loaded: 3, rejected: 0 } });
    expect(await storedDocs('js_docs', 600, 610)).toEqual([
      [600, '[1, 2]'],
      [601, '42'],
      [602, '"ok"'],
    ]);
  });
});

describe('the records path: an NDJSON string stays a JSON string', () => {
  it('a table with a foreign key, beside a row a CHECK refuses; and a row that waits for its parent, loaded later', async () => {
    await p.load('incoming/parents/p1.csv', 'id\n1\n');
    const key = 'incoming/children/c.ndjson';
    const rows = [
      ...STRINGS.map((s, i) => ({ id: i, parent_id: 1, doc: s })),
      { id: 1001, parent_id: 1, doc: 'ok' },
      { id: 10, parent_id: 2, doc: '[1,2]' },
    ];
    const child = await p.load(key, ndjson(rows));
    expect(child.reports[0]).toMatchObject({
      state: 'waiting',
      rows: { read: 7, loaded: 5, waiting: 1, rejected: 1 },
    });
    expect((await rejectsOfKey(db, key)).map((r) => r.line)).toEqual([6]);
    expect(await storedDocs('js_child', 0, 10)).toEqual(STORED.map((s, i) => [i, s]));
    await p.load('incoming/parents/p2.csv', 'id\n2\n');
    const deadline = Date.now() + 30_000;
    const waiting = async () =>
      (await sql<{ n: number }>`select count(*)::int as n from dropload.orphan`.execute(db)).rows[0]?.n;
    while ((await waiting()) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await storedDocs('js_child', 10, 11)).toEqual([[10, '"[1,2]"']]);
  });

  it('a row parked before JSON strings (its string stored as read) is stored as the JSON string once its parent loads', async () => {
    const key = 'incoming/children/parked-before.ndjson';
    const rows = [
      { id: 20, parent_id: 3, doc: '[1,2]' },
      { id: 21, parent_id: 3, doc: 'ok' },
      { id: 22, parent_id: 3, doc: { a: 1 } },
    ];
    const child = await p.load(key, ndjson(rows));
    expect(child.reports[0]).toMatchObject({ state: 'waiting', rows: { read: 3, waiting: 3 } });
    // What older code parked: each value's text as read (a string as it is), no version marker.
    const parked = await sql<{ id: number; row: Record<string, unknown> }>`
      select id, row from dropload.orphan where raw like '%"parent_id":3%'`.execute(db);
    expect(parked.rows.length).toBe(3);
    for (const { id, row } of parked.rows) {
      const { v: _, ...old } = row;
      const stored = old.rows as Record<string, { values: Record<string, string | null> }[]>;
      for (const r of Object.values(stored).flat()) {
        const doc = r.values.doc as string;
        if (typeof JSON.parse(doc) === 'string') r.values.doc = JSON.parse(doc);
      }
      await sql`update dropload.orphan set row = ${JSON.stringify(old)}::jsonb where id = ${id}`.execute(db);
    }
    await p.load('incoming/parents/p3.csv', 'id\n3\n');
    const deadline = Date.now() + 30_000;
    const waiting = async () =>
      (await sql<{ n: number }>`select count(*)::int as n from dropload.orphan`.execute(db)).rows[0]?.n;
    while ((await waiting()) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await storedDocs('js_child', 20, 30)).toEqual([
      [20, '"[1,2]"'],
      [21, '"ok"'],
      [22, '{"a": 1}'],
    ]);
  });

  it('a multi-table dataset, beside a record a CHECK refuses', async () => {
    const key = 'incoming/items/i.ndjson';
    const rows = [
      ...STRINGS.map((s, i) => ({ id: i, group: i, label: s, doc: s })),
      { id: 1001, group: 9, label: 'x', doc: 'ok' },
    ];
    const { reports } = await p.load(key, ndjson(rows));
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 6, loaded: 5, rejected: 1 } });
    expect((await rejectsOfKey(db, key)).map((r) => r.line)).toEqual([6]);
    expect(await storedDocs('js_item', 0, 10)).toEqual(STORED.map((s, i) => [i, s]));
    expect(await storedDocs('js_group', 0, 10, 'label')).toEqual(STORED.map((s, i) => [i, s]));
  });

  it('a multi-table dataset, every record written first time', async () => {
    const key = 'incoming/items/first.ndjson';
    const rows = STRINGS.map((s, i) => ({ id: 20 + i, group: 20 + i, label: s, doc: s }));
    const { reports } = await p.load(key, ndjson(rows));
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 5, loaded: 5, rejected: 0 } });
    expect(await storedDocs('js_item', 20, 30)).toEqual(STORED.map((s, i) => [20 + i, s]));
  });
});

describe('a column of a domain over json/jsonb', () => {
  it('single table: an NDJSON string is stored as the JSON string, through a domain over a domain too', async () => {
    const rows = STRINGS.map((s, i) => ({ id: i, doc: s, deep: s }));
    const { reports } = await p.load('incoming/domain-docs/d.ndjson', ndjson(rows));
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 5, loaded: 5, rejected: 0 } });
    expect(await storedDocs('rv_docs', 0, 10)).toEqual(STORED.map((s, i) => [i, s]));
    expect(await storedDocs('rv_docs', 0, 10, 'deep')).toEqual(STORED.map((s, i) => [i, s]));
  });

  it('multi-table: an NDJSON string is stored as the JSON string in each table', async () => {
    const rows = STRINGS.map((s, i) => ({ id: 100 + i, label: s, doc: s }));
    const { reports } = await p.load('incoming/domain-items/i.ndjson', ndjson(rows));
    expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 5, loaded: 5, rejected: 0 } });
    expect(await storedDocs('rv_docs', 100, 110)).toEqual(STORED.map((s, i) => [100 + i, s]));
    expect(await storedDocs('rv_group', 100, 110, 'label')).toEqual(STORED.map((s, i) => [100 + i, s]));
  });
});

describe('a reference keyed by a jsonb column', () => {
  it('an NDJSON string as the key finds the parent row its record wrote, as its JSON string', async () => {
    const rows = [
      { id: 1, tag: 'ok' },
      { id: 2, tag: '[1,2]' },
      { id: 3, tag: { a: 1 } },
    ];
    const { reports } = await p.load('incoming/tagged/t.ndjson', ndjson(rows));
    expect(reports[0]).toMatchObject({
      state: 'loaded',
      rows: { read: 3, loaded: 3, waiting: 0, rejected: 0 },
    });
    const joined = await sql<{ id: number; name: string }>`
      select d.id, t.name::text as name from js_tagged d join js_tag t on t.id = d.tag_ref order by d.id`.execute(
      db,
    );
    expect(joined.rows.map((r) => [r.id, r.name])).toEqual([
      [1, '"ok"'],
      [2, '"[1,2]"'],
      [3, '{"a": 1}'],
    ]);
  });
});

describe('retry-rejects: a row loaded late is stored as its JSON string', () => {
  it('of a single table and of a multi-table dataset', async () => {
    await sql`alter table js_docs drop constraint js_docs_id_check`.execute(db);
    await sql`alter table js_item drop constraint js_item_id_check`.execute(db);
    const deps = { db, config: p.config, logger: p.deps.logger };
    const single = await retryRejects(deps, 'incoming/docs-unknown/refused.ndjson');
    expect(single).toMatchObject({ retried: 1, loaded: 1, stillRejected: 0 });
    const records = await retryRejects(deps, 'incoming/items/i.ndjson');
    expect(records).toMatchObject({ retried: 1, loaded: 1, stillRejected: 0 });
    expect(await storedDocs('js_docs', 1001, 1002)).toEqual([[1001, '"ok"']]);
    expect(await storedDocs('js_item', 1001, 1002)).toEqual([[1001, '"ok"']]);
    expect(await storedDocs('js_group', 9, 10, 'label')).toEqual([[9, '"x"']]);
  });
});
