import type { Kysely } from 'kysely';

// Work on a file that stopped without an outcome and started again (see ledger/resumes.ts): how many
// times, when last, and how long the file had made no progress before each resume, in all. Files
// from before this column count none.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .withSchema('dropload')
    .alterTable('file')
    .addColumn('resumes', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('resumed_at', 'timestamptz')
    .addColumn('idle_seconds', 'double precision', (c) => c.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .withSchema('dropload')
    .alterTable('file')
    .dropColumn('resumes')
    .dropColumn('resumed_at')
    .dropColumn('idle_seconds')
    .execute();
}
