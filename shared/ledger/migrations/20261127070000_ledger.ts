import { type Kysely, sql } from 'kysely';

// The ledger lives in its own schema so it never collides with the tables users load into.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createSchema('dropload').ifNotExists().execute();
  const s = db.schema.withSchema('dropload');

  await s
    .createTable('file')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('bucket', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('version_id', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('etag', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('dataset', 'text')
    .addColumn('state', 'text', (c) =>
      c.notNull().check(sql`state in ('queued', 'splitting', 'loading', 'loaded', 'failed', 'skipped')`),
    )
    .addColumn('columns', sql`text[]`)
    .addColumn('chunk_count', 'integer')
    .addColumn('chunks_done', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('rows_expected', 'bigint')
    .addColumn('rows_read', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('rows_inserted', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('rows_updated', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('rows_rejected', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('finished_at', 'timestamptz')
    // One row per object version: the same upload delivered twice maps to the same file.
    .addUniqueConstraint('file_version_unique', ['bucket', 'key', 'version_id', 'etag'])
    .execute();
  await s.createIndex('file_state_idx').on('file').columns(['state', 'updated_at']).execute();
  await s.createIndex('file_key_idx').on('file').columns(['key', 'created_at']).execute();

  await s
    .createTable('chunk')
    .addColumn('file_id', 'bigint', (c) => c.notNull().references('dropload.file.id').onDelete('cascade'))
    .addColumn('idx', 'integer', (c) => c.notNull())
    .addColumn('start_byte', 'bigint', (c) => c.notNull())
    .addColumn('end_byte', 'bigint', (c) => c.notNull())
    .addColumn('first_line', 'bigint', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('pending', 'loaded')`))
    // One record over the size limit (or an unclosed quote to end of file): rejected without being read whole.
    .addColumn('oversized', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('unterminated', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('rows_read', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('rows_inserted', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('rows_updated', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('rows_rejected', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('error', 'text')
    .addColumn('loaded_at', 'timestamptz')
    .addPrimaryKeyConstraint('chunk_pk', ['file_id', 'idx'])
    .execute();

  await s
    .createTable('reject')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('file_id', 'bigint', (c) => c.notNull().references('dropload.file.id').onDelete('cascade'))
    .addColumn('chunk_idx', 'integer', (c) => c.notNull())
    .addColumn('line', 'bigint', (c) => c.notNull())
    .addColumn('column', 'text')
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('raw', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await s.createIndex('reject_file_line_idx').on('reject').columns(['file_id', 'line']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropSchema('dropload').ifExists().cascade().execute();
}
