import type { Kysely } from 'kysely';

// When a chunk's loading began (its worker took it): with `loaded_at`, the time its rows took, over which
// the console's rows/s spreads them. Chunks loaded before this column have none (their rows count at the commit).
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('dropload').alterTable('chunk').addColumn('started_at', 'timestamptz').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('dropload').alterTable('chunk').dropColumn('started_at').execute();
}
