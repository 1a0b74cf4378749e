import { gzipSync } from 'node:zlib';
import { DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand } from '@aws-sdk/client-sqs';
import { type Kysely, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ChunkMessage } from '../../shared/aws/messages.ts';
import { resolveConfig } from '../../shared/config/config.ts';
import { defineDataset } from '../../shared/config/dataset.ts';
import { newerVersion, registerFile } from '../../shared/ledger/ledger.ts';
import type { Database, FileRow } from '../../shared/ledger/schema.ts';
import { type LoadOutcome, loadChunk } from '../../shared/load/load-service.ts';
import { newestFileByKey } from '../../shared/ops/rejects.ts';
import { retryRejects } from '../../shared/ops/retry-rejects.ts';
import { writeReceipt } from '../../shared/pipeline/receipts.ts';
import type { PipelineDeps } from '../../shared/pipeline/services.ts';
import { expectHonestCounts } from '../support/counts.ts';
import { splitParked as splitParkedBy } from '../support/parked.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/**
 * `publish: 'file'` under faults: versions of one key that finish in either order or at the same
 * moment (`onNewVersion: 'replace'`), files that fail at the gate, at a check or in a chunk, and the
 * concurrency of one file's chunks. The test delivers chunks itself (from a queue no worker reads),
 * so every interleaving is chosen, not hoped for. Cases that need two transactions open at once run
 * on Postgres only: the embedded PGlite serves one connection, so its transactions never overlap.
 */

const migration: Migration = {
  async up(db: Kysely<unknown>) {
    // No primary key on the snapshot table: two versions' rows must be able to coexist for the race to show.
    await db.schema
      .createTable('pub_snap')
      .addColumn('id', 'integer', (c) => c.notNull())
      .addColumn('label', 'text', (c) => c.notNull())
      .addColumn('source_file', 'bigint')
      .execute();
    await db.schema
      .createTable('pub_fixable')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('label', 'text', (c) => c.notNull())
      .addColumn('source_file', 'bigint')
      .execute();
    await db.schema
      .createTable('pub_shifting')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('label', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('pub_gated')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('label', 'text', (c) => c.notNull())
      .execute();
  },
};

const row = z.object({ id: z.coerce.number().int().positive(), label: z.string().min(1) });
/** A replace dataset whose schema refuses long labels, until a "fix" allows them. */
const fixable = (maxLabel: number) =>
  defineDataset({
    name: 'fixable',
    format: 'csv',
    table: 'pub_fixable',
    schema: row.extend({ label: z.string().min(1).max(maxLabel) }),
    publish: 'file',
    onNewVersion: 'replace',
    sourceColumn: 'source_file',
  });
const config = {
  datasets: [
    fixable(20),
    defineDataset({
      name: 'shifting',
      format: 'csv',
      table: 'pub_shifting',
      schema: row,
      chunkBytes: 64 * 1024,
      publish: 'file',
    }),
    defineDataset({
      name: 'snap',
      format: 'csv',
      table: 'pub_snap',
      schema: row,
      chunkBytes: 64 * 1024,
      publish: 'file',
      onNewVersion: 'replace',
      sourceColumn: 'source_file',
    }),
    defineDataset({
      name: 'gated',
      format: 'csv',
      table: 'pub_gated',
      schema: row,
      chunkBytes: 64 * 1024,
      publish: 'file',
      maxRejects: '10%',
      checks: { unique: ['label'] },
    }),
  ],
  migrations: { '20260101000000_publish_faults': migration },
};

const POSTGRES = Boolean(process.env.DATABASE_URL);

let p: TestPipeline;
let db: Kysely<Database>;
let parked: PipelineDeps;

beforeAll(async () => {
  p = await startTestPipeline(config, ['pub_snap', 'pub_fixable', 'pub_shifting', 'pub_gated'], {
    workers: 2,
  });
  db = p.deps.db;
  // A queue no worker reads: the test hands each chunk to loadChunk in the order it wants.
  const queue = await p.stack.sqs.send(new CreateQueueCommand({ QueueName: 'dropload-publish-parked' }));
  parked = { ...p.deps, chunkQueueUrl: queue.QueueUrl as string };
});
afterAll(async () => {
  await p?.stop();
});

const PAD = 'z'.repeat(40);
function csv(from: number, to: number, bad: number[] = []): string {
  const lines = ['id,label'];
  for (let i = from; i <= to; i++) lines.push(bad.includes(i) ? `${i},` : `${i},row ${i} ${PAD}`);
  return `${lines.join('\n')}\n`;
}
const sumOf = (from: number, to: number) => String(((from + to) * (to - from + 1)) / 2);

const splitParked = (key: string, body: string | Uint8Array) => splitParkedBy(p, parked, key, body);

const load = (chunk: ChunkMessage | undefined): Promise<LoadOutcome> =>
  loadChunk(parked, chunk as ChunkMessage);
const fileRow = (id: number): Promise<FileRow> =>
  db.selectFrom('dropload.file').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

async function tableState(table: string) {
  const r = await sql<{ n: number; sum: string | null; sources: number }>`
    select count(*)::int as n, sum(id)::text as sum, count(distinct source_file)::int as sources
    from ${sql.table(table)}`.execute(db);
  return r.rows[0];
}

/** Rows of the file left in any of the dataset's staging tables (there is one per shape of its target). */
async function stagedRows(dataset: string, fileId: number): Promise<number> {
  const { rows: tables } = await sql<{ name: string }>`
    select tablename as name from pg_tables where schemaname = 'dropload' and tablename like ${`stage\\_${dataset}\\_%`}`.execute(
    db,
  );
  expect(tables.length).toBeGreaterThan(0);
  let n = 0;
  for (const t of tables) {
    const r = await sql<{ n: number }>`select count(*)::int as n from ${sql.table(`dropload.${t.name}`)}
      where __dropload_file_id = ${fileId}`.execute(db);
    n += r.rows[0]?.n ?? 0;
  }
  return n;
}

async function stageTableOf(dataset: string): Promise<string> {
  const { rows } = await sql<{ name: string }>`
    select tablename as name from pg_tables where schemaname = 'dropload' and tablename like ${`stage\\_${dataset}\\_%`}`.execute(
    db,
  );
  expect(rows).toHaveLength(1);
  return `dropload.${rows[0]?.name}`;
}

const SNAP_KEY = 'incoming/snap/daily.csv.gz';
const OLDER = { from: 1, to: 10000 };
const NEWER = { from: 20001, to: 23000 };

/**
 * Two versions of one key, each split and all but its last chunk loaded. They are gzip files: the
 * bucket here keeps no versions, and a gzip file's chunks read its expanded copy, so the older version's
 * chunks still load after the newer one overwrote the key (as any version's do in a versioned bucket).
 */
async function twoVersions(key: string) {
  await sql`delete from pub_snap`.execute(db);
  const older = await splitParked(key, gzipSync(csv(OLDER.from, OLDER.to)));
  const newer = await splitParked(key, gzipSync(csv(NEWER.from, NEWER.to)));
  expect(older.chunks.length).toBeGreaterThan(2);
  expect(newer.chunks.length).toBeGreaterThan(1);
  for (const c of older.chunks.slice(0, -1)) expect((await load(c)).result).toBe('loaded');
  for (const c of newer.chunks.slice(0, -1)) expect((await load(c)).result).toBe('loaded');
  return { older, newer, olderLast: older.chunks.at(-1), newerLast: newer.chunks.at(-1) };
}

async function expectOnlyNewer(older: number, newer: number) {
  expect(await tableState('pub_snap')).toEqual({
    n: NEWER.to - NEWER.from + 1,
    sum: sumOf(NEWER.from, NEWER.to),
    sources: 1,
  });
  const { rows } = await sql<{
    source: string;
  }>`select distinct source_file::text as source from pub_snap`.execute(db);
  expect(rows).toEqual([{ source: String(newer) }]);
  expect(await stagedRows('snap', older)).toBe(0);
  expect(await stagedRows('snap', newer)).toBe(0);
}

describe("onNewVersion: 'replace' with versions finishing in either order", () => {
  it('the newer version publishing last replaces the older one', async () => {
    const v = await twoVersions('incoming/snap/newer-last.csv.gz');
    expect((await load(v.olderLast)).finishedFile?.state).toBe('loaded');
    const done = await load(v.newerLast);
    expect(done.finishedFile?.state).toBe('loaded');
    expect(done.finishedFile?.rows_inserted).toBe(NEWER.to - NEWER.from + 1);
    await expectOnlyNewer(v.older.fileId, v.newer.fileId);
  });

  it('the older version publishing last publishes nothing, ends skipped naming the newer version, and clears its stage', async () => {
    const v = await twoVersions(SNAP_KEY);
    expect((await load(v.newerLast)).finishedFile?.state).toBe('loaded');
    const late = await load(v.olderLast);
    expect(late.result).toBe('loaded');
    const newer = await fileRow(v.newer.fileId);
    expect(late.finishedFile?.state).toBe('skipped');
    expect(late.finishedFile?.error).toBe(
      `superseded: a newer version of s3://${p.stack.bucket}/${SNAP_KEY} (ETag ${newer.etag}, file ${newer.id}) was published first; nothing of this version was published`,
    );
    expect(late.finishedFile?.rows_inserted).toBe(0);
    await expectOnlyNewer(v.older.fileId, v.newer.fileId);
    // The newer version's own counts are untouched by the older one finishing.
    expect([newer.state, newer.rows_inserted]).toEqual(['loaded', NEWER.to - NEWER.from + 1]);
    // Each finished file's receipt is written as it finishes (as the load handler does): the key's one
    // receipt stays the newer version's.
    await writeReceipt(parked, newer);
    await writeReceipt(parked, late.finishedFile as FileRow);
    const res = await p.stack.s3.send(
      new GetObjectCommand({ Bucket: p.stack.bucket, Key: `reports/${SNAP_KEY}.json` }),
    );
    const receipt = JSON.parse((await res.Body?.transformToString()) ?? '{}');
    expect([receipt.etag, receipt.state, receipt.rows.inserted]).toEqual([
      newer.etag,
      'loaded',
      NEWER.to - NEWER.from + 1,
    ]);
  });
});

describe('retry-rejects on a replace dataset', () => {
  it('tags the rows it loads with their file, so the next version replaces them too', async () => {
    const key = 'incoming/fixable/daily.csv';
    const long = `label ${'x'.repeat(30)}`;
    const first = await p.load(key, `id,label\n1,one\n2,${long}\n3,three\n`);
    expect([first.reports[0]?.state, first.reports[0]?.rows.rejected]).toEqual(['loaded', 1]);
    const fixed = resolveConfig({ ...config, datasets: [fixable(100)] }, 'fixed');
    const retried = await retryRejects({ db, config: fixed, logger: p.deps.logger }, key);
    // retry-rejects moves counters too: the identity still holds.
    await expectHonestCounts(db);
    expect(retried).toMatchObject({ retried: 1, loaded: 1, inserted: 1, stillRejected: 0 });
    const file = await newestFileByKey(db, key);
    const tagged = await sql<{ id: number; source: string | null }>`
      select id, source_file::text as source from pub_fixable order by id`.execute(db);
    expect(tagged.rows).toEqual([1, 2, 3].map((id) => ({ id, source: String(file.id) })));

    const second = await p.load(key, 'id,label\n10,ten\n11,eleven\n');
    expect(second.reports[0]?.state).toBe('loaded');
    const left = await sql<{ id: number }>`select id from pub_fixable order by id`.execute(db);
    expect(left.rows.map((r) => r.id)).toEqual([10, 11]);
  });
});

describe("a key's versions are ordered as S3 orders them, not as the pipeline registered them", () => {
  const at = (second: number) => new Date(Date.UTC(2026, 10, 27, 12, 0, second));
  /** Registers (as the split does) two loaded versions of a fresh key, the older one second. */
  async function versions(older: { lastModified?: Date; sequencer?: string }, newer: typeof older) {
    const key = `incoming/snap/order-${Math.random().toString(36).slice(2)}.csv`;
    const register = async (etag: string, order: typeof older) =>
      (
        await registerFile(db, {
          bucket: p.stack.bucket,
          key,
          versionId: etag,
          etag,
          size: 1,
          dataset: 'snap',
          state: 'loaded',
          ...order,
        })
      ).file.id;
    const newerId = await register('newer', newer);
    const olderId = await register('older', older);
    expect((await newerVersion(db, olderId, ['loaded']))?.id).toBe(newerId);
    expect(await newerVersion(db, newerId, ['loaded'])).toBeUndefined();
  }

  it('a later Last-Modified is newer, whichever split registered first', async () => {
    await versions({ lastModified: at(1), sequencer: 'FF' }, { lastModified: at(2), sequencer: '01' });
  });

  it("within one second, the event's greater sequencer is newer (unequal lengths compared right-padded)", async () => {
    await versions(
      { lastModified: at(3), sequencer: '0055AED6DCD90281E4' },
      { lastModified: at(3), sequencer: '0055AED6DCD90281E5' },
    );
    await versions({ lastModified: at(3), sequencer: '0B' }, { lastModified: at(3), sequencer: 'a' });
  });

  it('a version registered before S3 times were kept is older than one with them', async () => {
    await versions({}, { lastModified: at(0) });
  });
});

describe('a failed publish: "file" leaves nothing staged', () => {
  it('the maxRejects gate', async () => {
    const bad = Array.from({ length: 500 }, (_, i) => i * 8 + 1);
    const { reports } = await p.load('incoming/gated/too-many.csv', csv(1, 4000, bad));
    expect(reports[0]?.chunks.total).toBeGreaterThan(1);
    expect(reports[0]?.state).toBe('failed');
    expect(reports[0]?.error).toMatch(/^500 of 4000 rows rejected/);
    const file = await db
      .selectFrom('dropload.file')
      .select('id')
      .where('key', '=', 'incoming/gated/too-many.csv')
      .executeTakeFirstOrThrow();
    expect(await stagedRows('gated', file.id)).toBe(0);
  });

  it('checks.unique', async () => {
    const body = `${csv(5001, 8000).trimEnd()}\n8001,row 5001 ${PAD}\n`;
    const { reports } = await p.load('incoming/gated/dupes.csv', body);
    expect(reports[0]?.chunks.total).toBeGreaterThan(1);
    expect(reports[0]?.error).toBe(
      `column "label" is not unique within the file ("row 5001 ${PAD}" ×2); nothing was published`,
    );
    const file = await db
      .selectFrom('dropload.file')
      .select('id')
      .where('key', '=', 'incoming/gated/dupes.csv')
      .executeTakeFirstOrThrow();
    expect(await stagedRows('gated', file.id)).toBe(0);
  });

  it('a chunk that fails the file (its object deleted mid-load) clears what earlier chunks staged', async () => {
    const key = 'incoming/gated/deleted.csv';
    const { fileId, chunks } = await splitParked(key, csv(10001, 14000));
    expect(chunks.length).toBeGreaterThan(2);
    expect((await load(chunks[0])).result).toBe('loaded');
    expect((await load(chunks[1])).result).toBe('loaded');
    expect(await stagedRows('gated', fileId)).toBeGreaterThan(0);
    await p.stack.s3.send(new DeleteObjectCommand({ Bucket: p.stack.bucket, Key: key }));
    const failed = await load(chunks[2]);
    expect(failed.result).toBe('file-failed');
    expect(failed.finishedFile?.state).toBe('failed');
    expect(failed.finishedFile?.error).toBe(
      `s3://${p.stack.bucket}/${key} no longer exists (deleted or renamed before it was read)`,
    );
    expect(await stagedRows('gated', fileId)).toBe(0);
    const visible = await sql<{
      n: number;
    }>`select count(*)::int as n from pub_gated where id between 10001 and 14000`.execute(db);
    expect(visible.rows).toEqual([{ n: 0 }]);
  });

  it('a migration that changes the table while the file loads fails the file, with nothing staged or published', async () => {
    const { fileId, chunks } = await splitParked('incoming/shifting/straddles.csv', csv(1, 4000));
    expect(chunks.length).toBeGreaterThan(2);
    const first = await load(chunks[0]);
    expect(first.result).toBe('loaded');
    await sql`alter table pub_shifting add column note text`.execute(db);
    let last: LoadOutcome | undefined;
    for (const c of chunks.slice(1)) last = await load(c);
    expect(last?.finishedFile?.state).toBe('failed');
    expect(last?.finishedFile?.error).toBe(
      `table pub_shifting changed shape while the file loaded (a migration ran): ${first.read} of its rows were staged for the earlier shape; nothing was published; drop the file again`,
    );
    expect(await stagedRows('shifting', fileId)).toBe(0);
    const visible = await sql<{ n: number }>`select count(*)::int as n from pub_shifting`.execute(db);
    expect(visible.rows).toEqual([{ n: 0 }]);
  });
});

const HOLD = 424242;

/**
 * Runs `body` while every INSERT statement into `table` waits, at its end, on an advisory lock the test
 * holds (an AFTER INSERT statement trigger takes it shared): a transaction that wrote rows there stays
 * open until `release` is called. The lock's session ends before the trigger goes, whatever happens.
 */
async function withInsertsHeld(table: string, body: (release: () => Promise<void>) => Promise<void>) {
  const lock = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await lock.connect();
  await lock.query('select pg_advisory_lock($1)', [HOLD]);
  await sql`create or replace function pub_hold() returns trigger language plpgsql as $$
    begin perform pg_advisory_xact_lock_shared(${sql.lit(HOLD)}); return null; end $$`.execute(db);
  await sql`create trigger pub_hold after insert on ${sql.table(table)} for each statement execute function pub_hold()`.execute(
    db,
  );
  try {
    await body(() => lock.query('select pg_advisory_unlock($1)', [HOLD]).then(() => undefined));
  } finally {
    await lock.end();
    await sql`drop trigger pub_hold on ${sql.table(table)}`.execute(db);
  }
}
interface Waiter {
  locktype: string;
  objid: number | null;
  relation: string | null;
}
/** Waits until `n` of the database's sessions wait on a lock; returns what each waits for. */
async function waiters(n: number): Promise<Waiter[]> {
  for (;;) {
    const { rows } = await sql<Waiter>`
      select l.locktype, l.objid::int as objid, l.relation::regclass::text as relation
      from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where not l.granted and a.datname = current_database() order by 1, 2, 3`.execute(db);
    if (rows.length >= n) return rows;
    await new Promise((r) => setTimeout(r, 20));
  }
}
const onHold: Waiter = { locktype: 'advisory', objid: HOLD, relation: null };

describe.runIf(POSTGRES)('concurrent transactions (Postgres)', () => {
  it("two versions of a key publishing at the same moment: only the newer one's rows remain", async () => {
    const v = await twoVersions('incoming/snap/together.csv.gz');
    await withInsertsHeld('pub_snap', async (release) => {
      // Both last chunks are in their publishing transactions at once; the first to insert waits there.
      const both = Promise.all([load(v.olderLast), load(v.newerLast)]);
      await waiters(2);
      await release();
      const [older, newer] = await both;
      expect(newer.finishedFile?.state).toBe('loaded');
      expect(['loaded', 'skipped']).toContain(older.finishedFile?.state);
    });
    await expectOnlyNewer(v.older.fileId, v.newer.fileId);
  });

  it('the chunks of one publish: "file" file load at the same time', async () => {
    const { fileId, chunks } = await splitParked('incoming/gated/concurrent.csv', csv(20001, 24000));
    expect(chunks.length).toBeGreaterThan(2);
    expect((await load(chunks[0])).result).toBe('loaded');
    await withInsertsHeld(await stageTableOf('gated'), async (release) => {
      // Chunk 1's transaction is open, its rows written to the stage, when chunk 2 starts; chunk 2 gets
      // as far (its rows written, waiting on the test's lock), not stuck on the stage table or on chunk 1.
      const first = load(chunks[1]);
      expect(await waiters(1)).toEqual([onHold]);
      const second = load(chunks[2]);
      expect(await waiters(2)).toEqual([onHold, onHold]);
      await release();
      expect((await Promise.all([first, second])).map((o) => o.result)).toEqual(['loaded', 'loaded']);
    });
    for (const c of chunks.slice(3)) await load(c);
    const file = await fileRow(fileId);
    expect([file.state, file.rows_inserted]).toEqual(['loaded', 4000]);
    expect(await stagedRows('gated', fileId)).toBe(0);
  });

  it('a chunk that commits after its file failed leaves nothing staged', async () => {
    const key = 'incoming/gated/late-chunk.csv';
    const { fileId, chunks } = await splitParked(key, csv(30001, 34000));
    expect(chunks.length).toBeGreaterThan(2);
    await withInsertsHeld(await stageTableOf('gated'), async (release) => {
      // Chunk 0 has read its bytes and staged its rows, uncommitted, when chunk 1 fails the file.
      const late = load(chunks[0]);
      expect(await waiters(1)).toEqual([onHold]);
      await p.stack.s3.send(new DeleteObjectCommand({ Bucket: p.stack.bucket, Key: key }));
      expect((await load(chunks[1])).result).toBe('file-failed');
      await release();
      // The failed file takes nothing more: the late chunk's transaction is undone whole.
      expect((await late).result).toBe('file-failed');
    });
    const file = await fileRow(fileId);
    expect([file.state, file.error]).toEqual([
      'failed',
      `s3://${p.stack.bucket}/${key} no longer exists (deleted or renamed before it was read)`,
    ]);
    expect(await stagedRows('gated', fileId)).toBe(0);
  });
});
