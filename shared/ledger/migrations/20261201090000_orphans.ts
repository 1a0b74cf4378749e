import { type Kysely, sql } from 'kysely';

// Rows of multi-table datasets that wait for a parent (by natural key) that has not landed yet. Each is
// written in the transaction of its chunk and claimed (`for update skip locked`, then deleted) in the
// transaction of the retry that writes it, so a redelivered retry changes nothing.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .withSchema('dropload')
    .createTable('orphan')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('file_id', 'bigint', (c) => c.notNull().references('dropload.file.id').onDelete('cascade'))
    .addColumn('chunk_idx', 'integer', (c) => c.notNull())
    .addColumn('line', 'bigint', (c) => c.notNull())
    // The target table and the row as the writer needs it again: { values: {column: text}, refs: {column: {parentColumn: text}} }.
    .addColumn('target', 'text', (c) => c.notNull())
    .addColumn('row', 'jsonb', (c) => c.notNull())
    // What it waits for, as a reject will name it: `shop.customers row with email = x@y`.
    .addColumn('missing', 'text', (c) => c.notNull())
    .addColumn('raw', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute();
  // The retry claims a file's waiting rows, the chunk asks whether any are left: both by file.
  await db.schema
    .withSchema('dropload')
    .createIndex('orphan_file_idx')
    .on('orphan')
    .columns(['file_id', 'id'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('dropload').dropTable('orphan').ifExists().execute();
}
