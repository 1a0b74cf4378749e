import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileReport } from '../../cli/report.ts';
import { foreignKeys } from '../../shared/ledger/foreign-keys.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import fieldsConfig, { FIELD_TABLES } from '../support/fields.config.ts';
import { rejectsOfKey, startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/**
 * Issue 13's field helpers, loaded end to end (COPY and statements on Postgres, statements on PGlite):
 * exact decimals beyond 2^53, zoneless timestamps read in the dataset's `timeZone` whatever the
 * process's and the database session's own zone, and columns named by `columnNames: 'snake_case'`.
 */

/** Neither the loader's process nor its database sessions are in UTC or Berlin. */
const ELSEWHERE = 'America/New_York';

let p: TestPipeline;
let db: Kysely<Database>;
const processTz = process.env.TZ;

beforeAll(async () => {
  process.env.TZ = ELSEWHERE;
  const url = process.env.DATABASE_URL;
  // Every session of the pool starts in ELSEWHERE (a connection option on Postgres; PGlite has one
  // session, set below).
  const env = url ? { DATABASE_URL: `${url}?options=${encodeURIComponent(`-c TimeZone=${ELSEWHERE}`)}` } : {};
  p = await startTestPipeline(fieldsConfig, FIELD_TABLES, { env });
  db = p.deps.db;
  if (!url) await sql`set time zone ${sql.lit(ELSEWHERE)}`.execute(db);
});
afterAll(async () => {
  await p?.stop();
  process.env.TZ = processTz;
});

/** key, state, read, loaded, rejected */
const row = (r: FileReport) => [r.key, r.state, r.rows.read, r.rows.loaded, r.rows.rejected];

const paymentsCsv = [
  'id,amount,total,paid,booked,at,wall',
  '1,9999999999.99,12345678901234567.89,yes,1996-07-04,1996-07-04 00:00:00.000,1996-07-04 00:00:00.000',
  '2,-0.5,,F,2024-02-29,1996-01-04T00:00:00,1996-01-04T00:00:00',
  '3,12.30,1e3,1,2026-03-29,2026-03-29 02:30,2026-03-29 02:30',
  '4,7,,n,2026-10-25,2026-10-25 02:30:00,2026-10-25 02:30:00',
  '5,1.00,-0.01,TRUE,1996-07-04,1996-07-04T00:00:00Z,1996-07-04T00:00:00',
  '6,1.005,,t,1996-07-04,1996-07-04 00:00,1996-07-04 00:00',
  '7,12345678901,,t,1996-07-04,1996-07-04 00:00,1996-07-04 00:00',
  '8,1,,maybe,1996-07-04,1996-07-04 00:00,1996-07-04 00:00',
  '9,1,,t,2026-02-29,1996-07-04 00:00,1996-07-04 00:00',
  '10,1,,t,1996-07-04,1996-07-04 25:00,1996-07-04 00:00',
  '',
].join('\n');

/** Instants in UTC and wall-clock values as text, whatever the session's zone. */
async function payments(table: string) {
  const { rows } = await sql<Record<string, unknown>>`
    select id, amount::text, total::text, paid, booked::text,
      to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as at, wall::text
    from ${sql.table(table)} order by id`.execute(db);
  return rows.map((r) => Object.values(r));
}

const LOADED = [
  [
    1,
    '9999999999.99',
    '12345678901234567.89',
    true,
    '1996-07-04',
    '1996-07-03T22:00:00.000Z',
    '1996-07-04 00:00:00',
  ],
  [2, '-0.50', null, false, '2024-02-29', '1996-01-03T23:00:00.000Z', '1996-01-04 00:00:00'],
  // 02:30 does not exist in Berlin that night (02:00 → 03:00): read with the offset before, +01.
  [3, '12.30', '1000.00', true, '2026-03-29', '2026-03-29T01:30:00.000Z', '2026-03-29 02:30:00'],
  // 02:30 happens twice (03:00 → 02:00): read as standard time, +01, the later instant.
  [4, '7.00', null, false, '2026-10-25', '2026-10-25T01:30:00.000Z', '2026-10-25 02:30:00'],
  [5, '1.00', '-0.01', true, '1996-07-04', '1996-07-04T00:00:00.000Z', '1996-07-04 00:00:00'],
];

const REJECTS = [
  [6, 'amount', '3 decimals where numeric(12,2) keeps 2 (refused, not rounded) (got "1.005")'],
  [7, 'amount', '11 digits before the decimal point where numeric(12,2) allows 10 (got "12345678901")'],
  [8, 'paid', 'not a boolean (true/false, t/f, 1/0, yes/no, y/n) (got "maybe")'],
  [9, 'booked', 'no such date: February 29 in 2026 (got "2026-02-29")'],
  [10, 'at', 'no such time: hour 25 (got "1996-07-04 25:00")'],
];

async function rejects(key: string) {
  // Lines count the header: CSV line n + 1 holds id n.
  return (await rejectsOfKey(db, key)).map((r) => [r.line - 1, r.column, r.reason]);
}

describe('field helpers, loaded', () => {
  it('the loader runs away from UTC and Berlin, in process and in database', async () => {
    expect(new Date(2026, 0, 1).getTimezoneOffset()).toBe(300);
    const { rows } = await sql<{ tz: string }>`select current_setting('TimeZone') as tz`.execute(db);
    expect(rows).toEqual([{ tz: ELSEWHERE }]);
  });

  it('insert (COPY on Postgres): exact numerics, dates, booleans, Berlin wall-clock times as their instants', async () => {
    const run = await p.load('incoming/payments/p.csv', paymentsCsv);
    expect(run.reports.map(row)).toEqual([['incoming/payments/p.csv', 'loaded', 10, 5, 5]]);
    expect(await payments('flds.payments')).toEqual(LOADED);
    expect(await rejects('incoming/payments/p.csv')).toEqual(REJECTS);
  });

  it('upsert (statements): the same file loads the same', async () => {
    const run = await p.load('incoming/payments-upserted/p.csv', paymentsCsv);
    expect(run.reports.map(row)).toEqual([['incoming/payments-upserted/p.csv', 'loaded', 10, 5, 5]]);
    expect(await payments('flds.payments_upserted')).toEqual(LOADED);
    expect(await rejects('incoming/payments-upserted/p.csv')).toEqual(REJECTS);
  });
});

const nwCsv = [
  'OrderID,customerID,OrderDate,shipVia,HTTPStatus,unit price,Product-Name',
  '10248,VINET,1996-07-04,3,200,14.00,Queso Cabrales',
  '10249,TOMSP,1996-07-05,1,404,9.80,Tofu',
  '10248,VINET,1996-07-04,2,200,14.00,Queso Cabrales',
  '',
].join('\n');

async function nwOrders() {
  const { rows } = await sql<Record<string, unknown>>`
    select order_id, customer_id, order_date::text, ship_via, http_status, unit_price::text, product_name
    from flds.nw_orders order by order_id`.execute(db);
  return rows.map((r) => Object.values(r));
}

describe("columnNames: 'snake_case'", () => {
  it('writes each field to its snake_case column, upserting on the key field', async () => {
    const run = await p.load('incoming/nw-orders/o.csv', nwCsv);
    expect(run.reports.map(row)).toEqual([['incoming/nw-orders/o.csv', 'loaded', 3, 3, 0]]);
    expect(await nwOrders()).toEqual([
      [10248, 'VINET', '1996-07-04', 2, 200, '14.00', 'Queso Cabrales'],
      [10249, 'TOMSP', '1996-07-05', 1, 404, '9.80', 'Tofu'],
    ]);
  });

  it('checks.unique names a field and checks its snake_case column', async () => {
    const csv = `${nwCsv.split('\n')[0]}\n10250,HANAR,1996-07-08,2,200,7.70,Tofu\n10251,HANAR,1996-07-08,1,200,8.00,Tofu\n`;
    const run = await p.load('incoming/nw-orders-checked/o.csv', csv);
    expect(run.reports.map((r) => [r.state, r.rows.read, r.rows.inserted, r.rows.rejected])).toEqual([
      ['failed', 2, 0, 0],
    ]);
    expect(run.reports[0]?.error).toBe(
      'column "customerID" is not unique within the file ("HANAR" ×2); nothing was published',
    );
    expect((await nwOrders()).map((r) => r[0])).toEqual([10248, 10249]);
  });
});

async function stores() {
  const { rows } = await sql<Record<string, unknown>>`
    select store_id, country, zone, to_char(opened_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"') as at
    from flds.stores order by store_id`.execute(db);
  return rows.map((r) => Object.values(r));
}

async function waitingStores() {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from dropload.orphan`.execute(db);
  return rows[0]?.n;
}

describe('a composite foreign key to a schema-qualified table, from the catalog', () => {
  it('is read whole', async () => {
    expect(await foreignKeys(db, 'flds.stores')).toEqual([
      { columns: ['country', 'zone'], parent: 'flds.zones', parentColumns: ['country', 'zone'], self: false },
    ]);
  });

  it('a store waits for its (country, zone), both columns, and lands in Berlin time', async () => {
    await p.load('incoming/zones/z1.csv', 'country,zone\nDE,BY\n');
    const csv =
      'store_id,country,zone,opened_at\n1,DE,BY,2026-07-01 09:00\n2,FR,BY,2026-07-01 09:00\n3,FR,IDF,2026-01-01 09:00\n';
    const first = await p.load('incoming/stores/s.csv', csv);
    // (FR, BY): the country of one zone and the zone of another is no parent.
    expect(first.reports.map((r) => [r.state, r.rows.read, r.rows.loaded, r.rows.waiting])).toEqual([
      ['waiting', 3, 1, 2],
    ]);
    expect(await stores()).toEqual([[1, 'DE', 'BY', '2026-07-01T07:00Z']]);
    await p.load('incoming/zones/z2.csv', 'country,zone\nFR,IDF\n');
    const deadline = Date.now() + 30_000;
    while ((await waitingStores()) !== 1 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(await waitingStores()).toBe(1);
    // Written by the retry, in a later transaction: still read in Berlin (winter, +01).
    expect(await stores()).toEqual([
      [1, 'DE', 'BY', '2026-07-01T07:00Z'],
      [3, 'FR', 'IDF', '2026-01-01T08:00Z'],
    ]);
  });
});
