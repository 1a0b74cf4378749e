import { type Kysely, sql } from 'kysely';

// Tables for the bundled sample datasets. CHECK constraints mirror the zod schemas in dropload.config.ts,
// so the database refuses what validation would (a second line of defence for hand-written SQL).
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('customers')
    .addColumn('customer_id', 'bigint', (c) => c.primaryKey())
    .addColumn('email', 'text', (c) => c.notNull().unique())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('country', 'char(2)', (c) => c.notNull())
    .addColumn('signed_up', 'date', (c) => c.notNull())
    .addColumn('vip', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();

  await db.schema
    .createTable('orders')
    .addColumn('order_id', 'bigint', (c) => c.primaryKey())
    .addColumn('customer_id', 'bigint', (c) => c.notNull())
    .addColumn('ordered_at', 'timestamptz', (c) => c.notNull())
    .addColumn('amount', 'numeric(12, 2)', (c) => c.notNull().check(sql`amount >= 0`))
    .addColumn('currency', 'char(3)', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('placed', 'paid', 'shipped', 'cancelled')`),
    )
    .execute();
  await db.schema.createIndex('orders_customer_idx').on('orders').column('customer_id').execute();

  await db.schema
    .createTable('events')
    .addColumn('event_id', 'uuid', (c) => c.primaryKey())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('occurred_at', 'timestamptz', (c) => c.notNull())
    .addColumn('user_id', 'bigint')
    .addColumn('payload', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('events').ifExists().execute();
  await db.schema.dropTable('orders').ifExists().execute();
  await db.schema.dropTable('customers').ifExists().execute();
}
