import { type Kysely, sql } from 'kysely';

// The parent a waiting record waits for, by the natural key its row names it with:
// `{"table": "fam.employees", "key": {"employee_id": "2"}}` (the table as the config names it, the key's
// texts as the file has them). When that parent is itself a waiting record, following these finds the
// missing root a reject names. Rows parked before have none: their rejects name their parent only.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table dropload.orphan add column parent_row jsonb`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table dropload.orphan drop column parent_row`.execute(db);
}
