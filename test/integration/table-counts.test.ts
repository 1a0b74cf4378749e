import { PutObjectCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { defineConfig, defineDataset, type TargetDefinition } from 'dropload';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { renderReports, statusReports } from '../../cli/report.ts';
import { ChunkMessage } from '../../shared/aws/messages.ts';
import { filesByKey } from '../../shared/ledger/ledger.ts';
import type { Database, FileRow } from '../../shared/ledger/schema.ts';
import { loadChunk } from '../../shared/load/load-service.ts';
import { retryRejects } from '../../shared/ops/retry-rejects.ts';
import { receiptFor } from '../../shared/pipeline/receipts.ts';
import type { PipelineDeps } from '../../shared/pipeline/services.ts';
import { splitObject } from '../../shared/split/split-service.ts';
import { expectHonestCounts } from '../support/counts.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/**
 * Issue 16, item 5: a multi-table dataset's file counts records (read = inserted + updated + unchanged
 * + waiting + rejected, whatever the order its targets are declared in) and, per target table, the rows
 * each got; both move in the chunk's transaction, once. Runs on Postgres (DATABASE_URL) and on PGlite.
 */

const TABLES = ['cnt.orders', 'cnt.shippers'];

const shippers: TargetDefinition = { table: 'cnt.shippers', columns: { name: 'shipper' }, key: ['name'] };
const orders: TargetDefinition = {
  table: 'cnt.orders',
  columns: { order_id: 'order_id', amount: 'amount' },
  references: { shipper_ref: { table: 'cnt.shippers', key: { name: 'shipper' } } },
  key: ['order_id'],
};
const schema = z.object({
  order_id: z.coerce.number().int(),
  shipper: z.string(),
  amount: z.coerce.number(),
});

const config = defineConfig({
  datasets: [
    // The same dataset twice, its targets declared in both orders.
    defineDataset({ name: 'shippers-first', format: 'csv', schema, targets: [shippers, orders] }),
    defineDataset({ name: 'orders-first', format: 'csv', schema, targets: [orders, shippers] }),
    // Orders alone: they wait for shippers another file brings.
    defineDataset({ name: 'late-orders', format: 'csv', schema, targets: [orders] }),
  ],
  migrations: {
    '20260301000000_cnt': {
      async up(db: Kysely<unknown>) {
        await sql`create schema if not exists cnt`.execute(db);
        await sql`create table cnt.shippers (id bigint generated always as identity primary key,
          name text not null unique)`.execute(db);
        await sql`create table cnt.orders (id bigint generated always as identity primary key,
          order_id integer not null unique, amount numeric not null,
          shipper_ref bigint not null references cnt.shippers (id))`.execute(db);
      },
    },
  },
});

const SHIPPERS = ['Speedy', 'United', 'Federal'];
/** Orders `from`..`to`, shipped by three shippers in turn; `amount` lets a later file change one. */
const ordersCsv = (from: number, to: number, amount = (id: number) => id * 10) => {
  const lines = ['order_id,shipper,amount'];
  for (let id = from; id <= to; id++) lines.push(`${id},${SHIPPERS[id % 3]},${amount(id)}`);
  return `${lines.join('\n')}\n`;
};

let p: TestPipeline;
let db: Kysely<Database>;
beforeAll(async () => {
  p = await startTestPipeline(config, TABLES, { workers: 1 });
  db = p.deps.db;
});
afterAll(async () => {
  await p?.stop();
});

async function fileOf(key: string): Promise<FileRow> {
  const file = (await filesByKey(db, 'dropload-local', [key])).at(-1);
  if (!file) throw new Error(`no file ${key}`);
  return file;
}

const recordCounts = (f: FileRow) => ({
  read: f.rows_read,
  inserted: f.rows_inserted,
  updated: f.rows_updated,
  unchanged: f.rows_unchanged,
  waiting: f.rows_waiting,
  rejected: f.rows_rejected,
});

async function clear() {
  await sql`truncate cnt.orders, cnt.shippers`.execute(db);
}

describe('counts per target table, and records whatever the target order (issue 16 item 5)', () => {
  for (const dataset of ['shippers-first', 'orders-first']) {
    it(`${dataset}: a fresh load counts 30 records inserted; shippers 3 inserted, 27 unchanged; orders 30`, async () => {
      await clear();
      const key = `incoming/${dataset}/fresh.csv`;
      const run = await p.load(key, ordersCsv(1, 30));
      const tables = [
        { table: 'cnt.orders', inserted: 30, updated: 0, unchanged: 0 },
        { table: 'cnt.shippers', inserted: 3, updated: 0, unchanged: 27 },
      ];
      expect(recordCounts(await fileOf(key))).toEqual({
        read: 30,
        inserted: 30,
        updated: 0,
        unchanged: 0,
        waiting: 0,
        rejected: 0,
      });
      // The run report, status --json and the receipt all carry them.
      expect(run.reports[0]?.tables).toEqual(tables);
      expect((await statusReports(db, 100)).find((r) => r.key === key)?.tables).toEqual(tables);
      expect((await receiptFor(db, await fileOf(key))).tables).toEqual(tables);
      expect(renderReports(run.reports)).toContain(
        `${key}: rows per table: cnt.orders 30 inserted, 0 updated, 0 unchanged; cnt.shippers 3 inserted, 0 updated, 27 unchanged`,
      );
    });
  }

  it('a second file: a changed order is an updated record, a new one inserted, the rest unchanged', async () => {
    await clear();
    await p.load('incoming/shippers-first/day1.csv', ordersCsv(1, 30));
    const key = 'incoming/shippers-first/day2.csv';
    // Order 5 costs more now; order 31 is new; 6..30 as they were.
    await p.load(
      key,
      ordersCsv(5, 31, (id) => (id === 5 ? 999 : id * 10)),
    );
    expect(recordCounts(await fileOf(key))).toEqual({
      read: 27,
      inserted: 1,
      updated: 1,
      unchanged: 25,
      waiting: 0,
      rejected: 0,
    });
    const tables = (await receiptFor(db, await fileOf(key))).tables;
    expect(tables).toEqual([
      { table: 'cnt.orders', inserted: 1, updated: 1, unchanged: 25 },
      { table: 'cnt.shippers', inserted: 0, updated: 0, unchanged: 27 },
    ]);
    // Each per-record table's rows add up to the records written.
    for (const t of tables) expect(t.inserted + t.updated + t.unchanged).toBe(27);
  });
});

describe('records that waited', () => {
  it('count in their tables when a retry writes them, not before', async () => {
    await clear();
    const late = 'incoming/late-orders/late.csv';
    const first = await p.load(late, ordersCsv(101, 106));
    expect(first.reports[0]?.state).toBe('waiting');
    expect(recordCounts(await fileOf(late))).toMatchObject({ read: 6, inserted: 0, waiting: 6 });
    expect((await receiptFor(db, await fileOf(late))).tables).toEqual([]);
    // The shippers land with three orders of another file; the waiting orders load after them.
    await p.load('incoming/shippers-first/brings-shippers.csv', ordersCsv(1, 3));
    const deadline = Date.now() + 30_000;
    while ((await fileOf(late)).state !== 'loaded') {
      if (Date.now() > deadline) throw new Error(`${late} is still ${(await fileOf(late)).state}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(recordCounts(await fileOf(late))).toEqual({
      read: 6,
      inserted: 6,
      updated: 0,
      unchanged: 0,
      waiting: 0,
      rejected: 0,
    });
    expect((await receiptFor(db, await fileOf(late))).tables).toEqual([
      { table: 'cnt.orders', inserted: 6, updated: 0, unchanged: 0 },
    ]);
  });
});

describe('retry-rejects', () => {
  it('moves the record from rejected to inserted, and its rows into their tables', async () => {
    await clear();
    await sql`alter table cnt.orders add constraint orders_amount_check check (amount >= 0)`.execute(db);
    const key = 'incoming/shippers-first/refused.csv';
    // Order 4's amount the table refuses, so none of its record is written (its shipper, United, came with order 1).
    await p.load(
      key,
      ordersCsv(1, 4, (id) => (id === 4 ? -1 : id)),
    );
    expect(recordCounts(await fileOf(key))).toMatchObject({ read: 4, inserted: 3, rejected: 1 });
    expect((await receiptFor(db, await fileOf(key))).tables).toEqual([
      { table: 'cnt.orders', inserted: 3, updated: 0, unchanged: 0 },
      { table: 'cnt.shippers', inserted: 3, updated: 0, unchanged: 0 },
    ]);
    await sql`alter table cnt.orders drop constraint orders_amount_check`.execute(db);
    const retried = await retryRejects({ db, config: p.config, logger: p.deps.logger }, key);
    expect([retried.loaded, retried.inserted]).toEqual([1, 1]);
    expect(recordCounts(await fileOf(key))).toMatchObject({ read: 4, inserted: 4, rejected: 0 });
    expect((await receiptFor(db, await fileOf(key))).tables).toEqual([
      { table: 'cnt.orders', inserted: 4, updated: 0, unchanged: 0 },
      { table: 'cnt.shippers', inserted: 3, updated: 0, unchanged: 1 },
    ]);
    await expectHonestCounts(db);
  });
});

describe('a redelivered chunk does not count again', () => {
  let parked: PipelineDeps;
  beforeAll(async () => {
    const queue = await p.stack.sqs.send(new CreateQueueCommand({ QueueName: 'dropload-cnt-parked' }));
    parked = { ...p.deps, chunkQueueUrl: queue.QueueUrl as string };
  });

  it('twice at once and again later: the file and its tables count the chunk once', async () => {
    await clear();
    const key = 'incoming/orders-first/redelivered.csv';
    const put = await p.stack.s3.send(
      new PutObjectCommand({ Bucket: p.stack.bucket, Key: key, Body: ordersCsv(1, 12) }),
    );
    const split = await splitObject(parked, {
      bucket: p.stack.bucket,
      key,
      etag: put.ETag?.replace(/"/g, ''),
    });
    expect(split.chunks).toBe(1);
    const res = await p.stack.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: parked.chunkQueueUrl,
        MaxNumberOfMessages: 1,
        WaitTimeSeconds: 1,
      }),
    );
    const chunk = ChunkMessage.parse(JSON.parse(res.Messages?.[0]?.Body ?? '{}'));
    const results = await Promise.all([loadChunk(parked, chunk), loadChunk(parked, chunk)]);
    expect(results.map((r) => r.result).sort()).toEqual(['duplicate', 'loaded']);
    expect((await loadChunk(parked, chunk)).result).toBe('duplicate');
    expect(recordCounts(await fileOf(key))).toEqual({
      read: 12,
      inserted: 12,
      updated: 0,
      unchanged: 0,
      waiting: 0,
      rejected: 0,
    });
    expect((await receiptFor(db, await fileOf(key))).tables).toEqual([
      { table: 'cnt.orders', inserted: 12, updated: 0, unchanged: 0 },
      { table: 'cnt.shippers', inserted: 3, updated: 0, unchanged: 9 },
    ]);
  });
});
