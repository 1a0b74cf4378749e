import type { Kysely } from 'kysely';

// What S3 says about a version's place among its key's versions, recorded when the split registers it:
// `replace` publishes only the newest (shared/load/write/publish.ts), whatever order the versions finish loading in.
// Existing rows keep NULLs and count as older than any version registered with them.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .withSchema('dropload')
    .alterTable('file')
    // The version's Last-Modified, from the split's HEAD of exactly that version.
    .addColumn('last_modified', 'timestamptz')
    .execute();
  await db.schema
    .withSchema('dropload')
    .alterTable('file')
    // The `sequencer` of the S3 event that announced it (S3's order of one key's events), when it had one.
    .addColumn('sequencer', 'text')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('dropload').alterTable('file').dropColumn('sequencer').execute();
  await db.schema.withSchema('dropload').alterTable('file').dropColumn('last_modified').execute();
}
