import { type Kysely, sql } from 'kysely';

// Waiting is the ledger's, not a message's: what a waiting row waits for is data, and each file has one
// live retry chain the ledger names.
// - `orphan.parent_table` / `parent_key`: the parent table (schema-qualified) and its natural-key columns
//   of the first parent a row misses, so "who waits on table T" is one index probe when T gets rows.
// - `file.retry_token`: the current retry chain; a retry message carries it, and only the current one
//   schedules the next step. `retry_due`: when that chain's pending message is due (NULL: none is
//   pending). `retry_started_at`: when its handler took it (NULL: none runs). A due time long past means
//   the message was lost: the sweep sends another.
// - state `waiting`: every chunk is done and rows still wait for parents (`loading` keeps meaning chunks
//   are not done).
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table dropload.orphan add column parent_table text, add column parent_key text`.execute(db);
  // Rows parked before: read back from `missing` ("shop.customers row with email = x; …"), first parent.
  await sql`update dropload.orphan set
    parent_table = case when position('.' in split_part(missing, ' row with ', 1)) > 0
      then split_part(missing, ' row with ', 1) else 'public.' || split_part(missing, ' row with ', 1) end,
    parent_key = coalesce((select string_agg(split_part(kv, ' = ', 1), ', ')
      from unnest(string_to_array(split_part(split_part(missing, '; ', 1), ' row with ', 2), ' and ')) kv), '')`.execute(
    db,
  );
  await sql`alter table dropload.orphan alter column parent_table set not null,
    alter column parent_key set not null`.execute(db);
  await db.schema
    .withSchema('dropload')
    .createIndex('orphan_parent_idx')
    .on('orphan')
    .columns(['parent_table', 'file_id'])
    .execute();

  await sql`alter table dropload.file add column retry_token integer not null default 0,
    add column retry_due timestamptz, add column retry_started_at timestamptz`.execute(db);
  await sql`alter table dropload.file drop constraint file_state_check`.execute(db);
  await sql`alter table dropload.file add constraint file_state_check check (state in
    ('queued', 'splitting', 'loading', 'waiting', 'stalled', 'loaded', 'failed', 'skipped'))`.execute(db);
  await sql`update dropload.file f set state = 'waiting'
    where state = 'loading' and chunks_done >= chunk_count
    and exists (select 1 from dropload.orphan o where o.file_id = f.id)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`update dropload.file set state = 'loading' where state = 'waiting'`.execute(db);
  await sql`alter table dropload.file drop constraint file_state_check`.execute(db);
  await sql`alter table dropload.file add constraint file_state_check
    check (state in ('queued', 'splitting', 'loading', 'stalled', 'loaded', 'failed', 'skipped'))`.execute(
    db,
  );
  await sql`alter table dropload.file drop column retry_token, drop column retry_due,
    drop column retry_started_at`.execute(db);
  await db.schema.withSchema('dropload').dropIndex('orphan_parent_idx').ifExists().execute();
  await sql`alter table dropload.orphan drop column parent_table, drop column parent_key`.execute(db);
}
