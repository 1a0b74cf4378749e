import { type Kysely, sql } from 'kysely';

// A reject is open until it is resolved, and stays as history afterwards (RejectTable in ../schema.ts):
// when, how (`resolved_by`: retry-rejects loaded it, a newer file's row with its key, an operator), and
// what the operator said or which row of which file superseded it. `dataset` and `row_key` are set together
// for a reject of a keyed dataset whose key could be read: what a newer row finds it by. Rejects stored
// before are all open, without a key.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table dropload.reject
    add column resolved_at timestamptz,
    add column resolved_by text,
    add column resolution text,
    add column resolved_file_id bigint references dropload.file (id) on delete set null,
    add column dataset text,
    add column row_key text,
    add constraint reject_resolved_by_check check (resolved_by in ('retry', 'newer-row', 'operator')),
    add constraint reject_resolved_check check ((resolved_at is null) = (resolved_by is null)),
    add constraint reject_row_key_check check ((dataset is null) = (row_key is null))`.execute(db);
  // A file's open rejects in line order (`dropload rejects`, retry-rejects, receipts), and their count (`status`).
  await sql`create index reject_open_idx on dropload.reject (file_id, line)
    where resolved_at is null`.execute(db);
  // Whether a dataset has open keyed rejects at all, and the probe by key of a chunk's loaded rows.
  await sql`create index reject_open_row_key_idx on dropload.reject (dataset, row_key)
    where resolved_at is null and row_key is not null`.execute(db);
  // The rejects a file's rows resolved (its receipt counts them).
  await sql`create index reject_resolved_file_idx on dropload.reject (resolved_file_id)
    where resolved_file_id is not null`.execute(db);
}

// Before this migration retry-rejects deleted the rejects it loaded (the file's counts no longer hold them):
// those go; rejects resolved otherwise are open again, as they were then.
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`delete from dropload.reject where resolved_by = 'retry'`.execute(db);
  await sql`drop index dropload.reject_open_idx, dropload.reject_open_row_key_idx,
    dropload.reject_resolved_file_idx`.execute(db);
  await sql`alter table dropload.reject
    drop column resolved_at, drop column resolved_by, drop column resolution,
    drop column resolved_file_id, drop column dataset, drop column row_key`.execute(db);
}
