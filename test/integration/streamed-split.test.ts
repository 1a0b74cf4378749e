import { PutObjectCommand } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { type Kysely, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { renderReports, reportsOf } from '../../cli/report.ts';
import { ChunkMessage } from '../../shared/aws/messages.ts';
import { defineDataset } from '../../shared/config/dataset.ts';
import { DROP_AGAIN } from '../../shared/core/errors.ts';
import { STRAY_QUOTE_HINT } from '../../shared/formats/chunking.ts';
import { failFile, recordChunkAttempt } from '../../shared/ledger/ledger.ts';
import type { Database, FileRow } from '../../shared/ledger/schema.ts';
import { loadChunk } from '../../shared/load/load-service.ts';
import type { PipelineDeps } from '../../shared/pipeline/services.ts';
import { splitObject } from '../../shared/split/split-service.ts';
import { expectHonestCounts } from '../support/counts.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/*
 * The split sends a plain text file's chunks while it still cuts it (shared/split/streamed-chunks.ts).
 * Chunks here go to a queue no worker reads: the test loads each one itself, some of them while the
 * split is still running (from inside the split's own sends), to put the file where a fast load would.
 */

const TABLES = ['stream_items', 'stream_gated'];
const tables: Migration = {
  async up(db: Kysely<unknown>) {
    for (const name of TABLES) {
      await db.schema
        .createTable(name)
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('label', 'text', (c) => c.notNull())
        .execute();
    }
  },
};
const row = z.object({ id: z.coerce.number().int().positive(), label: z.string().min(1) });
const config = {
  datasets: [
    defineDataset({
      name: 'items',
      format: 'csv',
      table: 'stream_items',
      schema: row,
      chunkBytes: 64 * 1024,
    }),
    defineDataset({
      name: 'gated',
      format: 'csv',
      table: 'stream_gated',
      schema: row,
      chunkBytes: 64 * 1024,
      publish: 'file',
    }),
  ],
  migrations: { '20260101000000_stream': tables },
};

let p: TestPipeline;
let db: Kysely<Database>;
let parked: PipelineDeps;

beforeAll(async () => {
  p = await startTestPipeline(config, TABLES);
  db = p.deps.db;
  const queue = await p.stack.sqs.send(new CreateQueueCommand({ QueueName: 'dropload-stream-parked' }));
  parked = { ...p.deps, chunkQueueUrl: queue.QueueUrl as string };
});
afterAll(async () => {
  await p?.stop();
});

/** 40,000 rows: about 2 MB, some 30 chunks of 64 KiB. */
const ROWS = 40_000;
const csv = (extra = '') => {
  const lines = ['id,label'];
  for (let i = 1; i <= ROWS; i++) lines.push(`${i},label ${i} ${'x'.repeat(32)}`);
  return `${lines.join('\n')}\n${extra}`;
};

/** The chunk messages in a batch the split sends. */
const messagesOf = (cmd: SendMessageBatchCommand): ChunkMessage[] =>
  (cmd.input.Entries ?? []).map((e) => ChunkMessage.parse(JSON.parse(e.MessageBody ?? '{}')));

/** The parked deps, with `onBatch` run on each batch of chunk messages before it is sent. */
function withBatches(onBatch: (messages: ChunkMessage[]) => Promise<void>): PipelineDeps {
  const base = parked.sqs;
  const sqs = Object.create(base) as SQSClient;
  const send = async (cmd: Parameters<SQSClient['send']>[0]) => {
    if (cmd instanceof SendMessageBatchCommand) await onBatch(messagesOf(cmd));
    return base.send(cmd);
  };
  sqs.send = send as SQSClient['send'];
  return { ...parked, sqs };
}

/** Every chunk message in the parked queue, taken out of it. */
async function drain(): Promise<ChunkMessage[]> {
  const out: ChunkMessage[] = [];
  for (;;) {
    const res = await p.stack.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: parked.chunkQueueUrl, MaxNumberOfMessages: 10 }),
    );
    if (!res.Messages?.length) return out;
    for (const m of res.Messages) {
      await p.stack.sqs.send(
        new DeleteMessageCommand({ QueueUrl: parked.chunkQueueUrl, ReceiptHandle: m.ReceiptHandle }),
      );
      out.push(ChunkMessage.parse(JSON.parse(m.Body ?? '{}')));
    }
  }
}

async function put(key: string, body: string) {
  const res = await p.stack.s3.send(new PutObjectCommand({ Bucket: p.stack.bucket, Key: key, Body: body }));
  return { bucket: p.stack.bucket, key, etag: res.ETag?.replace(/"/g, '') };
}

const fileOf = (key: string): Promise<FileRow> =>
  db.selectFrom('dropload.file').selectAll().where('key', '=', key).executeTakeFirstOrThrow();

const rowsIn = async (table: string) =>
  (
    await sql<{ n: number; ids: number }>`select count(*)::int as n, count(distinct id)::int as ids
    from ${sql.table(table)}`.execute(db)
  ).rows[0];

describe('a split that sends chunks while it cuts', () => {
  it.each([
    ['items', 'stream_items'],
    ['gated', 'stream_gated'],
  ])(
    '%s: every chunk but the last loads before the split knows the count; the last one finishes the file',
    async (dataset, table) => {
      const key = `incoming/${dataset}/all-but-last.csv`;
      const streamed: number[] = [];
      const loading = withBatches(async (messages) => {
        for (const m of messages.filter((m) => m.count === undefined)) {
          streamed.push(m.index);
          expect((await loadChunk(parked, m)).result).toBe('loaded');
        }
      });
      const outcome = await splitObject(loading, await put(key, csv()));
      const split = await fileOf(key);
      const count = split.chunk_count as number;
      expect(count).toBeGreaterThan(20);
      // Sent while cut: the chunks before the last, in order, each once; the last one kept back.
      expect(streamed).toEqual(Array.from({ length: streamed.length }, (_, i) => i));
      expect(streamed.length).toBeGreaterThan(0);
      expect(streamed.length).toBeLessThan(count);
      expect([split.state, split.chunks_done, split.rows_expected]).toEqual([
        'loading',
        streamed.length,
        ROWS,
      ]);
      // Published only when the whole file is: nothing yet.
      if (dataset === 'gated') expect((await rowsIn(table))?.n).toBe(0);

      const sent = await drain();
      expect(sent.filter((m) => m.count === undefined).map((m) => m.index)).toEqual(streamed);
      const rest = sent.filter((m) => m.count !== undefined);
      expect(rest.map((m) => [m.index, m.count])).toEqual(
        Array.from({ length: count - streamed.length }, (_, i) => [streamed.length + i, count]),
      );
      expect(outcome).toMatchObject({ result: 'split', chunks: count });
      for (const m of rest) await loadChunk(parked, m);
      const done = await fileOf(key);
      expect([done.state, done.chunks_done, done.rows_inserted]).toEqual(['loaded', count, ROWS]);
      expect(await rowsIn(table)).toEqual({ n: ROWS, ids: ROWS });
      await expectHonestCounts(db);
    },
  );

  it('killed after it sent some chunks: the file says so truly, and a second split loads every row exactly once', async () => {
    await sql`truncate stream_items`.execute(db);
    const key = 'incoming/items/killed.csv';
    const ref = await put(key, csv());
    let batches = 0;
    const dying = withBatches(async () => {
      // The second send never happens: the split dies with the first batch sent.
      if (++batches === 2) throw new Error('killed');
    });
    await expect(splitObject(dying, ref)).rejects.toThrow('killed');
    const first = await drain();
    expect(first.map((m) => [m.index, m.count])).toEqual([[0, undefined]]);
    for (const m of first) expect((await loadChunk(parked, m)).result).toBe('loaded');

    const cut = await fileOf(key);
    expect([cut.state, cut.chunk_count, cut.chunks_done]).toEqual(['loading', null, 1]);
    const [, line] = renderReports(await reportsOf(db, [cut])).split('\n');
    expect(line).toContain('loading');
    expect(line).toContain('1/?');

    // The ingest message comes back: the file is cut again, the same chunks; the loaded one is not sent again.
    const again = await splitObject(parked, ref);
    const rest = await drain();
    const count = (await fileOf(key)).chunk_count as number;
    expect(again).toMatchObject({ result: 'split', chunks: count - 1 });
    expect(rest.map((m) => m.index).sort((a, b) => a - b)).toEqual(
      Array.from({ length: count - 1 }, (_, i) => i + 1),
    );
    // The first delivery's chunk message delivered again, too: it claims nothing.
    for (const m of [...rest, ...first]) await loadChunk(parked, m);
    const done = await fileOf(key);
    expect([done.state, done.chunks_done, done.rows_inserted, done.resumes]).toEqual([
      'loaded',
      count,
      ROWS,
      1,
    ]);
    const chunks = await db
      .selectFrom('dropload.chunk')
      .select(['idx', 'state'])
      .where('file_id', '=', done.id)
      .orderBy('idx')
      .execute();
    expect(chunks).toEqual(Array.from({ length: count }, (_, idx) => ({ idx, state: 'loaded' })));
    expect(await rowsIn('stream_items')).toEqual({ n: ROWS, ids: ROWS });
    expect(done.rows_rejected).toBe(0);
    await expectHonestCounts(db);
  });

  it('a chunk sent while the split cuts that dies stalls the file; the count recorded keeps it stalled, and its replay finishes it', async () => {
    await sql`truncate stream_items`.execute(db);
    const key = 'incoming/items/dead-chunk.csv';
    const dying = withBatches(async (messages) => {
      const first = messages.find((m) => m.index === 0);
      if (first)
        await recordChunkAttempt(
          db,
          { fileId: first.fileId, index: 0 },
          { deliveries: 5, text: 'boom', parked: true },
        );
    });
    await splitObject(dying, await put(key, csv()));
    const split = await fileOf(key);
    expect([split.state, split.error, split.chunk_count === null]).toEqual([
      'stalled',
      'chunk 0: boom',
      false,
    ]);
    // Every other chunk loads; the dead one's replay comes last and finishes the file.
    const sent = await drain();
    for (const m of sent.filter((m) => m.index !== 0)) await loadChunk(parked, m);
    expect((await fileOf(key)).state).toBe('stalled');
    await loadChunk(parked, sent.find((m) => m.index === 0) as ChunkMessage);
    const done = await fileOf(key);
    expect([done.state, done.error, done.chunks_done, done.rows_inserted]).toEqual([
      'loaded',
      null,
      split.chunk_count,
      ROWS,
    ]);
  });

  it('a file failed by a chunk while the split still cuts it is sent no more chunks', async () => {
    const key = 'incoming/items/failed-meanwhile.csv';
    const failing = withBatches(async (messages) => {
      const first = messages.find((m) => m.index === 0);
      // What a chunk that found the object gone does (load-service's failChunkFile).
      if (first) await failFile(db, first.fileId, 'gone', DROP_AGAIN);
    });
    await splitObject(failing, await put(key, csv()));
    expect((await drain()).map((m) => m.index)).toEqual([0]);
    const file = await fileOf(key);
    expect([file.state, file.error, file.chunk_count]).toEqual(['failed', 'gone', null]);
  });

  it('a quote left open at the end of a file whose chunks loaded fails it saying which loaded; none loads after', async () => {
    await sql`truncate stream_items`.execute(db);
    const key = 'incoming/items/open-quote.csv';
    const loaded: number[] = [];
    const loading = withBatches(async (messages) => {
      for (const m of messages) {
        loaded.push(m.index);
        await loadChunk(parked, m);
      }
    });
    const open = ROWS + 2;
    const outcome = await splitObject(loading, await put(key, csv(`${ROWS + 1},"never closed\n1,b\n2,c\n`)));
    expect(outcome.result).toBe('failed');
    // Only chunks sent while it was cut: none after the failure.
    expect((await drain()).map((m) => [m.index, m.count])).toEqual(loaded.map((i) => [i, undefined]));
    const file = await fileOf(key);
    const chunks = await db
      .selectFrom('dropload.chunk')
      .select(['idx', 'first_line', 'state', 'unterminated'])
      .where('file_id', '=', file.id)
      .orderBy('idx')
      .execute();
    const last = chunks.at(-1);
    expect(last).toMatchObject({ first_line: open, state: 'pending', unterminated: true });
    const inTable = (await rowsIn('stream_items'))?.n;
    expect(loaded.length).toBeGreaterThan(0);
    expect(chunks.filter((c) => c.state === 'loaded').map((c) => c.idx)).toEqual(loaded);
    expect([file.state, file.chunks_done, file.rows_inserted]).toEqual(['failed', loaded.length, inTable]);
    const nextLine = chunks[loaded.length]?.first_line as number;
    expect(file.error).toBe(
      `line ${open}: a quoted field opened here is never closed, so the remaining 3 lines (28 bytes) would read as one value; they were not loaded: close the quote (${STRAY_QUOTE_HINT}); chunk(s) ${loaded.map((i) => i + 1).join(', ')} of the ${chunks.length} cut so far had loaded before that: ${inTable} rows of this file are in table stream_items (${inTable} inserted, 0 updated), the rest of the file was not loaded`,
    );
    expect(file.action).toContain(`delete its rows from lines 2–${nextLine - 1} of the file`);
    await expectHonestCounts(db);
  });
});
