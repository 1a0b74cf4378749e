import { CreateQueueCommand } from '@aws-sdk/client-sqs';
import { defineConfig, defineDataset } from 'dropload';
import { type Kysely, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { renderReports } from '../../cli/report.ts';
import type { Database, FileRow } from '../../shared/ledger/schema.ts';
import { retryOrphans } from '../../shared/load/orphans.ts';
import { loadParked } from '../support/parked.ts';
import { rejectsOfKey, startTestPipeline, type TestPipeline } from '../support/pipeline.ts';
import { counting } from '../support/statements.ts';

/**
 * Issue 16, item 5: a record that waits on a parent which itself waits on a missing root says so when
 * its wait runs out: the reject names the immediate parent and the root no file brought. Runs on
 * Postgres (DATABASE_URL) and on PGlite.
 */

const TABLES = ['orr.employees', 'orr.staff'];

/** The two datasets, whose records wait `orphanWaitSeconds` for their parents. */
const configOf = (orphanWaitSeconds: number) =>
  defineConfig({
    datasets: [
      defineDataset({
        name: 'employees',
        format: 'csv',
        schema: z.object({ employee_id: z.string(), name: z.string(), reports_to: z.string().optional() }),
        targets: [
          {
            table: 'orr.employees',
            columns: { employee_id: 'employee_id', name: 'name' },
            references: { manager_ref: { table: 'orr.employees', key: { employee_id: 'reports_to' } } },
            key: ['employee_id'],
          },
        ],
        orphanWaitSeconds,
      }),
      // One table whose foreign key references itself: its rows wait as the targets' do.
      defineDataset({
        name: 'staff',
        format: 'csv',
        table: 'orr.staff',
        key: ['employee_id'],
        schema: z.object({ employee_id: z.string(), name: z.string(), reports_to: z.string().optional() }),
        orphanWaitSeconds,
      }),
    ],
    migrations: {
      '20260301000000_orr': {
        async up(db: Kysely<unknown>) {
          await sql`create schema if not exists orr`.execute(db);
          await sql`create table orr.employees (id bigint generated always as identity primary key,
          employee_id text not null unique, name text not null,
          manager_ref bigint references orr.employees (id))`.execute(db);
          await sql`create table orr.staff (employee_id text primary key, name text not null,
          reports_to text references orr.staff (employee_id))`.execute(db);
        },
      },
    },
  });

const config = configOf(1);

let p: TestPipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

async function settled(db: Kysely<Database>, key: string): Promise<FileRow> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const file = await db.selectFrom('dropload.file').selectAll().where('key', '=', key).executeTakeFirst();
    if (file?.state === 'loaded') return file;
    if (Date.now() > deadline) throw new Error(`${key} is still ${file?.state}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('an orphan whose parent waits on a missing root (issue 16 item 5)', () => {
  it('names the root as well as its immediate parent when its wait runs out', async () => {
    p = await startTestPipeline(config, TABLES, {
      waitRetry: { lostAfterSeconds: 1, runningForSeconds: 30 },
      sweepEveryMs: 200,
    });
    const key = 'incoming/employees/employees.csv';
    // Fay reports to Eve, Eve to Carl, Carl to Bob (2), whom no file brings; Ann loads.
    const lines = ['employee_id,name,reports_to', '6,Fay,5', '5,Eve,3', '3,Carl,2', '1,Ann,'];
    await p.load(key, `${lines.join('\n')}\n`);
    const file = await settled(p.deps.db, key);
    expect([file.rows_read, file.rows_inserted, file.rows_rejected, file.rows_waiting]).toEqual([4, 1, 3, 0]);
    expect(await rejectsOfKey(p.deps.db, key)).toEqual([
      {
        line: 2,
        column: 'manager_ref',
        reason:
          'orphan: no orr.employees row with employee_id = 5, which waits in turn for the missing root: orr.employees row with employee_id = 2 (waited 1s)',
        raw: '6,Fay,5',
      },
      {
        line: 3,
        column: 'manager_ref',
        reason:
          'orphan: no orr.employees row with employee_id = 3, which waits in turn for the missing root: orr.employees row with employee_id = 2 (waited 1s)',
        raw: '5,Eve,3',
      },
      {
        line: 4,
        column: 'manager_ref',
        reason: 'orphan: no orr.employees row with employee_id = 2 (waited 1s)',
        raw: '3,Carl,2',
      },
    ]);
  });

  it('the same for a single table whose foreign key references itself', async () => {
    p = await startTestPipeline(config, TABLES, {
      waitRetry: { lostAfterSeconds: 1, runningForSeconds: 30 },
      sweepEveryMs: 200,
    });
    const key = 'incoming/staff/staff.csv';
    await p.load(key, 'employee_id,name,reports_to\n5,Eve,3\n3,Carl,2\n1,Ann,\n');
    await settled(p.deps.db, key);
    expect((await rejectsOfKey(p.deps.db, key)).map((r) => [r.line, r.reason])).toEqual([
      [
        2,
        'orphan: no orr.staff row with employee_id = 3, which waits in turn for the missing root: orr.staff row with employee_id = 2 (waited 1s)',
      ],
      [3, 'orphan: no orr.staff row with employee_id = 2 (waited 1s)'],
    ]);
  });
});

describe('status names the missing roots of chains of waiting rows (review h7 item 1)', () => {
  it('one root: the summary line names it after the parent table', async () => {
    p = await startTestPipeline(configOf(600), TABLES);
    const key = 'incoming/employees/employees.csv';
    // Fay waits for Eve, Eve for Carl (both waiting): their chains end at Bob (2), whom no file brings.
    // Carl waits for Bob directly: simply missing, as the parent table says.
    const run = await p.load(key, 'employee_id,name,reports_to\n6,Fay,5\n5,Eve,3\n3,Carl,2\n1,Ann,\n');
    expect(run.reports[0]?.waiting).toEqual({
      rows: 3,
      lines: 3,
      on: [{ table: 'orr.employees', key: 'employee_id', rows: 3 }],
      roots: ['orr.employees row with employee_id = 2'],
    });
    expect(renderReports(run.reports).split('\n')).toContain(
      `${key}: waiting: 3 rows wait for orr.employees (employee_id); waiting parents lead to the missing root: orr.employees row with employee_id = 2`,
    );
  });

  it('a few roots, those most rows wait behind first, and says there are others', async () => {
    p = await startTestPipeline(configOf(600), TABLES);
    const key = 'incoming/staff/staff.csv';
    // Behind root 2: 6 (via 5, 3) and 5 (via 3); behind root 9: 11 and 13 (via 10); one row each
    // behind 19, 29 and 39. Rows waiting directly on a root (3, 10, 20, 30, 40) have no chain.
    const lines = [
      ['6', '5'],
      ['5', '3'],
      ['3', '2'],
      ['11', '10'],
      ['13', '10'],
      ['10', '9'],
      ['21', '20'],
      ['20', '19'],
      ['31', '30'],
      ['30', '29'],
      ['41', '40'],
      ['40', '39'],
    ].map(([id, boss]) => `${id},E${id},${boss}`);
    const run = await p.load(key, `employee_id,name,reports_to\n${lines.join('\n')}\n`);
    expect(run.reports[0]?.waiting).toEqual({
      rows: 12,
      lines: 12,
      on: [{ table: 'orr.staff', key: 'employee_id', rows: 12 }],
      roots: [
        'orr.staff row with employee_id = 2',
        'orr.staff row with employee_id = 9',
        'orr.staff row with employee_id = 19',
      ],
      moreRoots: true,
    });
    expect(renderReports(run.reports).split('\n')).toContain(
      `${key}: waiting: 12 rows wait for orr.staff (employee_id); waiting parents lead to the missing roots: orr.staff row with employee_id = 2; orr.staff row with employee_id = 9; orr.staff row with employee_id = 19; and others`,
    );
  });
});

describe('the expiry of records waiting behind one parent (review h7 item 2)', () => {
  it("follows that parent's chain once per retry, however many records wait behind it", async () => {
    p = await startTestPipeline(configOf(600), TABLES, { sweepEveryMs: 0 });
    const pipeline = p;
    const queue = await p.stack.sqs.send(new CreateQueueCommand({ QueueName: 'dropload-orphan-root' }));
    const counter = counting();
    const parked = {
      ...p.deps,
      db: p.deps.db.withPlugin(counter.plugin),
      chunkQueueUrl: queue.QueueUrl as string,
    };
    /** The statements of the retry that expires `behind` records reporting to 5 (who reports to 3, to 2). */
    const expiryStatements = async (behind: number) => {
      const ids = Array.from({ length: behind }, (_, i) => 100 * behind + i);
      const lines = [...ids.map((id) => `${id},E${id},5`), '5,Eve,3', '3,Carl,2'];
      const key = `incoming/staff/behind-${behind}.csv`;
      const fileId = await loadParked(
        pipeline,
        parked,
        key,
        `employee_id,name,reports_to\n${lines.join('\n')}\n`,
      );
      await sql`update dropload.orphan set expires_at = now() where file_id = ${fileId}`.execute(
        pipeline.deps.db,
      );
      const before = counter.statements();
      const outcome = await retryOrphans(parked, { kind: 'orphans', fileId, attempt: 1 });
      expect([outcome.result, outcome.expired, outcome.rejected, outcome.waiting]).toEqual([
        'retried',
        behind + 2,
        behind + 2,
        0,
      ]);
      const reasons = (await rejectsOfKey(pipeline.deps.db, key)).map((r) => r.reason);
      expect(reasons[0]).toBe(
        'orphan: no orr.staff row with employee_id = 5, which waits in turn for the missing root: orr.staff row with employee_id = 2 (waited 600s)',
      );
      expect(new Set(reasons.slice(0, behind)).size).toBe(1);
      return counter.statements() - before;
    };
    expect(await expiryStatements(6)).toBe(await expiryStatements(1));
  });
});
