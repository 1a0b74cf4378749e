import type { Kysely } from 'kysely';

// A failed file's action: what whoever dropped it should do, set with the failure by the error that
// ended it (FileRejectedError's `action`). Files that failed before this column have none.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('dropload').alterTable('file').addColumn('action', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('dropload').alterTable('file').dropColumn('action').execute();
}
