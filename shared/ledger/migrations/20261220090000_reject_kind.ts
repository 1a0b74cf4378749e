import { type Kysely, sql } from 'kysely';

// What kind of reject a line is (RejectKind in ../schema.ts) is stored by the code that rejects it, not read
// back out of its reason. Rejects stored before have only their reason: they get the kind their wording
// says, once, here, the one place that wording is still matched (a schema's own message that happens to
// read like one of dropload's is taken for it). Down drops the kinds; up again derives them anew.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('dropload').alterTable('reject').addColumn('kind', 'text').execute();
  await sql`update dropload.reject set kind = case
      when reason like '%(maxRecordBytes)'
        or starts_with(reason, 'a quoted field opened on this line is never closed')
        or starts_with(reason, 'bytes are not valid UTF-8') then 'unreadable'
      when starts_with(reason, 'malformed CSV: ')
        or reason ~ '^row has [0-9]+ fields, the header has [0-9]+'
        or starts_with(reason, 'invalid JSON: ')
        or reason = 'line is not a JSON object'
        or reason ~ '^record is nested [0-9]+ levels deep, over the limit'
        or reason = 'unreadable record' then 'malformed'
      when starts_with(reason, 'value cannot be written: ') then 'unwritable'
      when starts_with(reason, 'database refused the row: ') then 'refused'
      when starts_with(reason, 'orphan: ') then 'orphan'
      else 'invalid'
    end`.execute(db);
  await sql`alter table dropload.reject alter column kind set not null,
    add constraint reject_kind_check
      check (kind in ('unreadable', 'malformed', 'invalid', 'unwritable', 'refused', 'orphan'))`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.withSchema('dropload').alterTable('reject').dropColumn('kind').execute();
}
