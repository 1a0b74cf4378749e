import { GetObjectCommand } from '@aws-sdk/client-s3';
import { type Kysely, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { statusReports } from '../../cli/report.ts';
import { runExitCode } from '../../cli/run.ts';
import { defineDataset } from '../../shared/config/dataset.ts';
import { rejectsOf } from '../../shared/ledger/ledger.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { handleIngestMessage } from '../../shared/split/ingest-message.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

const people: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('it_people')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('born', 'date')
      .addColumn('score', 'numeric(6, 2)', (c) => c.check(sql`score >= 0`))
      .addColumn('active', 'boolean', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('it_people_log')
      .addColumn('id', 'integer', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .execute();
  },
};

const schema = z.object({
  id: z.coerce.number().int().positive(),
  name: z.string().min(1),
  born: z.iso.date().optional(),
  score: z.coerce.number().optional(),
  active: z.stringbool(),
});

const config = {
  datasets: [
    defineDataset({ name: 'people', format: 'csv', table: 'it_people', mode: 'upsert', key: ['id'], schema }),
    defineDataset({
      name: 'log',
      format: 'csv',
      table: 'it_people_log',
      schema: z.object({ id: z.coerce.number().int(), name: z.string() }),
      chunkBytes: 64 * 1024,
    }),
  ],
  migrations: { '20260101000000_people': people },
};

let p: TestPipeline;
let db: Kysely<Database>;

beforeAll(async () => {
  p = await startTestPipeline(config, ['it_people', 'it_people_log']);
  db = p.deps.db;
});
afterAll(async () => {
  await p?.stop();
});

const peopleRows = () =>
  sql<{
    id: number;
    name: string;
    born: string | null;
    score: string | null;
    active: boolean;
  }>`select id, name, born::text as born, score::text as score, active from it_people order by id`
    .execute(db)
    .then((r) => r.rows);

describe('a CSV file with valid and invalid rows', () => {
  it('loads exactly the valid rows and records each invalid one with line, column and reason', async () => {
    const csv = [
      'id,name,born,score,active',
      '1,Ada,1815-12-10,99.5,true',
      '2,Grace,,12,false',
      '3,,1900-01-01,1,true', // empty name → no value → required
      'x,Bad id,1900-01-01,1,true',
      '4,"Quoted, name",1906-12-09,7.25,yes',
      '5,Too few',
      '6,Neg,2000-01-01,-1,true', // passes zod, refused by the CHECK constraint
      '',
    ].join('\n');
    const { reports } = await p.load('incoming/people/people.csv', csv);
    const report = reports[0];
    expect(report?.state).toBe('loaded');
    expect(report?.rows).toEqual({
      read: 7,
      loaded: 3,
      inserted: 3,
      updated: 0,
      unchanged: 0,
      waiting: 0,
      rejected: 4,
      open: 4,
    });
    expect(await peopleRows()).toEqual([
      { id: 1, name: 'Ada', born: '1815-12-10', score: '99.50', active: true },
      { id: 2, name: 'Grace', born: null, score: '12.00', active: false },
      { id: 4, name: 'Quoted, name', born: '1906-12-09', score: '7.25', active: true },
    ]);
    const file = await db
      .selectFrom('dropload.file')
      .selectAll()
      .where('key', '=', 'incoming/people/people.csv')
      .executeTakeFirstOrThrow();
    const rejects = (await rejectsOf(db, file.id)).map((r) => ({
      line: r.line,
      column: r.column,
      raw: r.raw,
      reason: r.reason,
    }));
    expect(rejects).toEqual([
      { line: 4, column: 'name', raw: '3,,1900-01-01,1,true', reason: 'a value is required (got "")' },
      { line: 5, column: 'id', raw: 'x,Bad id,1900-01-01,1,true', reason: 'not a valid number (got "x")' },
      {
        line: 7,
        column: 'born',
        raw: '5,Too few',
        reason: 'row has 2 fields, the header has 5: "born" and after are missing',
      },
      {
        line: 8,
        column: null,
        raw: '6,Neg,2000-01-01,-1,true',
        reason: expect.stringMatching(
          /^database refused the row: new row for relation "it_people" violates check constraint/,
        ),
      },
    ]);
  });

  it('upserts on the key: a second file updates changed rows in place and inserts new ones', async () => {
    const csv = [
      'id,name,born,score,active',
      '1,Ada Lovelace,1815-12-10,99.5,true',
      '2,Grace,,12,false',
      '9,New,,0,false',
    ].join('\n');
    const { reports } = await p.load('incoming/people/people-2.csv', csv);
    expect(reports[0]?.rows).toEqual({
      read: 3,
      loaded: 3,
      inserted: 1,
      updated: 1,
      unchanged: 1,
      waiting: 0,
      rejected: 0,
      open: 0,
    });
    expect((await peopleRows()).map((r) => [r.id, r.name])).toEqual([
      [1, 'Ada Lovelace'],
      [2, 'Grace'],
      [4, 'Quoted, name'],
      [9, 'New'],
    ]);
  });
});

describe('file-level failures', () => {
  it('records a file under no dataset prefix as skipped, naming its key and the prefixes; run exits 1', async () => {
    const key = 'elsewhere/x.csv';
    const reason =
      'no dataset\'s prefix matches "elsewhere/x.csv"; prefixes: incoming/people/, incoming/log/';
    const run = await p.load(key, 'id,name\n1,a\n');
    expect(run.reports.map((r) => [r.key, r.state, r.rows.read, r.error])).toEqual([
      [key, 'skipped', 0, reason],
    ]);
    expect(runExitCode(run.reports, run.timedOut)).toBe(1);
    const status = (await statusReports(db, 100)).filter((r) => r.key === key);
    expect(status.map((r) => [r.state, r.error])).toEqual([['skipped', reason]]);
    const receipt = await p.stack.s3.send(
      new GetObjectCommand({ Bucket: p.stack.bucket, Key: `reports/${key}.json` }),
    );
    expect(JSON.parse((await receipt.Body?.transformToString()) ?? '{}')).toMatchObject({
      file: key,
      state: 'skipped',
      error: reason,
    });
    const first = await db
      .selectFrom('dropload.file')
      .select(['id', 'state'])
      .where('key', '=', key)
      .execute();
    // Dropped again, the same bytes are the same version: one ledger row, the same answer.
    const again = await p.load(key, 'id,name\n1,a\n');
    expect(again.reports.map((r) => [r.key, r.state, r.error])).toEqual([[key, 'skipped', reason]]);
    const files = await db
      .selectFrom('dropload.file')
      .select(['id', 'state'])
      .where('key', '=', key)
      .execute();
    expect([first.length, files]).toEqual([1, first]);
  });

  it("ignores an announced object under dropload's own prefixes: no ledger row, no receipt (no loop)", async () => {
    const refs = ['reports/elsewhere/x.csv.json', '.dropload/expanded/1/x.csv'].map((key) => ({
      bucket: p.stack.bucket,
      key,
      etag: 'e',
      size: 10,
    }));
    const record = { body: '', messageId: 'm' } as Parameters<typeof handleIngestMessage>[1];
    const delivery = await handleIngestMessage(p.deps, record, refs);
    expect(delivery).toEqual({ splits: [] });
    const files = await db
      .selectFrom('dropload.file')
      .select('key')
      .where(
        'key',
        'in',
        refs.map((r) => r.key),
      )
      .execute();
    expect(files).toEqual([]);
  });

  it('fails a file whose header lacks a required column', async () => {
    const { reports } = await p.load('incoming/people/bad-header.csv', 'id,nam,active\n1,a,true\n');
    expect(reports[0]?.state).toBe('failed');
    expect(reports[0]?.error).toBe('header lacks required column(s) "name"; found "id", "nam", "active"');
  });

  it('fails an empty file', async () => {
    const { reports } = await p.load('incoming/people/empty.csv', '');
    expect(reports[0]?.state).toBe('failed');
    expect(reports[0]?.error).toBe('file is empty (0 bytes)');
  });
});

describe('a file of many chunks', () => {
  it('loads every row once across chunk boundaries, with quoted newlines and CRLF', async () => {
    const lines = ['id,name'];
    for (let i = 1; i <= 20_000; i++)
      lines.push(i % 7 === 0 ? `${i},"multi\r\nline ${i}"` : `${i},name ${i}`);
    const { reports } = await p.load('incoming/log/big.csv', `${lines.join('\r\n')}\r\n`);
    expect(reports[0]?.state).toBe('loaded');
    expect(reports[0]?.chunks.total).toBeGreaterThan(3);
    expect(reports[0]?.rows).toMatchObject({ read: 20_000, loaded: 20_000, rejected: 0 });
    const agg = await sql<{ n: number; distinct_ids: number; sum: string; multi: number }>`
      select count(*)::int as n, count(distinct id)::int as distinct_ids, sum(id)::text as sum,
             count(*) filter (where name like ${'multi\r\nline %'})::int as multi from it_people_log`.execute(
      db,
    );
    expect(agg.rows[0]).toEqual({
      n: 20_000,
      distinct_ids: 20_000,
      sum: String((20_000 * 20_001) / 2),
      multi: 2857,
    });
  });

  it('loads the same object version once when it is announced twice', async () => {
    const before = await sql<{ n: number }>`select count(*)::int as n from it_people_log`.execute(db);
    const { reports } = await p.load('incoming/log/twice.csv', 'id,name\n1,a\n2,b\n');
    const file = await db
      .selectFrom('dropload.file')
      .selectAll()
      .where('key', '=', 'incoming/log/twice.csv')
      .executeTakeFirstOrThrow();
    await p.announce({ bucket: p.stack.bucket, key: file.key, etag: file.etag, size: file.size });
    await new Promise((r) => setTimeout(r, 1500));
    const after = await sql<{ n: number }>`select count(*)::int as n from it_people_log`.execute(db);
    expect(reports[0]?.rows.loaded).toBe(2);
    expect((after.rows[0]?.n ?? 0) - (before.rows[0]?.n ?? 0)).toBe(2);
    const files = await db
      .selectFrom('dropload.file')
      .select('id')
      .where('key', '=', 'incoming/log/twice.csv')
      .execute();
    expect(files).toHaveLength(1);
  });
});
