import type { Kysely } from 'kysely';

// A gzip file's chunks are byte ranges of its expanded bytes. Their count is recorded with the chunk
// plan, so a copy re-made from the original (after the first one went missing) is checked against
// what the chunks were cut from. NULL: the file is not compressed (or was planned before this column).
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('dropload').alterTable('file').addColumn('expanded_bytes', 'bigint').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('dropload').alterTable('file').dropColumn('expanded_bytes').execute();
}
