import { type Kysely, sql } from 'kysely';

// Every counter stored where it happens, so no reader derives one by subtraction:
// read = inserted + updated + unchanged + waiting + rejected, on each file and each chunk.
// `rows_waiting` counts records (lines) with a row in dropload.orphan and no reject: a record with several
// waiting rows is one, a record already rejected is rejected. Files already in the ledger get both from what they have: waiting from dropload.orphan, then
// unchanged as the rest (what readers used to derive), never below zero.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table dropload.file
    add column rows_unchanged bigint not null default 0,
    add column rows_waiting bigint not null default 0`.execute(db);
  await sql`alter table dropload.chunk
    add column rows_unchanged integer not null default 0,
    add column rows_waiting integer not null default 0`.execute(db);
  await sql`update dropload.chunk c set rows_waiting = w.lines
    from (select file_id, chunk_idx, count(distinct line) as lines from dropload.orphan o
          where not exists (select 1 from dropload.reject r where r.file_id = o.file_id and r.line = o.line)
          group by file_id, chunk_idx) w
    where c.file_id = w.file_id and c.idx = w.chunk_idx`.execute(db);
  await sql`update dropload.file f set rows_waiting = w.lines
    from (select file_id, count(distinct (chunk_idx, line)) as lines from dropload.orphan o
          where not exists (select 1 from dropload.reject r where r.file_id = o.file_id and r.line = o.line)
          group by file_id) w
    where f.id = w.file_id`.execute(db);
  await sql`update dropload.chunk set rows_unchanged =
    greatest(0, rows_read - rows_inserted - rows_updated - rows_rejected - rows_waiting)
    where state = 'loaded'`.execute(db);
  await sql`update dropload.file set rows_unchanged =
    greatest(0, rows_read - rows_inserted - rows_updated - rows_rejected - rows_waiting)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table dropload.file drop column rows_unchanged, drop column rows_waiting`.execute(db);
  await sql`alter table dropload.chunk drop column rows_unchanged, drop column rows_waiting`.execute(db);
}
