import { type Kysely, sql } from 'kysely';

// Rows per target table of a multi-table dataset's file: inserted, updated, unchanged (sent, changing
// nothing). The file's own counters count records; these say what each table got. Moved in the
// transaction that writes the rows (a chunk, a retry of waiting records, retry-rejects), after the
// file's counters, so a redelivered chunk, which claims nothing, moves nothing. Files loaded before
// have none.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table dropload.table_count (
    file_id bigint not null references dropload.file (id) on delete cascade,
    table_name text not null,
    rows_inserted bigint not null default 0,
    rows_updated bigint not null default 0,
    rows_unchanged bigint not null default 0,
    primary key (file_id, table_name))`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table dropload.table_count`.execute(db);
}
