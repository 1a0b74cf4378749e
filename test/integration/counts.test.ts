import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusReports } from '../../cli/report.ts';
import { ledgerMigrator } from '../../shared/ledger/migrate.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { receiptFor } from '../../shared/pipeline/receipts.ts';
import { countViolations, expectHonestCounts } from '../support/counts.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';
import { fileOf, waitFor } from '../support/runners.ts';
import waitingConfig, { NW_TABLES } from '../support/waiting.config.ts';

/**
 * Honest counts (issue 12): read = inserted + updated + unchanged + waiting + rejected on every file and
 * chunk, each counted where it happens; `status`, `run` and receipts read the counters and never call a
 * waiting record loaded. (Every `p.load` also checks the identity ledger-wide: test/support/pipeline.ts.)
 */

let p: TestPipeline;
let db: Kysely<Database>;

beforeAll(async () => {
  p = await startTestPipeline(waitingConfig, NW_TABLES, { sweepEveryMs: 0 });
  db = p.deps.db;
});
afterAll(async () => {
  await p?.stop();
});

const territoriesCsv = (name = 'Territory') => {
  const lines = ['territory_id,name,region_id'];
  for (let i = 1; i <= 53; i++) lines.push(`T${String(i).padStart(2, '0')},${name} ${i},${(i % 4) + 1}`);
  return `${lines.join('\n')}\n`;
};
const regionsCsv = (rows: [number, string][]) =>
  `${['region_id,name', ...rows.map(([id, name]) => `${id},${name}`)].join('\n')}\n`;

async function statusOf(key: string) {
  return (await statusReports(db, 100)).find((r) => r.key === key)?.rows;
}

const TERRITORIES = 'incoming/territories/first.csv';

describe('waiting records are not loaded', () => {
  it('children first: status, run and receipt say waiting 26, loaded 27; then the parents load them', async () => {
    // Regions 1 and 2 only: territories with region 3 or 4 (26 of 53) wait.
    await p.load(
      'incoming/regions/two.csv',
      regionsCsv([
        [1, 'Eastern'],
        [2, 'Western'],
      ]),
    );
    const { reports } = await p.load(TERRITORIES, territoriesCsv());
    const waiting = {
      read: 53,
      loaded: 27,
      inserted: 27,
      updated: 0,
      unchanged: 0,
      waiting: 26,
      rejected: 0,
      open: 0,
    };
    expect(reports[0]?.state).toBe('waiting');
    expect(reports[0]?.rows).toEqual(waiting);
    expect(await statusOf(TERRITORIES)).toEqual(waiting);
    const receipt = await receiptFor(db, await fileOf(db, TERRITORIES));
    expect(receipt.rows).toEqual({
      read: 53,
      inserted: 27,
      updated: 0,
      unchanged: 0,
      waiting: 26,
      rejected: 0,
    });
    expect(receipt.waiting?.lines).toBe(26);

    // The parents come: the waiting records load, and count as inserted.
    const two = await p.load(
      'incoming/regions/rest.csv',
      regionsCsv([
        [3, 'Northern'],
        [4, 'Southern'],
      ]),
    );
    expect(two.reports[0]?.rows).toMatchObject({ read: 2, inserted: 2, waiting: 0 });
    const loaded = await waitFor('the territories to load', async () => {
      const file = await fileOf(db, TERRITORIES);
      return file.state === 'loaded' ? file : undefined;
    });
    expect([loaded.rows_read, loaded.rows_inserted, loaded.rows_unchanged, loaded.rows_waiting]).toEqual([
      53, 53, 0, 0,
    ]);
    expect(await statusOf(TERRITORIES)).toEqual({ ...waiting, loaded: 53, inserted: 53, waiting: 0 });
    expect((await receiptFor(db, loaded)).rows).toEqual({
      read: 53,
      inserted: 53,
      updated: 0,
      unchanged: 0,
      waiting: 0,
      rejected: 0,
    });
    await expectHonestCounts(db);
  });

  it('the same territories dropped again: 53 unchanged (the relational upsert skipped them), one renamed: updated', async () => {
    const same = await p.load('incoming/territories/again.csv', territoriesCsv());
    expect(same.reports[0]?.rows).toEqual({
      read: 53,
      loaded: 53,
      inserted: 0,
      updated: 0,
      unchanged: 53,
      waiting: 0,
      rejected: 0,
      open: 0,
    });
    const renamed = territoriesCsv().replace('T07,Territory 7,', 'T07,Renamed 7,');
    const one = await p.load('incoming/territories/renamed.csv', renamed);
    expect(one.reports[0]?.rows).toMatchObject({
      read: 53,
      inserted: 0,
      updated: 1,
      unchanged: 52,
      waiting: 0,
    });
  });
});

describe('an upsert dropped again', () => {
  it('counts the rows it found as they were as unchanged, exactly', async () => {
    const rows: [number, string][] = [
      [1, 'Eastern'],
      [2, 'Western'],
      [3, 'Northern'],
      [4, 'Southern'],
    ];
    const same = await p.load('incoming/regions/again.csv', regionsCsv(rows));
    expect(same.reports[0]?.rows).toEqual({
      read: 4,
      loaded: 4,
      inserted: 0,
      updated: 0,
      unchanged: 4,
      waiting: 0,
      rejected: 0,
      open: 0,
    });
    // One renamed, one new, one too short a name, and region 1 twice (the later line wins: the first is unchanged).
    const changed = regionsCsv([
      [1, 'East'],
      [2, 'Western'],
      [3, 'Northern'],
      [4, 'So'],
      [5, 'Central'],
      [1, 'Eastern'],
    ]);
    const next = await p.load('incoming/regions/changed.csv', changed);
    expect(next.reports[0]?.rows).toEqual({
      read: 6,
      loaded: 5,
      inserted: 1,
      updated: 0,
      unchanged: 4,
      waiting: 0,
      rejected: 1,
      open: 1,
    });
    const file = await fileOf(db, 'incoming/regions/changed.csv');
    expect((await receiptFor(db, file)).rows).toEqual({
      read: 6,
      inserted: 1,
      updated: 0,
      unchanged: 4,
      waiting: 0,
      rejected: 1,
    });
  });
});

describe('the migration', () => {
  it('backfills waiting and unchanged for files already in the ledger, so the identity holds', async () => {
    const migrator = ledgerMigrator(db);
    const down = await migrator.migrateTo('20261222090000_reject_lifecycle');
    expect(down.results?.map((r) => [r.migrationName, r.status])).toEqual([
      ['20261231090000_chunk_started', 'Success'],
      ['20261230090000_file_action', 'Success'],
      ['20261229090000_resumes', 'Success'],
      ['20261228100000_orphan_parent_row', 'Success'],
      ['20261228090000_table_counts', 'Success'],
      ['20261224090000_counts', 'Success'],
    ]);
    const { rows } = await sql<{ id: number }>`insert into dropload.file
        (bucket, key, version_id, etag, size, dataset, state, chunk_count, chunks_done, updated_at,
         rows_read, rows_inserted, rows_updated, rows_rejected)
      values ('dropload-local', 'incoming/territories/old.csv', '', 'e', 1, 'territories', 'waiting', 1, 1,
        now(), 10, 4, 1, 1)
      returning id::int as id`.execute(db);
    const id = rows[0]?.id as number;
    await sql`insert into dropload.chunk (file_id, idx, start_byte, end_byte, first_line, state,
        rows_read, rows_inserted, rows_updated, rows_rejected)
      values (${id}, 0, 0, 1, 2, 'loaded', 10, 4, 1, 1)`.execute(db);
    // Three waiting records, one of them with two waiting rows: 3, not 4.
    for (const line of [3, 5, 5, 8]) {
      await sql`insert into dropload.orphan (file_id, chunk_idx, line, target, row, missing, parent_table,
          parent_key, raw, expires_at)
        values (${id}, 0, ${line}, 'nw.territories', '{}', 'nw.regions row with region_id = 9', 'nw.regions',
          'region_id', 'raw', now() + interval '1 hour')`.execute(db);
    }
    const up = await migrator.migrateToLatest();
    expect(up.results?.map((r) => [r.migrationName, r.status])).toEqual([
      ['20261224090000_counts', 'Success'],
      ['20261228090000_table_counts', 'Success'],
      ['20261228100000_orphan_parent_row', 'Success'],
      ['20261229090000_resumes', 'Success'],
      ['20261230090000_file_action', 'Success'],
      ['20261231090000_chunk_started', 'Success'],
    ]);
    const file = await sql<{ unchanged: number; waiting: number }>`select rows_unchanged::int as unchanged,
      rows_waiting::int as waiting from dropload.file where id = ${id}
      union all select rows_unchanged, rows_waiting from dropload.chunk where file_id = ${id}`.execute(db);
    // 10 read: 4 inserted, 1 updated, 1 rejected, 3 waiting, and the 1 left unchanged.
    expect(file.rows).toEqual([
      { unchanged: 1, waiting: 3 },
      { unchanged: 1, waiting: 3 },
    ]);
    expect(await countViolations(db)).toEqual([]);
    await sql`delete from dropload.orphan where file_id = ${id}`.execute(db);
  });
});
