import { Logger } from '@aws-lambda-powertools/logger';
import { type Kysely, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { resolveConfig } from '../../shared/config/config.ts';
import { defineDataset } from '../../shared/config/dataset.ts';
import { STRAY_QUOTE_HINT } from '../../shared/formats/chunking.ts';
import { ledgerMigrator } from '../../shared/ledger/migrate.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { listRejects } from '../../shared/ops/rejects.ts';
import { retryRejects } from '../../shared/ops/retry-rejects.ts';
import { expectHonestCounts } from '../support/counts.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/** A reject's kind is stored where it is made, and retry-rejects goes by it, never by the reason's wording. */

const tables: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('kind_rows')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('note', 'text', (c) => c.notNull().check(sql`note <> 'refuse me'`))
      .execute();
  },
};

// A schema's own message that reads like dropload's reason for an oversized record.
const TOO_LONG = 'note is longer than this dataset allows (maxRecordBytes)';
const kindRows = (maxNote: number) =>
  defineDataset({
    name: 'kind_rows',
    format: 'csv',
    table: 'kind_rows',
    maxRecordBytes: 4096,
    schema: z
      .object({ id: z.coerce.number().int(), note: z.string() })
      .refine((r) => r.note.length <= maxNote, TOO_LONG),
  });
const config = { datasets: [kindRows(10)], migrations: { '20260101000000_kinds': tables } };

const KEY = 'incoming/kind_rows/kinds.csv';
const long = 'z'.repeat(5000);
const body = Buffer.concat([
  Buffer.from('id,note\n1,fine\n2,a note over ten characters\n3,caf'),
  Buffer.from([0xe9]),
  // The last record opens a quote it never closes, and is over maxRecordBytes: read as its preview.
  Buffer.from(`\n4,a,b\n5,${long}\n6,refuse me\n7,"${long}`),
]);

const logger = new Logger({ serviceName: 'dropload-test', logLevel: 'SILENT' });
let p: TestPipeline;
/** The pipeline's own connection to the ledger. */
let db: Kysely<Database>;
beforeAll(async () => {
  p = await startTestPipeline(config, ['kind_rows']);
  ({ db } = p.deps);
});
afterAll(() => p?.stop());

async function kinds() {
  const { rejects } = await listRejects(db, KEY);
  return rejects.map((r) => [r.line, r.kind]);
}

describe('reject kinds', () => {
  it('are stored by what rejected the line', async () => {
    const { reports } = await p.load(KEY, body);
    expect(reports[0]?.rows).toMatchObject({ read: 7, loaded: 1, rejected: 6 });
    expect(await kinds()).toEqual([
      [3, 'invalid'],
      [4, 'unreadable'],
      [5, 'malformed'],
      [6, 'unreadable'],
      [7, 'refused'],
      [8, 'unreadable'],
    ]);
    const { rejects } = await listRejects(db, KEY);
    expect(rejects.map((r) => r.reason)).toEqual([
      TOO_LONG,
      'bytes are not valid UTF-8 (first bad byte at offset 5 of the line)',
      'row has 3 fields, the header has 2',
      'record is 5003 bytes, over the limit of 4096 bytes (maxRecordBytes)',
      expect.stringMatching(/^database refused the row: new row for relation "kind_rows" violates check/),
      `a quoted field opened on this line is never closed: the rest of the file (5003 bytes) reads as one record (${STRAY_QUOTE_HINT})`,
    ]);
  });

  it('decide what retry-rejects retries, whatever the reason reads like', async () => {
    const fixed = resolveConfig({ ...config, datasets: [kindRows(100)] }, 'fixed');
    const result = await retryRejects({ db, config: fixed, logger }, KEY);
    // retry-rejects moves counters too: the identity still holds.
    await expectHonestCounts(db);
    // Line 3 reads like an oversized record but is the schema's: it loads now. The unreadable ones are
    // left; the malformed line and the one the database refuses are retried and stay rejected.
    expect(result).toMatchObject({ retried: 3, loaded: 1, inserted: 1, stillRejected: 2, notRetryable: 3 });
    expect(await kinds()).toEqual([
      [4, 'unreadable'],
      [5, 'malformed'],
      [6, 'unreadable'],
      [7, 'refused'],
      [8, 'unreadable'],
    ]);
  });

  it('come back from their reasons when the migration that added them is undone and done again', async () => {
    const { file } = await listRejects(db, KEY);
    const stored = await kinds();
    const migrator = ledgerMigrator(db);
    // Down to just before the kinds (undoing the ledger migrations after it first).
    const down = await migrator.migrateTo('20261215090000_version_order');
    expect([down.error, down.results?.at(-1)]).toEqual([
      undefined,
      { migrationName: '20261220090000_reject_kind', direction: 'Down', status: 'Success' },
    ]);
    const columns = await sql<{ name: string }>`select column_name as name from information_schema.columns
      where table_schema = 'dropload' and table_name = 'reject'`.execute(db);
    expect(columns.rows.map((c) => c.name)).not.toContain('kind');
    // Rejects as dropload worded them before kinds were stored, of the kinds this file does not have.
    const older = [
      [101, 'value cannot be written: TypeError: Do not know how to serialize a BigInt', 'unwritable'],
      [102, 'orphan: no shop.customers row with email = x@y (waited 3600s)', 'orphan'],
      [103, 'invalid JSON: Unexpected token', 'malformed'],
      [104, 'line is not a JSON object', 'malformed'],
      [105, 'record is nested 600 levels deep, over the limit of 512 levels', 'malformed'],
      [106, 'unreadable record', 'malformed'],
      [107, 'a value is required (got "")', 'invalid'],
    ] as const;
    for (const [line, reason] of older) {
      await sql`insert into dropload.reject (file_id, chunk_idx, line, reason, raw)
        values (${file.id}, 0, ${line}, ${reason}, 'x')`.execute(db);
    }

    const up = await migrator.migrateToLatest();
    expect([up.error, up.results?.[0]?.migrationName]).toEqual([undefined, '20261220090000_reject_kind']);
    expect(up.results?.every((r) => r.status === 'Success')).toBe(true);
    expect(await kinds()).toEqual([...stored, ...older.map(([line, , kind]) => [line, kind])]);
    await db.deleteFrom('dropload.reject').where('line', '>', 100).execute();
  });
});
