import { PutObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { type Kysely, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { expect } from 'vitest';
import { z } from 'zod';
import type { SqsHandler } from '../../local/event-source.ts';
import { unquoteEtag } from '../../shared/aws/s3-events.ts';
import { defineDataset } from '../../shared/config/dataset.ts';
import type { RetryPolicy } from '../../shared/core/backoff.ts';
import { createDb, createPool } from '../../shared/ledger/connection.ts';
import type { Database, FileRow } from '../../shared/ledger/schema.ts';
import { startTestPipeline, type TestPipeline } from './pipeline.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

/**
 * The fault suite's harness: a whole local pipeline whose database connection runs through a proxy
 * the test can cut, a second connection around it for the test's own checks, and the checks every
 * fault test ends with (exact rows, every line accounted for, queues drained).
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
    // A table that answers "lock not available" (55P03, which reads as transient) while a switch is on:
    // a permanent fault disguised as a passing one, until an operator turns it off.
    await db.schema.createTable('fault_locked').addColumn('id', 'integer').execute();
    await sql`create table fault_switch (refuse boolean not null)`.execute(db);
    await sql`insert into fault_switch values (true)`.execute(db);
    await sql`create or replace function fault_lock() returns trigger language plpgsql as $$
      begin
        if (select refuse from fault_switch) then
          raise exception 'could not obtain lock on relation "fault_locked"' using errcode = '55P03';
        end if;
        return null;
      end $$`.execute(db);
    await sql`create trigger fault_lock before insert on fault_locked for each statement execute function fault_lock()`.execute(
      db,
    );
  },
};

export const FAULT_TABLES = ['fault_rows', 'fault_broken', 'fault_locked', 'fault_switch'];

export const faultConfig = {
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
    defineDataset({
      name: 'locked',
      format: 'csv',
      table: 'fault_locked',
      schema: z.object({ id: z.coerce.number().int() }),
    }),
  ],
  migrations: { '20260101000000_faults': migration },
};

/** The fault suite's retry budget: five deliveries a second apart, so a parked message takes seconds, not minutes. */
export const SHORT_RETRIES: RetryPolicy = { baseSeconds: 1, capSeconds: 1, budgetSeconds: 4 };

const PAD = 'y'.repeat(40);
export function csv(from: number, to: number, bad: number[] = []): string {
  const lines = ['id,label'];
  for (let i = from; i <= to; i++) lines.push(bad.includes(i) ? `${i},` : `${i},row ${i} ${PAD}`);
  return `${lines.join('\n')}\n`;
}
export const expectedSum = (from: number, to: number, bad: number[] = []) =>
  ((to * (to + 1)) / 2 - ((from - 1) * from) / 2 - bad.reduce((a, b) => a + b, 0)).toString();

export interface Started {
  p: TestPipeline;
  /** A connection that bypasses the proxy, for the test's own checks while the pipeline's is cut. */
  check: Kysely<Database>;
  proxy: TcpProxy;
  stop(): Promise<void>;
}

export interface StartOptions {
  wrap?: (fn: 'split' | 'load', h: SqsHandler) => SqsHandler;
  endpoint?: string;
  retry?: RetryPolicy;
  /** Leave the database as it is: a second pipeline beside one that already reset it. */
  keepDatabase?: boolean;
  /** Where the runner tells its own failures (default: its logger, silent in tests). */
  onFailure?: (line: string) => void;
}

async function embeddedPostgres() {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create();
  const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1', maxConnections: 1 });
  await server.start();
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}

/** The pipeline reaches Postgres through a proxy the test can cut; with no DATABASE_URL the target is a PGlite of its own. */
export async function startFaultPipeline(options: StartOptions = {}): Promise<Started> {
  const embedded = process.env.DATABASE_URL ? undefined : await embeddedPostgres();
  const target = embedded?.url ?? (process.env.DATABASE_URL as string);
  const url = new URL(target);
  const proxy = await startTcpProxy(url.hostname, Number(url.port || 5432));
  const viaProxy = new URL(target);
  viaProxy.host = `127.0.0.1:${proxy.port}`;
  // A fresh embedded database needs no reset (and serves one connection at a time).
  const p = await startTestPipeline(faultConfig, embedded || options.keepDatabase ? [] : FAULT_TABLES, {
    env: {
      DATABASE_URL: viaProxy.toString(),
      DROPLOAD_DB_POOL_MAX: embedded ? '1' : '4',
      AWS_ENDPOINT_URL: options.endpoint,
    },
    visibilityTimeoutSeconds: 2,
    workers: embedded ? 1 : 3,
    wrap: options.wrap,
    retry: options.retry ?? SHORT_RETRIES,
    onFailure: options.onFailure,
  });
  // Through the proxy too when embedded: PGlite serves one connection, and the proxy is up for checks.
  const check = embedded ? p.deps.db : createDb(createPool({ connectionString: target, poolMax: 1 }));
  const stop = async () => {
    proxy.up();
    await p.stop();
    if (check !== p.deps.db) await check.destroy();
    await proxy.close();
    await embedded?.stop();
  };
  return { p, check, proxy, stop };
}

export async function drop(s: Started, key: string, body: string): Promise<string> {
  const put = await s.p.stack.s3.send(
    new PutObjectCommand({ Bucket: s.p.stack.bucket, Key: key, Body: body }),
  );
  const etag = unquoteEtag(put.ETag ?? '');
  await s.p.announce({ bucket: s.p.stack.bucket, key, etag, size: body.length });
  return etag;
}

export async function fileRow(s: Started, key: string): Promise<FileRow | undefined> {
  return s.check
    .selectFrom('dropload.file')
    .selectAll()
    .where('key', '=', key)
    .orderBy('id', 'desc')
    .executeTakeFirst()
    .catch(() => undefined);
}

/** Polls the ledger until the file satisfies `done` (default: a final state). */
export async function finished(
  s: Started,
  key: string,
  timeoutMs = 60_000,
  done: (f: FileRow) => boolean = (f) => ['loaded', 'failed', 'skipped'].includes(f.state),
): Promise<FileRow> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const file = await fileRow(s, key);
    if (file && done(file)) return file;
    if (Date.now() > deadline) throw new Error(`${key} did not finish: ${JSON.stringify(file)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function tableState(s: Started, from = 1, to = 2 ** 31 - 1) {
  const r = await sql<{
    n: number;
    sum: string | null;
  }>`select count(*)::int as n, sum(id)::text as sum from fault_rows where id between ${from} and ${to}`.execute(
    s.check,
  );
  return r.rows[0];
}

/**
 * What a fault test ends with on a file of ids `from`..`to` whose `bad` ones are refused (as `csv` writes
 * them), alone in the table: loaded, each good row in the table once, every line accounted for. Its row.
 */
export async function expectLoadedOnce(
  s: Started,
  key: string,
  from: number,
  to: number,
  bad: number[] = [],
): Promise<FileRow> {
  const file = await finished(s, key);
  const good = to - from + 1 - bad.length;
  expect([file.state, file.rows_read, file.rows_inserted, file.rows_rejected]).toEqual([
    'loaded',
    to - from + 1,
    good,
    bad.length,
  ]);
  expect(await tableState(s)).toEqual({ n: good, sum: expectedSum(from, to, bad) });
  await accountedFor(s, file);
  return file;
}

export async function depth(s: Started, queueUrl: string): Promise<number> {
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

export const backfillDeps = (s: Started) => ({ ...s.p.stack, db: s.p.deps.db, logger: s.p.deps.logger });
export const backfillOptions = (s: Started, resume: boolean) => ({
  bucket: s.p.stack.bucket,
  ingestQueueUrl: s.p.stack.ingest.url,
  datasetPrefixes: s.p.config.datasets.map((d) => d.prefix),
  resume,
});

/** Every chunk loaded, and every line read is inserted, updated or rejected, in the file and its chunks. */
export async function accountedFor(s: Started, file: FileRow) {
  const chunks = await s.check
    .selectFrom('dropload.chunk')
    .selectAll()
    .where('file_id', '=', file.id)
    .execute();
  expect(chunks.every((c) => c.state === 'loaded')).toBe(true);
  expect(file.rows_read).toBe(file.rows_inserted + file.rows_updated + file.rows_rejected);
  expect(chunks.reduce((n, c) => n + c.rows_read, 0)).toBe(file.rows_read);
}
