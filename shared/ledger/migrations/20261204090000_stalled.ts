import { type Kysely, sql } from 'kysely';

// A chunk that failed for its whole retry budget is `dead` (its message is in the dead-letter queue) and
// its file `stalled` until a replay loads it. A file's remarks (no rows, ignored columns) move to `note`,
// so `error` only ever says what is wrong now and clears when the cause is gone.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table dropload.file drop constraint file_state_check`.execute(db);
  await sql`alter table dropload.file add constraint file_state_check
    check (state in ('queued', 'splitting', 'loading', 'stalled', 'loaded', 'failed', 'skipped'))`.execute(
    db,
  );
  await sql`alter table dropload.chunk drop constraint chunk_state_check`.execute(db);
  await sql`alter table dropload.chunk add constraint chunk_state_check
    check (state in ('pending', 'loaded', 'dead'))`.execute(db);
  await db.schema.alterTable('dropload.file').addColumn('note', 'text').execute();
  // Loaded files that carried a remark in `error` keep it, as a note.
  await sql`update dropload.file set note = error, error = null where state = 'loaded' and error is not null`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`update dropload.file set error = coalesce(error, note)`.execute(db);
  await db.schema.alterTable('dropload.file').dropColumn('note').execute();
  await sql`update dropload.file set state = 'loading' where state = 'stalled'`.execute(db);
  await sql`update dropload.chunk set state = 'pending' where state = 'dead'`.execute(db);
  await sql`alter table dropload.file drop constraint file_state_check`.execute(db);
  await sql`alter table dropload.file add constraint file_state_check
    check (state in ('queued', 'splitting', 'loading', 'loaded', 'failed', 'skipped'))`.execute(db);
  await sql`alter table dropload.chunk drop constraint chunk_state_check`.execute(db);
  await sql`alter table dropload.chunk add constraint chunk_state_check check (state in ('pending', 'loaded'))`.execute(
    db,
  );
}
