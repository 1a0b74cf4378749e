import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileReport } from '../../cli/report.ts';
import { renderReports } from '../../cli/report.ts';
import { EXIT_WAITING, runExitCode } from '../../cli/run.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { expectHonestCounts } from '../support/counts.ts';
import fkConfig, { FK_TABLES } from '../support/fk-wait.config.ts';
import { rejectKindsOfKey, rejectsOfKey, startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/**
 * Every dataset can wait (issue 12): a single-table dataset whose table has a foreign key, with no
 * `references` in its config, parks the rows whose parent is missing (read from the catalog) and loads
 * them when the parent lands; `waitForParents: false` rejects them at once, as the database refuses them.
 * (Every `p.load` checks the counters' identity ledger-wide: test/support/pipeline.ts.)
 */

let p: TestPipeline;
let db: Kysely<Database>;

beforeAll(async () => {
  p = await startTestPipeline(fkConfig, FK_TABLES, { sweepEveryMs: 0 });
  db = p.deps.db;
});
afterAll(async () => {
  await p?.stop();
});

/** Territories T1..T9 in regions 1..3; T9 has no region (a NULL foreign key is no missing parent). */
const territoriesCsv = [
  'territory_id,name,region_id',
  ...Array.from({ length: 8 }, (_, k) => `T${k + 1},Territory ${k + 1},${(k % 3) + 1}`),
  'T9,Nowhere,',
].join('\n');

/** key, state, read, loaded, rejected, waiting */
const row = (r: FileReport) => [r.key, r.state, r.rows.read, r.rows.loaded, r.rows.rejected, r.rows.waiting];

async function territories() {
  const { rows } = await sql<{ territory_id: string; region_id: number | null }>`
    select territory_id, region_id from fk.territories order by territory_id`.execute(db);
  return rows.map((r) => [r.territory_id, r.region_id]);
}

async function waitingRows() {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from dropload.orphan`.execute(db);
  return rows[0]?.n;
}

describe('a single-table dataset whose table has a foreign key', () => {
  it('children first: waits for the parents the catalog names, then loads when they land', async () => {
    const one = await p.load('incoming/territories/t.csv', `${territoriesCsv}\n`);
    // T9 (NULL region) loads at once; the eight others wait for their regions.
    expect(one.reports.map(row)).toEqual([['incoming/territories/t.csv', 'waiting', 9, 1, 0, 8]]);
    expect(runExitCode(one.reports, one.timedOut)).toBe(EXIT_WAITING);
    expect(renderReports(one.reports)).toContain(
      'incoming/territories/t.csv: waiting: 8 rows wait for fk.regions (region_id)',
    );
    expect(await territories()).toEqual([['T9', null]]);
    expect(await waitingRows()).toBe(8);

    // Regions 2 and 3 name region 1 as their parent, in the same file after it (a self-reference).
    const regions = await p.load('incoming/regions/r.csv', 'region_id,name,parent_id\n2,B,1\n3,C,1\n1,A,\n');
    expect(regions.reports.map(row).slice(0, 1)).toEqual([['incoming/regions/r.csv', 'loaded', 3, 3, 0, 0]]);
    // The waiting territories load when their parents commit (woken, not swept: the sweep is off).
    const deadline = Date.now() + 30_000;
    while ((await waitingRows()) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await waitingRows()).toBe(0);
    expect(await territories()).toEqual([
      ['T1', 1],
      ['T2', 2],
      ['T3', 3],
      ['T4', 1],
      ['T5', 2],
      ['T6', 3],
      ['T7', 1],
      ['T8', 2],
      ['T9', null],
    ]);
    const { rows } = await sql<{ state: string; rows_inserted: number; rows_waiting: number }>`
      select state, rows_inserted::int, rows_waiting::int from dropload.file
      where key = 'incoming/territories/t.csv'`.execute(db);
    expect(rows).toEqual([{ state: 'loaded', rows_inserted: 9, rows_waiting: 0 }]);
    // The retry that loaded them moved them from waiting to inserted on their chunk and file.
    await expectHonestCounts(db);
  });

  it('with waitForParents: false, a row whose parent is missing is rejected at once and the file is loaded', async () => {
    const csv = 'territory_id,name,region_id\nU1,Here,1\nU2,Lost,7\n';
    const run = await p.load('incoming/territories-now/u.csv', csv);
    expect(run.reports.map(row)).toEqual([['incoming/territories-now/u.csv', 'loaded', 2, 1, 1, 0]]);
    expect(runExitCode(run.reports, run.timedOut)).toBe(0);
    expect(await rejectKindsOfKey(db, 'incoming/territories-now/u.csv')).toEqual(['refused']);
    const [reject] = await rejectsOfKey(db, 'incoming/territories-now/u.csv');
    expect(reject?.line).toBe(3);
    expect(reject?.reason).toContain('violates foreign key constraint');
    expect(await waitingRows()).toBe(0);
  });
});

async function namedRows(table: 'fk.staff' | 'fk.crew') {
  const { rows } = await sql<{ id: string }>`
    select (to_jsonb(t) - 'name')::text as id from ${sql.table(table)} as t order by 1`.execute(db);
  return rows.map((r) => r.id);
}

describe('a row whose foreign key names itself (a hierarchy top: `1,Ceo,1`)', () => {
  it('has its parent, itself: it loads, and its children in the same file after it', async () => {
    const csv = 'employee_id,name,manager_id\n1,Ceo,1\n2,Ann,1\n3,Bob,2\n4,Cid,2\n';
    const run = await p.load('incoming/staff/staff.csv', csv);
    expect(run.reports.map(row)).toEqual([['incoming/staff/staff.csv', 'loaded', 4, 4, 0, 0]]);
    expect(await waitingRows()).toBe(0);
    expect(await namedRows('fk.staff')).toEqual([
      '{"manager_id": 1, "employee_id": 1}',
      '{"manager_id": 1, "employee_id": 2}',
      '{"manager_id": 2, "employee_id": 3}',
      '{"manager_id": 2, "employee_id": 4}',
    ]);
  });

  it('is refused by the database as any row would be, its neighbours loading', async () => {
    // The refused batch goes to the record-by-record search, which finds the self-naming row refused.
    const csv = 'employee_id,name,manager_id\n5,Refused,5\n6,Dee,6\n7,Eve,6\n';
    const run = await p.load('incoming/staff/refused.csv', csv);
    expect(run.reports.map(row)).toEqual([['incoming/staff/refused.csv', 'loaded', 3, 2, 1, 0]]);
    expect(await rejectKindsOfKey(db, 'incoming/staff/refused.csv')).toEqual(['refused']);
    expect((await rejectsOfKey(db, 'incoming/staff/refused.csv'))[0]?.line).toBe(2);
    expect(await waitingRows()).toBe(0);
    expect((await namedRows('fk.staff')).slice(4)).toEqual([
      '{"manager_id": 6, "employee_id": 6}',
      '{"manager_id": 6, "employee_id": 7}',
    ]);
  });

  it('by a composite key too; a cycle between two rows still waits', async () => {
    // Org 7: its top (1) names itself, 2 and 3 follow it. Org 8: 1 and 2 name each other, a cycle.
    const csv = 'org_id,employee_id,name,manager_id\n7,3,C,2\n7,2,B,1\n7,1,A,1\n8,1,X,2\n8,2,Y,1\n';
    const run = await p.load('incoming/crew/crew.csv', csv);
    expect(run.reports.map(row)).toEqual([['incoming/crew/crew.csv', 'waiting', 5, 3, 0, 2]]);
    expect(await namedRows('fk.crew')).toEqual([
      '{"org_id": 7, "manager_id": 1, "employee_id": 1}',
      '{"org_id": 7, "manager_id": 1, "employee_id": 2}',
      '{"org_id": 7, "manager_id": 2, "employee_id": 3}',
    ]);
    expect(await waitingRows()).toBe(2);
  });
});
