// The config of test/integration/fields.test.ts (issue 13): exact decimals, dates, booleans and
// zoneless timestamps read in the dataset's time zone, written by COPY (insert) and by statements
// (upsert); and a dataset whose columns are its fields' names in snake_case.
import { boolean, date, defineConfig, defineDataset, integer, localTimestamp, numeric } from 'dropload';
import { type Kysely, sql } from 'kysely';
import { z } from 'zod';

export const FIELD_TABLES = [
  'flds.stores',
  'flds.zones',
  'flds.payments',
  'flds.payments_upserted',
  'flds.nw_orders',
];

const payment = z.object({
  id: integer(),
  amount: numeric({ precision: 12, scale: 2 }),
  total: numeric({ precision: 20, scale: 2 }).optional(),
  paid: boolean(),
  booked: date(),
  at: localTimestamp(),
  wall: localTimestamp(),
});

const nwOrder = z.object({
  OrderID: integer(),
  customerID: z.string().min(1),
  OrderDate: date(),
  shipVia: integer(),
  HTTPStatus: integer(),
  'unit price': numeric({ precision: 10, scale: 2 }),
  'Product-Name': z.string(),
});

export default defineConfig({
  datasets: [
    defineDataset({
      name: 'payments',
      format: 'csv',
      table: 'flds.payments',
      timeZone: 'Europe/Berlin',
      schema: payment,
    }),
    defineDataset({
      name: 'payments-upserted',
      format: 'csv',
      table: 'flds.payments_upserted',
      mode: 'upsert',
      key: ['id'],
      timeZone: 'Europe/Berlin',
      schema: payment,
    }),
    defineDataset({
      name: 'nw-orders',
      format: 'csv',
      table: 'flds.nw_orders',
      columnNames: 'snake_case',
      mode: 'upsert',
      key: ['OrderID'],
      schema: nwOrder,
    }),
    defineDataset({
      name: 'nw-orders-checked',
      format: 'csv',
      table: 'flds.nw_orders',
      columnNames: 'snake_case',
      publish: 'file',
      checks: { unique: ['customerID'] },
      schema: nwOrder,
    }),
    // A composite foreign key to a schema-qualified table, read from the catalog (no `references`):
    // a store waits for its (country, zone), and is written in Berlin time when it lands.
    defineDataset({
      name: 'zones',
      format: 'csv',
      table: 'flds.zones',
      mode: 'upsert',
      key: ['country', 'zone'],
      schema: z.object({ country: z.string(), zone: z.string() }),
    }),
    defineDataset({
      name: 'stores',
      format: 'csv',
      table: 'flds.stores',
      timeZone: 'Europe/Berlin',
      schema: z.object({
        store_id: integer(),
        country: z.string(),
        zone: z.string(),
        opened_at: localTimestamp(),
      }),
    }),
  ],
  migrations: {
    '20260101000000_fields': {
      async up(db: Kysely<unknown>) {
        await sql`create schema if not exists flds`.execute(db);
        for (const table of ['payments', 'payments_upserted']) {
          await sql`create table ${sql.table(`flds.${table}`)} (id integer primary key,
            amount numeric(12,2) not null, total numeric(20,2), paid boolean not null, booked date not null,
            at timestamptz not null, wall timestamp not null)`.execute(db);
        }
        await sql`create table flds.nw_orders (order_id integer primary key, customer_id text not null,
          order_date date not null, ship_via integer not null, http_status integer not null,
          unit_price numeric(10,2) not null, product_name text not null)`.execute(db);
        await sql`create table flds.zones (country text, zone text, primary key (country, zone))`.execute(db);
        await sql`create table flds.stores (store_id integer primary key, country text not null,
          zone text not null, opened_at timestamptz not null,
          foreign key (country, zone) references flds.zones (country, zone))`.execute(db);
      },
    },
  },
});
