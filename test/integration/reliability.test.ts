import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand, type Message, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { type Kysely, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type FileReport, fileNotes, renderReports, reportsOf, statusReports } from '../../cli/report.ts';
import { toRecord } from '../../local/event-source.ts';
import { ChunkMessage } from '../../shared/aws/messages.ts';
import { notificationFor } from '../../shared/aws/s3-events.ts';
import { defineDataset } from '../../shared/config/dataset.ts';
import { maxReceiveCount, RETRY_POLICY } from '../../shared/core/backoff.ts';
import { DROP_AGAIN } from '../../shared/core/errors.ts';
import { createDb, createPool } from '../../shared/ledger/connection.ts';
import type { Database, FileRow } from '../../shared/ledger/schema.ts';
import { handleLoadMessage } from '../../shared/load/load-message.ts';
import { loadChunk } from '../../shared/load/load-service.ts';
import { retryRejects } from '../../shared/ops/retry-rejects.ts';
import { receiptFor } from '../../shared/pipeline/receipts.ts';
import type { PipelineDeps } from '../../shared/pipeline/services.ts';
import { handleIngestMessage } from '../../shared/split/ingest-message.ts';
import { splitObject } from '../../shared/split/split-service.ts';
import { splitParked as splitParkedBy } from '../support/parked.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

const tables: Migration = {
  async up(db: Kysely<unknown>) {
    for (const name of ['rel_items', 'rel_gated', 'rel_snap', 'rel_latest']) {
      await db.schema
        .createTable(name)
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('label', 'text', (c) => c.notNull())
        .addColumn('source_file', 'bigint')
        .execute();
    }
  },
};

const row = z.object({ id: z.coerce.number().int().positive(), label: z.string().min(1) });
const config = {
  datasets: [
    defineDataset({ name: 'items', format: 'csv', table: 'rel_items', schema: row, chunkBytes: 64 * 1024 }),
    defineDataset({
      name: 'gated',
      format: 'csv',
      table: 'rel_gated',
      schema: row,
      chunkBytes: 64 * 1024,
      publish: 'file',
      maxRejects: '10%',
      checks: { minRows: 2, unique: ['label'] },
    }),
    defineDataset({
      name: 'latest',
      format: 'csv',
      table: 'rel_latest',
      mode: 'upsert',
      key: ['id'],
      schema: row,
      chunkBytes: 64 * 1024,
    }),
    defineDataset({
      name: 'snap',
      format: 'csv',
      table: 'rel_snap',
      schema: row,
      publish: 'file',
      onNewVersion: 'replace',
      sourceColumn: 'source_file',
    }),
  ],
  migrations: { '20260101000000_rel': tables },
};

let p: TestPipeline;
let db: Kysely<Database>;
const count = async (table: string) =>
  (await sql<{ n: number }>`select count(*)::int as n from ${sql.table(table)}`.execute(db)).rows[0]?.n;

beforeAll(async () => {
  p = await startTestPipeline(config, ['rel_items', 'rel_gated', 'rel_snap', 'rel_latest'], { workers: 4 });
  db = p.deps.db;
});
afterAll(async () => {
  await p?.stop();
});

// Long enough that a few thousand rows span several 64 KiB chunks.
const PAD = 'x'.repeat(32);

function csv(from: number, to: number, bad: number[] = []): string {
  const lines = ['id,label'];
  for (let i = from; i <= to; i++) lines.push(bad.includes(i) ? `${i},` : `${i},label ${i} ${PAD}`);
  return `${lines.join('\n')}\n`;
}

describe('receipts', () => {
  it('writes reports/<key>.json with the counts and the first rejects', async () => {
    await p.load('incoming/items/receipt.csv', csv(1, 5, [3]));
    const res = await p.stack.s3.send(
      new GetObjectCommand({ Bucket: p.stack.bucket, Key: 'reports/incoming/items/receipt.csv.json' }),
    );
    const receipt = JSON.parse(await (res.Body?.transformToString() ?? Promise.resolve('{}')));
    expect(receipt).toMatchObject({
      file: 'incoming/items/receipt.csv',
      dataset: 'items',
      state: 'loaded',
      error: null,
      rows: { read: 5, inserted: 4, updated: 0, unchanged: 0, waiting: 0, rejected: 1 },
      firstRejects: [
        { line: 4, column: 'label', kind: 'invalid', reason: 'a value is required (got "")', raw: '3,' },
      ],
    });
  });
});

describe('per-file atomic publish', () => {
  it('fails the whole file when rejects pass the gate, leaving nothing visible', async () => {
    // 4000 rows over several chunks, 500 of them bad: 12.5% > 10%.
    const bad = Array.from({ length: 500 }, (_, i) => i * 8 + 1);
    const { reports } = await p.load('incoming/gated/too-many.csv', csv(1, 4000, bad));
    expect(reports[0]?.chunks.total).toBeGreaterThan(1);
    expect(reports[0]?.state).toBe('failed');
    expect(reports[0]?.error).toBe(
      "500 of 4000 rows rejected, over the dataset's limit of 10% of rows (maxRejects); nothing was published",
    );
    expect(await count('rel_gated')).toBe(0);
    const staged = await sql<{
      n: number;
    }>`select count(*)::int as n from pg_tables where schemaname = 'dropload' and tablename like 'stage_gated_%'`.execute(
      db,
    );
    expect(staged.rows[0]?.n).toBe(1);
  });

  it('publishes every row of a file under the gate at once', async () => {
    const bad = Array.from({ length: 300 }, (_, i) => i * 10 + 2);
    const { reports } = await p.load('incoming/gated/fine.csv', csv(1, 4000, bad));
    expect(reports[0]?.state).toBe('loaded');
    expect(reports[0]?.rows).toEqual({
      read: 4000,
      loaded: 3700,
      inserted: 3700,
      updated: 0,
      unchanged: 0,
      waiting: 0,
      rejected: 300,
      open: 300,
    });
    expect(await count('rel_gated')).toBe(3700);
  });

  it('fails a file whose column must be unique within it, naming the duplicates', async () => {
    const { reports } = await p.load('incoming/gated/dupes.csv', 'id,label\n10001,a\n10002,b\n10003,a\n');
    expect(reports[0]?.state).toBe('failed');
    expect(reports[0]?.error).toBe(
      'column "label" is not unique within the file ("a" ×2); nothing was published',
    );
    expect(await count('rel_gated')).toBe(3700);
  });

  it('fails a file with fewer valid rows than checks.minRows', async () => {
    const { reports } = await p.load('incoming/gated/tiny.csv', 'id,label\n20001,only\n');
    expect(reports[0]?.error).toBe(
      'file has 1 valid rows, fewer than checks.minRows (2); nothing was published',
    );
  });
});

describe('upsert across chunks', () => {
  it("keeps the file's last line per key, whatever order workers pick chunks up in", async () => {
    for (const round of [1, 2, 3]) {
      const lines = ['id,label', `1,FIRST ${round}`];
      for (let i = 2; i <= 6000; i++) lines.push(`${i},row ${i} ${PAD}`);
      lines.push(`1,LAST ${round}`);
      const { reports } = await p.load(`incoming/latest/round-${round}.csv`, `${lines.join('\n')}\n`);
      expect(reports[0]?.chunks.total).toBeGreaterThan(3);
      expect(reports[0]?.rows.read).toBe(6001);
      const { rows } = await sql<{ label: string }>`select label from rel_latest where id = 1`.execute(db);
      expect(rows).toEqual([{ label: `LAST ${round}` }]);
    }
  });
});

describe('new versions of a key', () => {
  it('replace: the new version removes the previous version’s rows in the publishing transaction', async () => {
    await p.load('incoming/snap/today.csv', csv(1, 3));
    const first = await sql<{
      id: number;
      source_file: number;
    }>`select id, source_file::int as source_file from rel_snap order by id`.execute(db);
    expect(first.rows.map((r) => r.id)).toEqual([1, 2, 3]);
    const { reports } = await p.load('incoming/snap/today.csv', csv(2, 5));
    expect(reports[0]?.state).toBe('loaded');
    const second = await sql<{
      id: number;
      source_file: number;
    }>`select id, source_file::int as source_file from rel_snap order by id`.execute(db);
    expect(second.rows.map((r) => r.id)).toEqual([2, 3, 4, 5]);
    expect(new Set(second.rows.map((r) => r.source_file)).size).toBe(1);
    expect(second.rows[0]?.source_file).not.toBe(first.rows[0]?.source_file);
  });

  it('append: a corrected re-upload of the same key is a new load, not skipped', async () => {
    const before = await count('rel_items');
    await p.load('incoming/items/again.csv', csv(100, 101));
    await p.load('incoming/items/again.csv', csv(102, 104));
    expect(((await count('rel_items')) ?? 0) - (before ?? 0)).toBe(5);
  });
});

describe('status reads one snapshot', () => {
  it("a file's row and its open rejects agree, though a chunk commits between the two reads", async () => {
    const key = 'incoming/items/snapshot.csv';
    await p.load(key, csv(90000, 90009, [90003]));
    const file = await db
      .selectFrom('dropload.file')
      .selectAll()
      .where('key', '=', key)
      .executeTakeFirstOrThrow();
    expect([file.state, file.rows_rejected]).toEqual(['loaded', 1]);
    const waitingForLock = async () => {
      for (;;) {
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock' and query ilike '%dropload%reject%'`.execute(
          db,
        );
        if (rows[0]?.n) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const report = await db.connection().execute(async (chunk) => {
      // Holds the rejects while status reads: it reads the files, then waits for the rejects here.
      await sql`begin`.execute(chunk);
      await sql`lock table dropload.reject in access exclusive mode`.execute(chunk);
      const reading = statusReports(db, 500);
      await waitingForLock();
      // What a chunk's commit does meanwhile: one more reject, counted on its file in the same transaction.
      await sql`insert into dropload.reject (file_id, chunk_idx, line, kind, reason, raw)
        select file_id, chunk_idx, 99, kind, reason, raw from dropload.reject where file_id = ${file.id}`.execute(
        chunk,
      );
      await sql`update dropload.file set rows_rejected = rows_rejected + 1, rows_inserted = rows_inserted - 1
        where id = ${file.id}`.execute(chunk);
      await sql`commit`.execute(chunk);
      return (await reading).find((r) => r.key === key);
    });
    // Both as they were when status began (1 and 1), never the row's 1 with the commit's 2 open.
    expect([report?.rows.rejected, report?.rows.open]).toEqual([1, 1]);
  });
});

describe('exactly once, with chunks the test delivers itself', () => {
  let parked: PipelineDeps;

  beforeAll(async () => {
    const queue = await p.stack.sqs.send(new CreateQueueCommand({ QueueName: 'dropload-parked' }));
    parked = { ...p.deps, chunkQueueUrl: queue.QueueUrl as string };
  });

  const splitParked = async (key: string, body: string) => (await splitParkedBy(p, parked, key, body)).chunks;
  /** A file split, its first two chunks loaded, its key overwritten by `newer`, then its third chunk run. */
  const overwrittenAtThirdChunk = async (key: string, body: string, newer: string) => {
    const chunks = await splitParked(key, body);
    for (const c of chunks.slice(0, 2)) expect((await loadChunk(parked, c)).result).toBe('loaded');
    await p.stack.s3.send(new PutObjectCommand({ Bucket: p.stack.bucket, Key: key, Body: newer }));
    const outcome = await loadChunk(parked, chunks[2] as ChunkMessage);
    return { chunks, outcome, file: outcome.finishedFile as FileRow };
  };

  it('a split whose chunk messages the queue refuses is retried, not resumed: no resume counted, stalled when its budget is spent', async () => {
    const key = 'incoming/items/refused.csv';
    const put = await p.stack.s3.send(
      new PutObjectCommand({ Bucket: p.stack.bucket, Key: key, Body: csv(30000, 30099) }),
    );
    const ref = { bucket: p.stack.bucket, key, etag: put.ETag?.replace(/"/g, ''), size: 1 };
    // The fault: a chunk queue that does not exist refuses every message, after the split recorded its plan.
    const refusing = {
      ...parked,
      chunkQueueUrl: parked.chunkQueueUrl.replace(/dropload-parked$/, 'dropload-nowhere'),
    };
    const max = maxReceiveCount(p.deps.retry ?? RETRY_POLICY);
    const deliver = (deps: PipelineDeps, count: number) =>
      handleIngestMessage(
        deps,
        toRecord(
          {
            MessageId: 'm',
            ReceiptHandle: 'r',
            Body: notificationFor(ref),
            Attributes: { ApproximateReceiveCount: String(count) },
          },
          'arn:aws:sqs:us-east-1:000000000000:ingest',
          'us-east-1',
        ),
        [ref],
      );
    const state = () =>
      db
        .selectFrom('dropload.file')
        .select(['state', 'resumes', 'error'])
        .where('key', '=', key)
        .executeTakeFirstOrThrow();
    for (let count = 1; count < max; count++)
      expect((await deliver(refusing, count)).failed?.settled).toBe('retry');
    const retried = await state();
    expect([retried.state, retried.resumes]).toEqual(['loading', 0]);
    expect(retried.error).toMatch(
      new RegExp(`^split delivery ${max - 1} of ${max} failed; next try within \\d+ s: `),
    );

    // Its last delivery spends the budget: stalled, still no resume, and nothing says "nothing to do".
    await deliver(refusing, max);
    const stalled = await state();
    expect([stalled.state, stalled.resumes]).toEqual(['stalled', 0]);
    const file = await db
      .selectFrom('dropload.file')
      .selectAll()
      .where('key', '=', key)
      .executeTakeFirstOrThrow();
    const lines = renderReports(await reportsOf(db, [file])).split('\n');
    expect(lines.filter((l) => l.includes('resumed') || l.includes('nothing to do'))).toEqual([]);
  });

  it('an upsert file is handed out one chunk at a time: split sends the first, each load the next', async () => {
    const lines = ['id,label', '1,FIRST'];
    for (let i = 2; i <= 4000; i++) lines.push(`${i},row ${i} ${PAD}`);
    lines.push('1,LAST');
    const key = 'incoming/latest/chained.csv';
    const put = await p.stack.s3.send(
      new PutObjectCommand({ Bucket: p.stack.bucket, Key: key, Body: `${lines.join('\n')}\n` }),
    );
    const outcome = await splitObject(parked, {
      bucket: p.stack.bucket,
      key,
      etag: put.ETag?.replace(/"/g, ''),
    });
    expect(outcome.chunks).toBe(1);
    const seen: number[] = [];
    for (;;) {
      const res = await p.stack.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: parked.chunkQueueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
        }),
      );
      const messages = (res.Messages ?? []).map((m) => ChunkMessage.parse(JSON.parse(m.Body ?? '{}')));
      if (messages.length === 0) break;
      expect(messages).toHaveLength(1);
      const [message] = messages as [ChunkMessage];
      seen.push(message.index);
      // What the load Lambda runs for the delivery: the load, then the next chunk sent.
      const record = toRecord((res.Messages ?? [])[0] as Message, 'dropload-parked', 'us-east-1');
      expect((await handleLoadMessage(parked, record, message)).kind).toBe('chunk');
    }
    expect(seen).toEqual([...Array(seen.length).keys()]);
    expect(seen.length).toBeGreaterThan(2);
    const { rows } = await sql<{ label: string }>`select label from rel_latest where id = 1`.execute(db);
    expect(rows).toEqual([{ label: 'LAST' }]);
  });

  it('a chunk delivered twice at once and again later loads once', async () => {
    const [chunk] = await splitParked('incoming/items/race.csv', csv(500, 549));
    const results = await Promise.all([
      loadChunk(parked, chunk as ChunkMessage),
      loadChunk(parked, chunk as ChunkMessage),
    ]);
    const again = await loadChunk(parked, chunk as ChunkMessage);
    expect(results.map((r) => r.result).sort()).toEqual(['duplicate', 'loaded']);
    expect(again.result).toBe('duplicate');
    const n = await sql<{
      n: number;
    }>`select count(*)::int as n from rel_items where id between 500 and 549`.execute(db);
    expect(n.rows[0]?.n).toBe(50);
    const file = await db
      .selectFrom('dropload.file')
      .selectAll()
      .where('key', '=', 'incoming/items/race.csv')
      .executeTakeFirstOrThrow();
    expect([file.state, file.rows_read, file.rows_inserted, file.chunks_done]).toEqual(['loaded', 50, 50, 1]);
  });

  it('a message from an earlier plan of the file (another byte range) claims nothing; the current one loads', async () => {
    const [chunk] = await splitParked('incoming/items/replanned.csv', csv(9000, 9009));
    const current = chunk as ChunkMessage;
    const loadedIds = async () =>
      (
        await sql<{
          n: number;
        }>`select count(*)::int as n from rel_items where id between 9000 and 9009`.execute(db)
      ).rows[0]?.n;
    expect((await loadChunk(parked, { ...current, end: current.end - 1 })).result).toBe('duplicate');
    expect(await loadedIds()).toBe(0);
    expect((await loadChunk(parked, current)).result).toBe('loaded');
    expect(await loadedIds()).toBe(10);
  });

  it('chunks delivered out of order all load and the file finishes once', async () => {
    const chunks = await splitParked('incoming/items/shuffled.csv', csv(1000, 4999));
    expect(chunks.length).toBeGreaterThan(2);
    for (const c of [...chunks].reverse()) await loadChunk(parked, c);
    const file = await db
      .selectFrom('dropload.file')
      .selectAll()
      .where('key', '=', 'incoming/items/shuffled.csv')
      .executeTakeFirstOrThrow();
    expect([file.state, file.rows_read, file.rows_inserted, file.chunks_done]).toEqual([
      'loaded',
      4000,
      4000,
      chunks.length,
    ]);
  });

  it('an object overwritten after the split fails its file with the reason; the load stays pinned', async () => {
    const [chunk] = await splitParked('incoming/items/overwritten.csv', csv(6000, 6009));
    await p.stack.s3.send(
      new PutObjectCommand({
        Bucket: p.stack.bucket,
        Key: 'incoming/items/overwritten.csv',
        Body: csv(7000, 7001),
      }),
    );
    const outcome = await loadChunk(parked, chunk as ChunkMessage);
    expect(outcome.result).toBe('file-failed');
    expect(outcome.reason).toMatch(
      /^s3:\/\/dropload-local\/incoming\/items\/overwritten\.csv was overwritten before all of it was read/,
    );
    expect(
      await sql<{ n: number }>`select count(*)::int as n from rel_items where id between 6000 and 7001`
        .execute(db)
        .then((r) => r.rows[0]?.n),
    ).toBe(0);
  });

  it('an upsert file overwritten mid-load: its advice deletes none of the rows the newer version took over', async () => {
    const key = 'incoming/latest/prod.csv';
    const version = (price: string) => {
      const lines = ['id,label'];
      for (let i = 50000; i <= 53999; i++) lines.push(`${i},${price} ${PAD}`);
      return `${lines.join('\n')}\n`;
    };
    // Chained (upsert): each load sends the next chunk; `next` runs the one waiting, as the load Lambda would.
    const next = async () => {
      const res = await p.stack.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: parked.chunkQueueUrl,
          MaxNumberOfMessages: 1,
          WaitTimeSeconds: 1,
        }),
      );
      const m = res.Messages?.[0];
      if (!m) return undefined;
      return handleLoadMessage(
        parked,
        toRecord(m, 'dropload-parked', 'us-east-1'),
        ChunkMessage.parse(JSON.parse(m.Body ?? '{}')),
      );
    };
    const split = async (body: string) => {
      const put = await p.stack.s3.send(
        new PutObjectCommand({ Bucket: p.stack.bucket, Key: key, Body: body }),
      );
      return splitObject(parked, { bucket: p.stack.bucket, key, etag: put.ETag?.replace(/"/g, '') });
    };
    const v1 = await split(version('1.00'));
    await next();
    await next();
    // v2 uploaded over it before its third chunk ran.
    await p.stack.s3.send(new PutObjectCommand({ Bucket: p.stack.bucket, Key: key, Body: version('2.00') }));
    await next();
    const failed = await db
      .selectFrom('dropload.file')
      .selectAll()
      .where('id', '=', v1.fileId)
      .executeTakeFirstOrThrow();
    const third = await db
      .selectFrom('dropload.chunk')
      .select('first_line')
      .where('file_id', '=', v1.fileId)
      .where('idx', '=', 2)
      .executeTakeFirstOrThrow();
    const loaded = failed.rows_inserted;
    expect([failed.state, failed.chunks_done, loaded]).toEqual(['failed', 2, third.first_line - 2]);
    const v2 = await split(version('2.00'));
    while (await next());
    const newer = await db
      .selectFrom('dropload.file')
      .selectAll()
      .where('id', '=', v2.fileId)
      .executeTakeFirstOrThrow();
    expect([newer.state, newer.rows_inserted, newer.rows_updated]).toEqual(['loaded', 4000 - loaded, loaded]);
    // None of v1's values remain: every row is v2's.
    const { rows } = await sql<{ n: number; v2: number }>`
      select count(*)::int as n, count(*) filter (where label like '2.00 %')::int as v2 from rel_latest
      where id between 50000 and 53999`.execute(db);
    expect(rows).toEqual([{ n: 4000, v2: 4000 }]);

    const etag = (
      await db
        .selectFrom('dropload.file')
        .select('etag')
        .where('id', '=', v1.fileId)
        .executeTakeFirstOrThrow()
    ).etag;
    expect(failed.error).toBe(
      `s3://dropload-local/${key} was overwritten before all of it was read (ETag ${etag} is gone); the new version loads as its own file; ` +
        `chunk(s) 1, 2 of ${failed.chunk_count} had loaded before that: ${loaded} rows of this version went into table rel_latest (${loaded} inserted, 0 updated), ` +
        `the other ${(failed.chunk_count ?? 0) - 2} chunk(s) were not loaded; the newer version upserts on the same key: each of those rows whose key it also has takes its values when it loads`,
    );
    expect(failed.action).toBe(
      `do not delete this version's ${loaded} rows by key: the rows of the keys the newer version also has are its rows now. ` +
        `Once it has loaded, remove only what remains of this one, if anything: delete, by their keys, only the rows of lines 2–${third.first_line - 1} ` +
        'of this version whose keys the newer version does not have (the rows carry no file id: no sourceColumn)',
    );
    // status tells what the newer version wrote since: it updated exactly the keys v1 had loaded.
    const [report] = await reportsOf(db, [failed]);
    expect(report?.newer).toEqual({
      fileId: v2.fileId,
      inserted: 4000 - loaded,
      updated: loaded,
      unchanged: 0,
    });
    expect(fileNotes(report as FileReport).map((n) => n.line)).toEqual([
      `${key}: FAILED: ${failed.error}`,
      `${key}: to do: ${failed.action}`,
      `${key}: a newer version of its key has loaded since (file ${v2.fileId}: ${4000 - loaded} inserted, ${loaded} updated, 0 unchanged)`,
    ]);
  });

  it("a file of a dataset with no key overwritten mid-load: its rows stay beside the newer version's, to remove", async () => {
    const key = 'incoming/items/twice.csv';
    const { chunks, outcome, file } = await overwrittenAtThirdChunk(
      key,
      csv(60000, 63999),
      csv(60000, 60009),
    );
    expect([outcome.result, file.chunks_done]).toEqual(['file-failed', 2]);
    const rows = file.rows_inserted;
    expect(file.action).toBe(
      `${rows} rows of it stay in table rel_items: they stay beside the newer version's rows (the dataset has no key; ` +
        "where the table has a unique key, the newer version's rows of the same keys are refused instead); " +
        `remove them (delete its rows from lines 2–${(chunks[2]?.firstLine ?? 0) - 1} of the file by their values (the dataset has no key) (the rows carry no file id: no sourceColumn)), ` +
        `then \`npx dropload retry-rejects ${key}\` loads the newer version's rows refused meanwhile as duplicate keys`,
    );
  });

  it("a dataset with no key over a table with one, overwritten mid-load: following its advice leaves exactly the newer version's rows", async () => {
    // The trial's case: the dataset names no key, the table has a primary key, so the newer version's
    // rows of keys this one loaded are refused as duplicates, not appended beside them.
    const key = 'incoming/items/twice-keyed.csv';
    const newer = csv(64000, 64009).replaceAll('label ', 'newer ');
    const { chunks, file } = await overwrittenAtThirdChunk(key, csv(64000, 67999), newer);
    const lastLine = (chunks[2]?.firstLine ?? 0) - 1;
    expect(file.action).toBe(
      `${file.rows_inserted} rows of it stay in table rel_items: they stay beside the newer version's rows (the dataset has no key; ` +
        "where the table has a unique key, the newer version's rows of the same keys are refused instead); " +
        `remove them (delete its rows from lines 2–${lastLine} of the file by their values (the dataset has no key) (the rows carry no file id: no sourceColumn)), ` +
        `then \`npx dropload retry-rejects ${key}\` loads the newer version's rows refused meanwhile as duplicate keys`,
    );
    for (const c of await splitParked(key, newer)) expect((await loadChunk(parked, c)).result).toBe('loaded');
    // The advice, step by step: this version's rows by their lines' values, then the newer one's rejects.
    await sql`delete from rel_items where id between 64000 and ${64000 + lastLine - 2}`.execute(db);
    const retried = await retryRejects({ db, config: p.deps.config, logger: p.deps.logger }, key);
    expect([retried.loaded, retried.stillRejected]).toEqual([10, 0]);
    const { rows } = await sql<{ n: number; newer: number }>`
      select count(*)::int as n, count(*) filter (where label like 'newer %')::int as newer from rel_items
      where id between 64000 and 67999`.execute(db);
    expect(rows).toEqual([{ n: 10, newer: 10 }]);
  });

  it('a publish: "file" file overwritten mid-load: nothing of it was published, and its failure claims no rows', async () => {
    const key = 'incoming/gated/twice.csv';
    const { outcome, file } = await overwrittenAtThirdChunk(key, csv(70000, 73999), csv(70000, 70009));
    expect([outcome.result, file.chunks_done, file.action]).toEqual(['file-failed', 2, DROP_AGAIN]);
    expect(file.error).toBe(
      `s3://dropload-local/${key} was overwritten before all of it was read (ETag ${file.etag} is gone); the new version loads as its own file`,
    );
    const { rows } = await sql<{
      n: number;
    }>`select count(*)::int as n from rel_gated where id between 70000 and 73999`.execute(db);
    expect(rows).toEqual([{ n: 0 }]);
  });

  it('an object deleted before its chunks run fails its file, once, without retries', async () => {
    const [chunk] = await splitParked('incoming/items/deleted.csv', csv(8000, 8009));
    await p.stack.s3.send(
      new DeleteObjectCommand({ Bucket: p.stack.bucket, Key: 'incoming/items/deleted.csv' }),
    );
    const outcome = await loadChunk(parked, chunk as ChunkMessage);
    expect(outcome.result).toBe('file-failed');
    expect(outcome.finishedFile?.state).toBe('failed');
    expect(outcome.finishedFile?.error).toBe(
      's3://dropload-local/incoming/items/deleted.csv no longer exists (deleted or renamed before it was read)',
    );
    expect(outcome.finishedFile?.action).toBe(DROP_AGAIN);
  });

  it('a file renamed while it loads fails saying which chunks loaded, how many of its rows are in the table, and what to do', async () => {
    const key = 'incoming/items/renamed.csv';
    const chunks = await splitParked(key, csv(20000, 23999));
    expect(chunks.length).toBeGreaterThan(2);
    for (const c of chunks.slice(0, 2))
      expect((await loadChunk(parked, c as ChunkMessage)).result).toBe('loaded');
    // `aws s3 mv` deletes the old key (its copy under the new key is announced as a file of its own).
    await p.stack.s3.send(new DeleteObjectCommand({ Bucket: p.stack.bucket, Key: key }));
    const outcome = await loadChunk(parked, chunks[2] as ChunkMessage);
    expect(outcome.result).toBe('file-failed');
    const file = outcome.finishedFile as FileRow;
    const inTable = await sql<{
      n: number;
    }>`select count(*)::int as n from rel_items where id between 20000 and 23999`
      .execute(db)
      .then((r) => r.rows[0]?.n);
    expect([file.state, file.chunks_done, file.rows_inserted]).toEqual(['failed', 2, inTable]);
    const lines = await db
      .selectFrom('dropload.chunk')
      .select('first_line')
      .where('file_id', '=', file.id)
      .orderBy('idx')
      .execute();
    const rest = chunks.length - 2;
    expect(file.error).toBe(
      `s3://dropload-local/${key} no longer exists (deleted or renamed before it was read); chunk(s) 1, 2 of ${chunks.length} had loaded before that: ${inTable} rows of this file are in table rel_items (${inTable} inserted, 0 updated), the other ${rest} chunk(s) were not loaded`,
    );
    const action = `${inTable} rows of it stay in table rel_items: if it was renamed or replaced, the new key loads in full, so remove them (delete its rows from lines 2–${(lines[2]?.first_line ?? 0) - 1} of the file by their values (the dataset has no key) (the rows carry no file id: no sourceColumn)); otherwise remove them and drop the file again`;
    expect(file.action).toBe(action);
    expect(await receiptFor(db, file)).toMatchObject({ state: 'failed', error: file.error, action });
  });

  it('a chunk that reads its bytes before its file fails and commits after loads nothing: what the failure says stays true', async () => {
    const key = 'incoming/items/late.csv';
    const chunks = await splitParked(key, csv(30000, 33999));
    expect(chunks.length).toBeGreaterThan(2);
    expect((await loadChunk(parked, chunks[0] as ChunkMessage)).result).toBe('loaded');
    // Another session holds the table: chunk 2 reads its bytes, claims itself, and waits to write.
    const holder = createDb(createPool({ connectionString: p.stack.databaseUrl, poolMax: 1 }));
    try {
      let release: () => void = () => {};
      const released = new Promise<void>((r) => {
        release = r;
      });
      let locked: () => void = () => {};
      const isLocked = new Promise<void>((r) => {
        locked = r;
      });
      const holding = holder.transaction().execute(async (trx) => {
        await sql`lock table rel_items in exclusive mode`.execute(trx);
        locked();
        await released;
      });
      await isLocked;
      const late = loadChunk(parked, chunks[1] as ChunkMessage);
      // Until chunk 2 waits on the lock: its bytes are read and its rows on their way.
      for (let waiting = 0; waiting === 0; ) {
        await new Promise((r) => setTimeout(r, 50));
        waiting = (
          await sql<{
            n: number;
          }>`select count(*)::int as n from pg_locks l join pg_class c on c.oid = l.relation
            where c.relname = 'rel_items' and not l.granted`.execute(db)
        ).rows[0]?.n as number;
      }
      await p.stack.s3.send(new DeleteObjectCommand({ Bucket: p.stack.bucket, Key: key }));
      const failing = await loadChunk(parked, chunks[2] as ChunkMessage);
      expect(failing.result).toBe('file-failed');
      release();
      await holding;
      expect((await late).result).toBe('file-failed');
    } finally {
      await holder.destroy();
    }
    const file = await db
      .selectFrom('dropload.file')
      .selectAll()
      .where('key', '=', key)
      .executeTakeFirstOrThrow();
    const inTable = await sql<{
      n: number;
    }>`select count(*)::int as n from rel_items where id between 30000 and 33999`
      .execute(db)
      .then((r) => r.rows[0]?.n);
    expect([file.state, file.chunks_done, file.rows_inserted]).toEqual(['failed', 1, inTable]);
    expect(file.error).toBe(
      `s3://dropload-local/${key} no longer exists (deleted or renamed before it was read); chunk(s) 1 of ${chunks.length} had loaded before that: ${inTable} rows of this file are in table rel_items (${inTable} inserted, 0 updated), the other ${chunks.length - 1} chunk(s) were not loaded`,
    );
  });
});
