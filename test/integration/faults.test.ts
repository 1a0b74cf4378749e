import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import {
  GetQueueAttributesCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { type Kysely, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { SqsHandler } from '../../cli/event-source.ts';
import { backfill } from '../../shared/backfill.ts';
import { defineDataset } from '../../shared/dataset.ts';
import { createDb, createPool } from '../../shared/db/connection.ts';
import type { Database, FileRow } from '../../shared/db/schema.ts';
import { unquoteEtag } from '../../shared/s3-events.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

/**
 * The fault suite: each test breaks something real (a worker dying after commit, the database
 * refusing or dropping connections, poison messages) while files load, then checks the table holds
 * exactly the expected rows, every line is accounted for, every file finished, and the DLQs hold
 * only what they should.
 */

const migration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('fault_rows')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('label', 'text', (c) => c.notNull())
      .execute();
    // A table whose every insert fails with an error dropload cannot classify (SQLSTATE P0001): a "bug".
    await db.schema.createTable('fault_broken').addColumn('id', 'integer').execute();
    await sql`create or replace function fault_refuse() returns trigger language plpgsql as $$
      begin raise exception 'the database refuses this table today'; end $$`.execute(db);
    await sql`create trigger fault_refuse before insert on fault_broken for each statement execute function fault_refuse()`.execute(
      db,
    );
  },
};
const config = {
  datasets: [
    defineDataset({
      name: 'rows',
      format: 'csv',
      table: 'fault_rows',
      chunkBytes: 64 * 1024,
      schema: z.object({ id: z.coerce.number().int().positive(), label: z.string().min(1) }),
    }),
    // Every chunk fails with an error nothing classifies: retried, then dead-lettered, with the error on the file.
    defineDataset({
      name: 'broken',
      format: 'csv',
      table: 'fault_broken',
      schema: z.object({ id: z.coerce.number().int() }),
    }),
  ],
  migrations: { '20260101000000_faults': migration },
};

const PAD = 'y'.repeat(40);
function csv(from: number, to: number, bad: number[] = []): string {
  const lines = ['id,label'];
  for (let i = from; i <= to; i++) lines.push(bad.includes(i) ? `${i},` : `${i},row ${i} ${PAD}`);
  return `${lines.join('\n')}\n`;
}
const expectedSum = (from: number, to: number, bad: number[] = []) =>
  ((to * (to + 1)) / 2 - ((from - 1) * from) / 2 - bad.reduce((a, b) => a + b, 0)).toString();

interface Started {
  p: TestPipeline;
  /** A connection that bypasses the proxy, for the test's own checks while the pipeline's is cut. */
  check: Kysely<Database>;
  proxy: TcpProxy;
}

let embedded: { url: string; stop: () => Promise<void> } | undefined;

/** The pipeline reaches Postgres through a proxy the test can cut; with no DATABASE_URL the target is a PGlite. */
async function start(
  extra: { wrap?: (fn: 'split' | 'load', h: SqsHandler) => SqsHandler; endpoint?: string } = {},
): Promise<Started> {
  let target = process.env.DATABASE_URL;
  if (!target) {
    const { PGlite } = await import('@electric-sql/pglite');
    const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
    const db = await PGlite.create();
    const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1', maxConnections: 1 });
    await server.start();
    embedded = {
      url: `postgres://postgres@${server.getServerConn()}/postgres`,
      stop: async () => {
        await server.stop();
        await db.close();
      },
    };
    target = embedded.url;
  }
  const url = new URL(target);
  const proxy = await startTcpProxy(url.hostname, Number(url.port || 5432));
  const viaProxy = new URL(target);
  viaProxy.host = `127.0.0.1:${proxy.port}`;
  const poolMax = embedded ? '1' : '4';
  // A fresh embedded database needs no reset (and serves one connection at a time).
  const p = await startTestPipeline(config, embedded ? [] : ['fault_rows', 'fault_broken'], {
    env: {
      DATABASE_URL: viaProxy.toString(),
      DROPLOAD_DB_POOL_MAX: poolMax,
      AWS_ENDPOINT_URL: extra.endpoint,
    },
    visibilityTimeoutSeconds: 2,
    workers: embedded ? 1 : 3,
    wrap: extra.wrap,
  });
  // Through the proxy too when embedded: PGlite serves one connection, and the proxy is up for checks.
  const check = embedded ? p.deps.db : createDb(createPool({ connectionString: target, poolMax: 1 }));
  return { p, check, proxy };
}

let current: Started | undefined;
async function cleanup() {
  current?.proxy.up();
  await current?.p.stop();
  if (current && current.check !== current.p.deps.db) await current.check.destroy();
  await current?.proxy.close();
  await embedded?.stop();
  embedded = undefined;
  current = undefined;
}
afterEach(cleanup);

async function drop(s: Started, key: string, body: string): Promise<string> {
  const put = await s.p.stack.s3.send(
    new PutObjectCommand({ Bucket: s.p.stack.bucket, Key: key, Body: body }),
  );
  const etag = unquoteEtag(put.ETag ?? '');
  await s.p.announce({ bucket: s.p.stack.bucket, key, etag, size: body.length });
  return etag;
}

async function finished(s: Started, key: string, timeoutMs = 60_000): Promise<FileRow> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const file = await s.check
      .selectFrom('dropload.file')
      .selectAll()
      .where('key', '=', key)
      .executeTakeFirst()
      .catch(() => undefined);
    if (file && ['loaded', 'failed', 'skipped'].includes(file.state)) return file;
    if (Date.now() > deadline) throw new Error(`${key} did not finish: ${JSON.stringify(file)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function tableState(s: Started) {
  const r = await sql<{
    n: number;
    sum: string | null;
  }>`select count(*)::int as n, sum(id)::text as sum from fault_rows`.execute(s.check);
  return r.rows[0];
}

async function depth(s: Started, queueUrl: string): Promise<number> {
  const res = await s.p.stack.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(res.Attributes?.ApproximateNumberOfMessages ?? 0) +
    Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
  );
}

const backfillDeps = (s: Started) => ({ ...s.p.stack, db: s.p.deps.db, logger: s.p.deps.logger });
const backfillOptions = (s: Started, resume: boolean) => ({
  bucket: s.p.stack.bucket,
  ingestQueueUrl: s.p.stack.ingest.url,
  datasetPrefixes: s.p.config.datasets.map((d) => d.prefix),
  resume,
});

async function accountedFor(s: Started, file: FileRow) {
  const chunks = await s.check
    .selectFrom('dropload.chunk')
    .selectAll()
    .where('file_id', '=', file.id)
    .execute();
  expect(chunks.every((c) => c.state === 'loaded')).toBe(true);
  expect(file.rows_read).toBe(file.rows_inserted + file.rows_updated + file.rows_rejected);
  expect(chunks.reduce((n, c) => n + c.rows_read, 0)).toBe(file.rows_read);
}

/** fauxqs with its state in SQLite, so a restart keeps queues, in-flight messages and objects. */
async function persistentEmulator(dataDir: string, port = 0) {
  const { startFauxqs } = await import('fauxqs');
  return startFauxqs({ port, host: '127.0.0.1', logger: false, dataDir });
}

describe('fault suite', () => {
  it('the S3/SQS endpoint restarts mid-load: messages and objects survive, the file finishes once', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'dropload-fauxqs-'));
    let emulator = await persistentEmulator(dataDir);
    const port = emulator.port;
    try {
      current = await start({ endpoint: emulator.address });
      const s = current;
      await drop(s, 'incoming/rows/emulator.csv', csv(1, 20000, [5]));
      for (;;) {
        const f = await s.check
          .selectFrom('dropload.file')
          .select(['chunks_done', 'chunk_count'])
          .where('key', '=', 'incoming/rows/emulator.csv')
          .executeTakeFirst();
        if (f && f.chunks_done > 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await emulator.stop();
      await new Promise((r) => setTimeout(r, 1000));
      emulator = await persistentEmulator(dataDir, port);
      const file = await finished(s, 'incoming/rows/emulator.csv');
      expect([file.state, file.rows_read, file.rows_inserted, file.rows_rejected]).toEqual([
        'loaded',
        20000,
        19999,
        1,
      ]);
      expect(await tableState(s)).toEqual({ n: 19999, sum: expectedSum(1, 20000, [5]) });
      await accountedFor(s, file);
      expect(await depth(s, s.p.stack.chunks.dlqUrl)).toBe(0);
    } finally {
      await cleanup();
      await emulator.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('a load worker killed between commit and acknowledge: the redelivered chunks change nothing', async () => {
    let crashes = 0;
    current = await start({
      wrap: (fn, handler) =>
        fn === 'split'
          ? handler
          : async (event, context) => {
              const result = await handler(event, context);
              // The first three invocations die after their transaction committed, before SQS hears back.
              if (crashes < 3) {
                crashes++;
                throw new Error('worker killed after commit');
              }
              return result;
            },
    });
    const s = current;
    await drop(s, 'incoming/rows/crash.csv', csv(1, 6000, [10, 20]));
    const file = await finished(s, 'incoming/rows/crash.csv');
    expect(crashes).toBe(3);
    expect([file.state, file.rows_read, file.rows_inserted, file.rows_rejected]).toEqual([
      'loaded',
      6000,
      5998,
      2,
    ]);
    expect(await tableState(s)).toEqual({ n: 5998, sum: expectedSum(1, 6000, [10, 20]) });
    await accountedFor(s, file);
    // Let the crashed deliveries come back and be acknowledged as duplicates.
    await new Promise((r) => setTimeout(r, 3000));
    expect(await tableState(s)).toEqual({ n: 5998, sum: expectedSum(1, 6000, [10, 20]) });
    expect(await depth(s, s.p.stack.chunks.url)).toBe(0);
    expect(await depth(s, s.p.stack.chunks.dlqUrl)).toBe(0);
  });

  it('the database refuses connections for a while: loads wait, retry with backoff, and finish', async () => {
    current = await start();
    const s = current;
    s.proxy.down();
    await drop(s, 'incoming/rows/outage.csv', csv(1, 3000));
    await new Promise((r) => setTimeout(r, 2500));
    s.proxy.up();
    const file = await finished(s, 'incoming/rows/outage.csv');
    expect([file.state, file.rows_read, file.rows_inserted]).toEqual(['loaded', 3000, 3000]);
    expect(await tableState(s)).toEqual({ n: 3000, sum: expectedSum(1, 3000) });
    await accountedFor(s, file);
    expect(await depth(s, s.p.stack.ingest.dlqUrl)).toBe(0);
    expect(await depth(s, s.p.stack.chunks.dlqUrl)).toBe(0);
  });

  it('the database drops every connection mid-load (as in a restart): nothing half-written, nothing lost', async () => {
    current = await start();
    const s = current;
    await drop(s, 'incoming/rows/restart.csv', csv(1, 20000, [777]));
    // Wait until some chunks have committed, then cut every open connection, mid-transaction or not.
    for (;;) {
      const f = await s.check
        .selectFrom('dropload.file')
        .select(['chunks_done', 'chunk_count'])
        .where('key', '=', 'incoming/rows/restart.csv')
        .executeTakeFirst();
      if (f && f.chunks_done > 0) {
        expect(f.chunks_done).toBeLessThan(f.chunk_count ?? 0);
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    s.proxy.down();
    await new Promise((r) => setTimeout(r, 1000));
    s.proxy.up();
    const file = await finished(s, 'incoming/rows/restart.csv');
    expect([file.state, file.rows_read, file.rows_inserted, file.rows_rejected]).toEqual([
      'loaded',
      20000,
      19999,
      1,
    ]);
    expect(await tableState(s)).toEqual({ n: 19999, sum: expectedSum(1, 20000, [777]) });
    await accountedFor(s, file);
    expect(await depth(s, s.p.stack.chunks.dlqUrl)).toBe(0);
  });

  it('chunk messages lost mid-load (a purged queue): backfill --resume finishes the file, nothing doubled', async () => {
    current = await start();
    const s = current;
    await drop(s, 'incoming/rows/lost.csv', csv(1, 20000));
    for (;;) {
      const f = await s.check
        .selectFrom('dropload.file')
        .select(['chunks_done'])
        .where('key', '=', 'incoming/rows/lost.csv')
        .executeTakeFirst();
      if (f && f.chunks_done > 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await s.p.stack.sqs.send(new PurgeQueueCommand({ QueueUrl: s.p.stack.chunks.url }));
    await new Promise((r) => setTimeout(r, 3000));
    const stuck = await s.check
      .selectFrom('dropload.file')
      .selectAll()
      .where('key', '=', 'incoming/rows/lost.csv')
      .executeTakeFirstOrThrow();
    expect(stuck.state).toBe('loading');
    expect(stuck.chunks_done).toBeLessThan(stuck.chunk_count ?? 0);

    const plain = await backfill(backfillDeps(s), backfillOptions(s, false));
    expect(plain.unseen).toBe(0);
    const resumed = await backfill(backfillDeps(s), backfillOptions(s, true));
    expect(resumed.items.map((i) => [i.ref.key, i.action])).toEqual([['incoming/rows/lost.csv', 'enqueued']]);
    const file = await finished(s, 'incoming/rows/lost.csv');
    expect([file.state, file.rows_read, file.rows_inserted]).toEqual(['loaded', 20000, 20000]);
    expect(await tableState(s)).toEqual({ n: 20000, sum: expectedSum(1, 20000) });
    await accountedFor(s, file);
  });

  it('poison messages and unknown errors end in the DLQ after maxReceiveCount, with the error on the file', async () => {
    current = await start();
    const s = current;
    await s.p.stack.sqs.send(
      new SendMessageCommand({ QueueUrl: s.p.stack.chunks.url, MessageBody: '{"not":"a chunk"}' }),
    );
    await drop(s, 'incoming/broken/b.csv', 'id\n1\n');
    await drop(s, 'incoming/rows/good.csv', csv(1, 100));
    const good = await finished(s, 'incoming/rows/good.csv');
    expect(good.state).toBe('loaded');
    // 5 receives, 2 s apart (plus backoff), then the queue's redrive policy moves both to the DLQ.
    const deadline = Date.now() + 40_000;
    while ((await depth(s, s.p.stack.chunks.dlqUrl)) < 2 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 250));
    const dead = await s.p.stack.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: s.p.stack.chunks.dlqUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 30,
      }),
    );
    const bodies = (dead.Messages ?? []).map(
      (m) => JSON.parse(m.Body ?? '{}') as { key?: string; not?: string },
    );
    expect(bodies.map((b) => b.key ?? b.not).sort()).toEqual(['a chunk', 'incoming/broken/b.csv']);
    const broken = await s.check
      .selectFrom('dropload.file')
      .selectAll()
      .where('key', '=', 'incoming/broken/b.csv')
      .executeTakeFirstOrThrow();
    expect(broken.state).toBe('loading');
    expect(broken.error).toBe('chunk 0: error: the database refuses this table today');
    expect(await tableState(s)).toEqual({ n: 100, sum: expectedSum(1, 100) });
    expect(await depth(s, s.p.stack.ingest.dlqUrl)).toBe(0);
  });
});

afterAll(async () => {
  await embedded?.stop();
});
