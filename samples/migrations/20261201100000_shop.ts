import { type Kysely, sql } from 'kysely';

// The "shop" sample: a normalized schema loaded from flat CSVs (one per table) or from one nested
// NDJSON document per order. Every table has a surrogate `bigint` id for joins and a natural key (unique
// index) that files name rows by; dropload resolves natural keys to ids inside its insert statements.
// CHECK constraints mirror the zod schemas of the shop datasets in dropload.config.ts. Every foreign key
// has an index (the parent side is its primary key; the child side below), so deletes and joins in both
// directions are index lookups.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createSchema('shop').ifNotExists().execute();
  const s = db.schema.withSchema('shop');

  await s
    .createTable('customers')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('email', 'text', (c) => c.notNull().check(sql`email = lower(email) and email like '%_@_%'`))
    .addColumn('name', 'text', (c) => c.notNull().check(sql`length(name) between 1 and 200`))
    .addColumn('country', 'char(2)', (c) => c.notNull().check(sql`country ~ '^[A-Z]{2}$'`))
    .addUniqueConstraint('customers_email_key', ['email'])
    .execute();

  // 1:1 — the profile's primary key is its customer's id. ON DELETE CASCADE: a profile means nothing without its customer.
  await s
    .createTable('customer_profiles')
    .addColumn('customer_id', 'bigint', (c) =>
      c.primaryKey().references('shop.customers.id').onDelete('cascade'),
    )
    .addColumn('birthday', 'date', (c) => c.check(sql`birthday >= '1800-01-01'`))
    .addColumn('newsletter', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();

  // Self-reference. ON DELETE SET NULL: deleting a category lifts its subcategories to the top level.
  await s
    .createTable('categories')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('slug', 'text', (c) => c.notNull().check(sql`slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'`))
    .addColumn('name', 'text', (c) => c.notNull().check(sql`length(name) >= 1`))
    .addColumn('parent_id', 'bigint', (c) => c.references('shop.categories.id').onDelete('set null'))
    .addUniqueConstraint('categories_slug_key', ['slug'])
    .addCheckConstraint('categories_not_own_parent', sql`parent_id <> id`)
    .execute();
  await s.createIndex('categories_parent_idx').on('categories').column('parent_id').execute();

  await s
    .createTable('products')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('sku', 'text', (c) => c.notNull().check(sql`sku ~ '^[A-Z0-9-]{3,32}$'`))
    .addColumn('name', 'text', (c) => c.notNull().check(sql`length(name) >= 1`))
    .addColumn('price', 'numeric(12, 2)', (c) => c.notNull().check(sql`price >= 0`))
    .addColumn('currency', 'char(3)', (c) => c.notNull().check(sql`currency in ('EUR', 'USD', 'GBP')`))
    .addUniqueConstraint('products_sku_key', ['sku'])
    .execute();

  // M:N with an attribute; composite primary key. ON DELETE CASCADE on both sides: the link dies with either end.
  await s
    .createTable('product_categories')
    .addColumn('product_id', 'bigint', (c) => c.notNull().references('shop.products.id').onDelete('cascade'))
    .addColumn('category_id', 'bigint', (c) =>
      c.notNull().references('shop.categories.id').onDelete('cascade'),
    )
    .addColumn('rank', 'smallint', (c) => c.notNull().defaultTo(1).check(sql`rank between 1 and 100`))
    .addPrimaryKeyConstraint('product_categories_pkey', ['product_id', 'category_id'])
    .execute();
  // The primary key serves lookups by product; this one by category.
  await s
    .createIndex('product_categories_category_idx')
    .on('product_categories')
    .column('category_id')
    .execute();

  // 1:N. ON DELETE RESTRICT: orders are financial records; a customer with orders cannot be deleted.
  await s
    .createTable('orders')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('order_no', 'text', (c) => c.notNull().check(sql`order_no ~ '^SO-[0-9]{4,}$'`))
    .addColumn('customer_id', 'bigint', (c) =>
      c.notNull().references('shop.customers.id').onDelete('restrict'),
    )
    .addColumn('ordered_at', 'timestamptz', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('placed', 'paid', 'shipped', 'cancelled')`),
    )
    .addColumn('currency', 'char(3)', (c) => c.notNull().check(sql`currency in ('EUR', 'USD', 'GBP')`))
    .addUniqueConstraint('orders_order_no_key', ['order_no'])
    .execute();
  await s.createIndex('orders_customer_idx').on('orders').column('customer_id').execute();

  // M:N orders ↔ products with attributes (quantity, price at the time); composite primary key (order, line).
  // ON DELETE CASCADE from the order (lines are part of it); RESTRICT from the product (sold products stay).
  await s
    .createTable('order_lines')
    .addColumn('order_id', 'bigint', (c) => c.notNull().references('shop.orders.id').onDelete('cascade'))
    .addColumn('line_no', 'smallint', (c) => c.notNull().check(sql`line_no between 1 and 999`))
    .addColumn('product_id', 'bigint', (c) => c.notNull().references('shop.products.id').onDelete('restrict'))
    .addColumn('quantity', 'integer', (c) => c.notNull().check(sql`quantity > 0`))
    .addColumn('unit_price', 'numeric(12, 2)', (c) => c.notNull().check(sql`unit_price >= 0`))
    .addPrimaryKeyConstraint('order_lines_pkey', ['order_id', 'line_no'])
    .execute();
  await s.createIndex('order_lines_product_idx').on('order_lines').column('product_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropSchema('shop').ifExists().cascade().execute();
}
