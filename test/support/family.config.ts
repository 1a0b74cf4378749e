// The config of test/integration/family-orders.test.ts: an eight-table family, one file per table, each
// a plain single-table dataset (`table:`) whose foreign keys the config never names: the loader reads
// them from the catalog and waits for the parents. regions → territories (1:N); employees → employees
// (`reports_to`, a self-reference); employee_territories (M:N between employees and territories);
// customers → orders → order_lines ← products (a three-level chain). `order-lines-strict` loads the
// same table but gives up waiting after two seconds.
import { defineConfig, defineDataset, integer } from 'dropload';
import { type Kysely, sql } from 'kysely';
import { z } from 'zod';

/** Children first, as resetDatabase drops them. */
export const FAMILY_TABLES = [
  'fam.order_lines',
  'fam.orders',
  'fam.products',
  'fam.customers',
  'fam.employee_territories',
  'fam.employees',
  'fam.territories',
  'fam.regions',
];

const orderLineSchema = z.object({ order_id: integer(), product_id: integer(), quantity: integer() });

export default defineConfig({
  datasets: [
    defineDataset({
      name: 'regions',
      format: 'csv',
      table: 'fam.regions',
      mode: 'upsert',
      key: ['region_id'],
      schema: z.object({ region_id: integer(), name: z.string() }),
    }),
    defineDataset({
      name: 'territories',
      format: 'csv',
      table: 'fam.territories',
      mode: 'upsert',
      key: ['territory_id'],
      schema: z.object({ territory_id: z.string().min(1), name: z.string(), region_id: integer() }),
    }),
    defineDataset({
      name: 'employees',
      format: 'csv',
      table: 'fam.employees',
      mode: 'upsert',
      key: ['employee_id'],
      schema: z.object({ employee_id: integer(), name: z.string(), reports_to: integer().optional() }),
    }),
    defineDataset({
      name: 'employee-territories',
      format: 'csv',
      table: 'fam.employee_territories',
      mode: 'upsert',
      key: ['employee_id', 'territory_id'],
      schema: z.object({ employee_id: integer(), territory_id: z.string().min(1) }),
    }),
    defineDataset({
      name: 'customers',
      format: 'csv',
      table: 'fam.customers',
      mode: 'upsert',
      key: ['customer_id'],
      schema: z.object({ customer_id: z.string().min(1), name: z.string() }),
    }),
    defineDataset({
      name: 'products',
      format: 'csv',
      table: 'fam.products',
      mode: 'upsert',
      key: ['product_id'],
      schema: z.object({ product_id: integer(), name: z.string() }),
    }),
    defineDataset({
      name: 'orders',
      format: 'csv',
      table: 'fam.orders',
      mode: 'upsert',
      key: ['order_id'],
      schema: z.object({ order_id: integer(), customer_id: z.string().min(1) }),
    }),
    defineDataset({
      name: 'order-lines',
      format: 'csv',
      table: 'fam.order_lines',
      mode: 'upsert',
      key: ['order_id', 'product_id'],
      schema: orderLineSchema,
    }),
    defineDataset({
      name: 'order-lines-strict',
      format: 'csv',
      table: 'fam.order_lines',
      mode: 'upsert',
      key: ['order_id', 'product_id'],
      schema: orderLineSchema,
      orphanWaitSeconds: 2,
    }),
  ],
  migrations: {
    '20260101000000_family': {
      async up(db: Kysely<unknown>) {
        await sql`create schema if not exists fam`.execute(db);
        await sql`create table fam.regions (region_id integer primary key, name text not null)`.execute(db);
        await sql`create table fam.territories (territory_id text primary key, name text not null,
          region_id integer not null references fam.regions (region_id))`.execute(db);
        await sql`create table fam.employees (employee_id integer primary key, name text not null,
          reports_to integer references fam.employees (employee_id))`.execute(db);
        await sql`create table fam.employee_territories (
          employee_id integer not null references fam.employees (employee_id),
          territory_id text not null references fam.territories (territory_id),
          primary key (employee_id, territory_id))`.execute(db);
        await sql`create table fam.customers (customer_id text primary key, name text not null)`.execute(db);
        await sql`create table fam.products (product_id integer primary key, name text not null)`.execute(db);
        await sql`create table fam.orders (order_id integer primary key,
          customer_id text not null references fam.customers (customer_id))`.execute(db);
        await sql`create table fam.order_lines (
          order_id integer not null references fam.orders (order_id),
          product_id integer not null references fam.products (product_id),
          quantity integer not null, primary key (order_id, product_id))`.execute(db);
      },
    },
  },
});
