import { defineConfig, defineDataset, type TargetDefinition } from 'dropload';
import { type Kysely, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { FileReport } from '../../cli/report.ts';
import { rejectsOf } from '../../shared/ledger/ledger.ts';
import type { Database, FileRow } from '../../shared/ledger/schema.ts';
import { retryRejects } from '../../shared/ops/retry-rejects.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/**
 * Issue 16, items 1 and 2: a record (one NDJSON document, writing four tables) is the unit of every
 * write. A document the database refuses writes none of its rows, whatever the order of the lines or
 * chunks that made it wait first; a document whose wait expires writes none either. Runs on Postgres
 * (DATABASE_URL) and on the embedded PGlite.
 */

const TABLES = ['rec.lines', 'rec.orders', 'rec.customers', 'rec.staff'];

const schema = z.object({
  order_no: z.number().int(),
  customer: z.string(),
  manager: z.string(),
  staff: z.array(z.object({ name: z.string() })).default([]),
  // The schema allows any quantity; the table's CHECK refuses one below 1.
  lines: z.array(z.object({ line_no: z.number().int(), quantity: z.number().int() })),
  // Padding: a document long enough to fill a chunk of its own.
  pad: z.string().optional(),
});

const targets: TargetDefinition[] = [
  {
    table: 'rec.orders',
    columns: { order_no: 'order_no' },
    references: {
      customer_ref: { table: 'rec.customers', key: { email: 'customer' } },
      manager_ref: { table: 'rec.staff', key: { name: 'manager' } },
    },
    key: ['order_no'],
  },
  { table: 'rec.staff', each: 'staff[]', columns: { name: 'name' }, key: ['name'] },
  { table: 'rec.customers', columns: { email: 'customer' }, key: ['email'] },
  {
    table: 'rec.lines',
    each: 'lines[]',
    columns: { line_no: 'line_no', quantity: 'quantity' },
    references: { order_ref: { table: 'rec.orders', key: { order_no: '/order_no' } } },
    key: ['order_ref', 'line_no'],
  },
];

const config = defineConfig({
  datasets: [
    defineDataset({
      name: 'orders',
      prefix: 'incoming/orders/',
      format: 'ndjson',
      chunkBytes: 64 * 1024,
      schema,
      targets,
    }),
    defineDataset({
      name: 'orders-expiring',
      prefix: 'incoming/orders-expiring/',
      format: 'ndjson',
      schema,
      targets,
      orphanWaitSeconds: 2,
    }),
  ],
  migrations: {
    '20260301000000_rec': {
      async up(db: Kysely<unknown>) {
        await sql`create schema if not exists rec`.execute(db);
        await sql`create table rec.staff (id bigint generated always as identity primary key,
          name text not null unique)`.execute(db);
        await sql`create table rec.customers (id bigint generated always as identity primary key,
          email text not null unique)`.execute(db);
        await sql`create table rec.orders (id bigint generated always as identity primary key,
          order_no integer not null unique,
          customer_ref bigint not null references rec.customers (id),
          manager_ref bigint not null references rec.staff (id))`.execute(db);
        await sql`create table rec.lines (id bigint generated always as identity primary key,
          order_ref bigint not null references rec.orders (id), line_no integer not null,
          quantity integer not null check (quantity > 0), unique (order_ref, line_no))`.execute(db);
      },
    },
  },
});

let p: TestPipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

/** Order 10259: its line 2 has quantity −5, and its manager comes with the other document. */
const badOrder = (pad?: string) =>
  JSON.stringify({
    order_no: 10259,
    customer: 'vins@example.com',
    manager: 'Buchanan',
    lines: [
      { line_no: 1, quantity: 12 },
      { line_no: 2, quantity: -5 },
    ],
    ...(pad ? { pad } : {}),
  });
/** Order 10260, which brings the manager order 10259 waits for. */
const managersOrder = JSON.stringify({
  order_no: 10260,
  customer: 'ottik@example.com',
  manager: 'Buchanan',
  staff: [{ name: 'Buchanan' }],
  lines: [{ line_no: 1, quantity: 16 }],
});

/** Order 10261, whose manager no file brings. */
const nobodysOrder = JSON.stringify({
  order_no: 10261,
  customer: 'hanar@example.com',
  manager: 'Nobody',
  lines: [{ line_no: 1, quantity: 3 }],
});

/** Every target table's rows, by natural key. */
async function tables(db: Kysely<Database>) {
  const q = async (query: ReturnType<typeof sql<Record<string, unknown>>>) => (await query.execute(db)).rows;
  return {
    staff: await q(sql`select name from rec.staff order by name`),
    customers: await q(sql`select email from rec.customers order by email`),
    orders: await q(sql`select o.order_no, c.email, s.name as manager from rec.orders o
      join rec.customers c on c.id = o.customer_ref join rec.staff s on s.id = o.manager_ref
      order by o.order_no`),
    lines: await q(sql`select o.order_no, l.line_no, l.quantity from rec.lines l
      join rec.orders o on o.id = l.order_ref order by o.order_no, l.line_no`),
  };
}

async function waitingRows(db: Kysely<Database>) {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from dropload.orphan`.execute(db);
  return rows[0]?.n;
}

/** state, read, loaded, inserted, updated, unchanged, rejected, records waiting: as `run` reports them. */
const counts = (r: FileReport | undefined) => [
  r?.state,
  r?.rows.read,
  r?.rows.loaded,
  r?.rows.inserted,
  r?.rows.updated,
  r?.rows.unchanged,
  r?.rows.rejected,
  r?.waiting?.lines ?? 0,
];

const CHECK_REFUSED =
  /^database refused the row: new row for relation "lines" violates check constraint "lines_quantity_check"/;

const ONLY_THE_MANAGERS_ORDER = {
  staff: [{ name: 'Buchanan' }],
  customers: [{ email: 'ottik@example.com' }],
  orders: [{ order_no: 10260, email: 'ottik@example.com', manager: 'Buchanan' }],
  lines: [{ order_no: 10260, line_no: 1, quantity: 16 }],
};

describe('a document the database refuses writes none of its rows (item 1)', () => {
  const cases = [
    {
      name: 'bad document first, one chunk',
      lines: () => [badOrder(), managersOrder],
      badLine: 1,
      chunks: 1,
    },
    {
      name: 'bad document second, one chunk',
      lines: () => [managersOrder, badOrder()],
      badLine: 2,
      chunks: 1,
    },
    {
      // The bad document fills chunk 0: it waits for the manager that chunk 1 brings, then is retried.
      name: 'bad document first, its manager in the next chunk',
      lines: () => [badOrder('x'.repeat(70 * 1024)), managersOrder],
      badLine: 1,
      chunks: 2,
    },
    {
      name: 'bad document second, in the next chunk',
      lines: () => [`${managersOrder.slice(0, -1)},"pad":"${'x'.repeat(70 * 1024)}"}`, badOrder()],
      badLine: 2,
      chunks: 2,
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      p = await startTestPipeline(config, TABLES, { workers: 1 });
      const key = 'incoming/orders/orders.ndjson';
      const run = await p.load(key, `${c.lines().join('\n')}\n`);
      expect(run.timedOut).toBe(false);
      const report = run.reports[0];
      expect(report?.chunks).toEqual({ done: c.chunks, total: c.chunks });
      expect(counts(report)).toEqual(['loaded', 2, 1, 1, 0, 0, 1, 0]);
      expect(await tables(p.deps.db)).toEqual(ONLY_THE_MANAGERS_ORDER);
      expect(await waitingRows(p.deps.db)).toBe(0);
      const file = (await p.deps.db
        .selectFrom('dropload.file')
        .selectAll()
        .where('key', '=', key)
        .executeTakeFirstOrThrow()) as FileRow;
      const rejects = await rejectsOf(p.deps.db, file.id);
      // The table the database refused a row of (a CHECK names no column).
      expect(rejects.map((r) => [r.line, r.column, r.kind])).toEqual([[c.badLine, 'rec.lines', 'refused']]);
      expect(rejects[0]?.reason).toMatch(CHECK_REFUSED);
      expect(rejects[0]?.raw).toBe(c.lines()[c.badLine - 1]);
    });
  }
});

describe('a document whose wait expires writes none of its rows (item 2)', () => {
  it('its customer is not written, and the file counts it rejected', async () => {
    p = await startTestPipeline(config, TABLES, {
      waitRetry: { lostAfterSeconds: 1, runningForSeconds: 30 },
      sweepEveryMs: 200,
    });
    const { db } = p.deps;
    const key = 'incoming/orders-expiring/orders.ndjson';
    // Order 10261 waits for a manager no file brings; order 10260 loads.
    const waiting = nobodysOrder;
    const run = await p.load(key, `${managersOrder}\n${waiting}\n`);
    expect(counts(run.reports[0])).toEqual(['waiting', 2, 1, 1, 0, 0, 0, 1]);
    // Waiting: nothing of order 10261 is written yet.
    expect(await tables(db)).toEqual(ONLY_THE_MANAGERS_ORDER);
    const file = await loadedFile(db, key);
    expect([file.rows_read, file.rows_inserted, file.rows_updated, file.rows_rejected]).toEqual([2, 1, 0, 1]);
    const rejects = await rejectsOf(db, file.id);
    expect(rejects.map((r) => [r.line, r.column, r.kind, r.reason, r.raw])).toEqual([
      [2, 'manager_ref', 'orphan', 'orphan: no rec.staff row with name = Nobody (waited 2s)', waiting],
    ]);
    expect(await tables(db)).toEqual(ONLY_THE_MANAGERS_ORDER);
    expect(await waitingRows(db)).toBe(0);
  });

  it('retry-rejects replays the record whole: nothing while its manager is missing, all of it once there', async () => {
    p = await startTestPipeline(config, TABLES, {
      waitRetry: { lostAfterSeconds: 1, runningForSeconds: 30 },
      sweepEveryMs: 200,
    });
    const { db } = p.deps;
    const key = 'incoming/orders-expiring/replayed.ndjson';
    await p.load(key, `${managersOrder}\n${nobodysOrder}\n`);
    await loadedFile(db, key);
    const deps = { db, config: p.config, logger: p.deps.logger };
    const still = await retryRejects(deps, key);
    expect([still.retried, still.loaded, still.inserted, still.stillRejected]).toEqual([1, 0, 0, 1]);
    expect(await tables(db)).toEqual(ONLY_THE_MANAGERS_ORDER);
    await sql`insert into rec.staff (name) values ('Nobody')`.execute(db);
    const loaded = await retryRejects(deps, key);
    expect([loaded.retried, loaded.loaded, loaded.inserted, loaded.stillRejected]).toEqual([1, 1, 1, 0]);
    expect(await tables(db)).toEqual({
      staff: [{ name: 'Buchanan' }, { name: 'Nobody' }],
      customers: [{ email: 'hanar@example.com' }, { email: 'ottik@example.com' }],
      orders: [
        ...ONLY_THE_MANAGERS_ORDER.orders,
        { order_no: 10261, email: 'hanar@example.com', manager: 'Nobody' },
      ],
      lines: [...ONLY_THE_MANAGERS_ORDER.lines, { order_no: 10261, line_no: 1, quantity: 3 }],
    });
    const file = await loadedFile(db, key);
    expect([file.rows_read, file.rows_inserted, file.rows_updated, file.rows_rejected]).toEqual([2, 2, 0, 0]);
  });
});

/** The file once its wait has expired (the retry chain or the sweep turns it into a reject). */
async function loadedFile(db: Kysely<Database>, key: string): Promise<FileRow> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const file = await db.selectFrom('dropload.file').selectAll().where('key', '=', key).executeTakeFirst();
    if (file?.state === 'loaded') return file;
    if (Date.now() > deadline) throw new Error(`${key} is still ${file?.state}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a record left out can leave out another', () => {
  it('a document needing staff that a waiting document carries waits too; both load when the first one can', async () => {
    p = await startTestPipeline(config, TABLES);
    const { db } = p.deps;
    const key = 'incoming/orders/chained.ndjson';
    // Order 10263 brings Fuller but waits for Nobody; order 10264 is managed by Fuller.
    const carrier = JSON.stringify({
      order_no: 10263,
      customer: 'carrier@example.com',
      manager: 'Nobody',
      staff: [{ name: 'Fuller' }],
      lines: [{ line_no: 1, quantity: 1 }],
    });
    const dependent = JSON.stringify({
      order_no: 10264,
      customer: 'dependent@example.com',
      manager: 'Fuller',
      lines: [{ line_no: 1, quantity: 2 }],
    });
    const run = await p.load(key, `${carrier}\n${dependent}\n`);
    expect(counts(run.reports[0])).toEqual(['waiting', 2, 0, 0, 0, 0, 0, 2]);
    expect(await tables(db)).toEqual({ staff: [], customers: [], orders: [], lines: [] });
    const { rows: parked } = await sql<{ line: number; missing: string }>`select line::int as line, missing
      from dropload.orphan order by line`.execute(db);
    expect(parked).toEqual([
      { line: 1, missing: 'rec.staff row with name = Nobody' },
      { line: 2, missing: 'rec.staff row with name = Fuller' },
    ]);
    // Nobody lands (with an order of its own): both documents load, whole.
    await p.load(
      'incoming/orders/nobody.ndjson',
      `${nobodysOrder.slice(0, -1)},"staff":[{"name":"Nobody"}]}\n`,
    );
    const file = await loadedFile(db, key);
    expect([file.rows_read, file.rows_inserted, file.rows_updated, file.rows_rejected]).toEqual([2, 2, 0, 0]);
    expect(await tables(db)).toEqual({
      staff: [{ name: 'Fuller' }, { name: 'Nobody' }],
      customers: [
        { email: 'carrier@example.com' },
        { email: 'dependent@example.com' },
        { email: 'hanar@example.com' },
      ],
      orders: [
        { order_no: 10261, email: 'hanar@example.com', manager: 'Nobody' },
        { order_no: 10263, email: 'carrier@example.com', manager: 'Nobody' },
        { order_no: 10264, email: 'dependent@example.com', manager: 'Fuller' },
      ],
      lines: [
        { order_no: 10261, line_no: 1, quantity: 3 },
        { order_no: 10263, line_no: 1, quantity: 1 },
        { order_no: 10264, line_no: 1, quantity: 2 },
      ],
    });
    expect(await waitingRows(db)).toBe(0);
  });
});

describe('rows parked one by one, before records were', () => {
  it('are still retried, each as a record of its one row', async () => {
    p = await startTestPipeline(config, TABLES);
    const { db } = p.deps;
    const key = 'incoming/orders/legacy.ndjson';
    const run = await p.load(key, `${nobodysOrder}\n`);
    expect(counts(run.reports[0])).toEqual(['waiting', 1, 0, 0, 0, 0, 0, 1]);
    // What the writer parked before: the customer written, its order and line parked as two rows.
    await sql`insert into rec.customers (email) values ('hanar@example.com')`.execute(db);
    await sql`insert into dropload.orphan (file_id, chunk_idx, line, target, row, missing, parent_table,
        parent_key, raw, expires_at)
      select file_id, chunk_idx, line, 'rec.lines',
        '{"values":{"line_no":"1","quantity":"3"},"refs":{"order_ref":{"order_no":"10261"}}}',
        'rec.orders row with order_no = 10261', 'rec.orders', 'order_no', raw, expires_at
      from dropload.orphan`.execute(db);
    await sql`update dropload.orphan set target = 'rec.orders',
        row = '{"values":{"order_no":"10261"},"refs":{"customer_ref":{"email":"hanar@example.com"},"manager_ref":{"name":"Nobody"}}}'
      where target <> 'rec.lines'`.execute(db);
    // Nobody comes in behind dropload's back: the file's retry chain, backing off, finds it.
    await sql`insert into rec.staff (name) values ('Nobody')`.execute(db);
    const file = await loadedFile(db, key);
    expect([file.rows_read, file.rows_inserted, file.rows_rejected]).toEqual([1, 1, 0]);
    expect(await tables(db)).toEqual({
      staff: [{ name: 'Nobody' }],
      customers: [{ email: 'hanar@example.com' }],
      orders: [{ order_no: 10261, email: 'hanar@example.com', manager: 'Nobody' }],
      lines: [{ order_no: 10261, line_no: 1, quantity: 3 }],
    });
    expect(await waitingRows(db)).toBe(0);
  });
});

describe('a reject in a nested document says where (issue 16 item 3)', () => {
  it('names the element and field, and quotes that value alone', async () => {
    p = await startTestPipeline(config, TABLES, { workers: 1 });
    const key = 'incoming/orders/paths.ndjson';
    const missing = JSON.stringify({
      order_no: 10270,
      customer: 'a@example.com',
      manager: 'Buchanan',
      lines: [{ line_no: 1, quantity: 1 }, { line_no: 2 }],
    });
    const wrong = JSON.stringify({
      order_no: 10271,
      customer: 'b@example.com',
      manager: 'Buchanan',
      lines: [{ line_no: 1, quantity: 'a dozen' }],
    });
    const run = await p.load(key, `${managersOrder}\n${missing}\n${wrong}\n`);
    expect(run.reports[0]?.state).toBe('loaded');
    const rejects = await rejectsOf(p.deps.db, (await loadedFile(p.deps.db, key)).id);
    expect(rejects.map((r) => [r.line, r.column, r.kind, r.reason])).toEqual([
      [2, 'lines[1].quantity', 'invalid', 'a value is required (expected number) (got no value)'],
      [3, 'lines[0].quantity', 'invalid', 'not a valid number (got "a dozen")'],
    ]);
    expect(await tables(p.deps.db)).toEqual(ONLY_THE_MANAGERS_ORDER);
  });
});

describe('duplicate keys within one record (issue 16 item 7)', () => {
  it('notes them on the file (how many, the first), and writes what it wrote before: the last element', async () => {
    p = await startTestPipeline(config, TABLES, { workers: 1 });
    const key = 'incoming/orders/duplicates.ndjson';
    const twice = (order_no: number, customer: string) =>
      JSON.stringify({
        order_no,
        customer,
        manager: 'Buchanan',
        lines: [
          { line_no: 1, quantity: 4 },
          { line_no: 2, quantity: 1 },
          { line_no: 1, quantity: 9 },
        ],
      });
    // Staff named twice with nothing different is not a duplicate that loses anything.
    const sameStaff = JSON.stringify({
      order_no: 10282,
      customer: 'c@example.com',
      manager: 'Buchanan',
      staff: [{ name: 'Buchanan' }, { name: 'Buchanan' }],
      lines: [{ line_no: 1, quantity: 2 }],
    });
    const run = await p.load(
      key,
      `${managersOrder}\n${twice(10280, 'a@example.com')}\n${sameStaff}\n${twice(10281, 'b@example.com')}\n`,
    );
    expect(counts(run.reports[0])).toEqual(['loaded', 4, 4, 4, 0, 0, 0, 0]);
    expect(run.reports[0]?.note).toBe(
      '2 records had duplicate keys, each written as its last element (first: line 2, table rec.lines, key order_ref = 10280, line_no = 1)',
    );
    expect((await tables(p.deps.db)).lines).toEqual([
      { order_no: 10260, line_no: 1, quantity: 16 },
      { order_no: 10280, line_no: 1, quantity: 9 },
      { order_no: 10280, line_no: 2, quantity: 1 },
      { order_no: 10281, line_no: 1, quantity: 9 },
      { order_no: 10281, line_no: 2, quantity: 1 },
      { order_no: 10282, line_no: 1, quantity: 2 },
    ]);
  });

  it('sums the count over the chunks and keeps the first example', async () => {
    p = await startTestPipeline(config, TABLES, { workers: 2 });
    const key = 'incoming/orders/duplicates-in-chunks.ndjson';
    // Each document fills a 64 KiB chunk of its own.
    const twice = (order_no: number) =>
      JSON.stringify({
        order_no,
        customer: 'a@example.com',
        manager: 'Buchanan',
        staff: [{ name: 'Buchanan' }],
        lines: [
          { line_no: 1, quantity: 4 },
          { line_no: 1, quantity: 9 },
        ],
        pad: 'x'.repeat(70 * 1024),
      });
    const run = await p.load(key, `${twice(10290)}\n${twice(10291)}\n${twice(10292)}\n`);
    expect(run.reports[0]?.chunks).toEqual({ done: 3, total: 3 });
    expect(run.reports[0]?.note).toMatch(
      /^3 records had duplicate keys, each written as its last element \(first: line [123], table rec\.lines, key order_ref = 1029[012], line_no = 1\)$/,
    );
  });
});
