import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  DeleteObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { PurgeQueueCommand } from '@aws-sdk/client-sqs';
import { type Kysely, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { SqsHandler } from '../../local/event-source.ts';
import { unquoteEtag } from '../../shared/aws/s3-events.ts';
import { defineDataset } from '../../shared/config/dataset.ts';
import { integer } from '../../shared/config/fields.ts';
import { EXPANDED_PREFIX } from '../../shared/core/bucket-layout.ts';
import type { Database, FileRow } from '../../shared/ledger/schema.ts';
import { backfill } from '../../shared/ops/backfill.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/**
 * gzip files under faults: their chunks are byte ranges of the expanded copy that split writes to
 * `.dropload/expanded/`, so that copy going missing (a crash of an emulator that keeps nothing, the
 * bucket's lifecycle rule, a person) must never make a load read the compressed bytes, fail a good
 * file or lose a row; and a decompression bomb must fail early, naming the limit, leaving nothing.
 */

const migration: Migration = {
  async up(db: Kysely<unknown>) {
    for (const table of ['gz_rows', 'gz_keyed']) {
      await db.schema
        .createTable(table)
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('label', 'text', (c) => c.notNull())
        .execute();
    }
  },
};
const schema = z.object({ id: integer(), label: z.string().min(1) });
const config = {
  datasets: [
    // Small chunks: a 1 MB file is ~16 of them, so a crash can land between chunks.
    defineDataset({ name: 'gz', format: 'csv', table: 'gz_rows', chunkBytes: 64 * 1024, schema }),
    // Upserts load a file's chunks one after another: each load sends the next chunk's message.
    defineDataset({
      name: 'keyed',
      format: 'csv',
      table: 'gz_keyed',
      mode: 'upsert',
      key: ['id'],
      chunkBytes: 64 * 1024,
      schema,
    }),
    // The default limits (the bomb test relies on them).
    defineDataset({ name: 'bomb', format: 'csv', table: 'gz_rows', schema }),
    // A size limit a modestly compressed file reaches after more than one 5 MiB upload part.
    defineDataset({
      name: 'capped',
      format: 'csv',
      table: 'gz_rows',
      maxExpandedBytes: 8 * 1024 * 1024,
      schema,
    }),
  ],
  migrations: { '20260101000000_gzip_faults': migration },
};

const PAD = 'z'.repeat(40);
function csv(rows: number): string {
  const lines = ['id,label'];
  for (let i = 1; i <= rows; i++) lines.push(`${i},row ${i} ${PAD}`);
  return `${lines.join('\n')}\n`;
}
const sumTo = (n: number) => ((n * (n + 1)) / 2).toString();

type Wrap = (fn: 'split' | 'load', handler: SqsHandler) => SqsHandler;
let p: TestPipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

async function start(wrap?: Wrap, stateDir?: string): Promise<TestPipeline> {
  // A fresh embedded database (no DATABASE_URL) needs no reset.
  p = await startTestPipeline(config, ['gz_rows', 'gz_keyed'], {
    // Long enough that a message held by a paused worker is not redelivered while the test works.
    visibilityTimeoutSeconds: 10,
    wrap,
    stateDir,
  });
  return p;
}

const db = (s: TestPipeline): Kysely<Database> => s.deps.db;

async function drop(s: TestPipeline, key: string, body: Uint8Array): Promise<string> {
  const put = await s.stack.s3.send(new PutObjectCommand({ Bucket: s.stack.bucket, Key: key, Body: body }));
  const etag = unquoteEtag(put.ETag ?? '');
  await s.announce({ bucket: s.stack.bucket, key, etag, size: body.length });
  return etag;
}

async function fileRow(s: TestPipeline, key: string): Promise<FileRow | undefined> {
  return db(s).selectFrom('dropload.file').selectAll().where('key', '=', key).executeTakeFirst();
}

/** Polls until `probe` returns something; past the deadline, fails with what `state` says then. */
async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  state: () => Promise<unknown>,
  timeoutMs = 40_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(await state())}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const finished = (s: TestPipeline, key: string) =>
  until(
    `${key} to finish`,
    async () => {
      const f = await fileRow(s, key);
      return f && ['loaded', 'failed', 'skipped'].includes(f.state) ? f : undefined;
    },
    () => fileRow(s, key),
  );

async function table(s: TestPipeline, name: 'gz_rows' | 'gz_keyed') {
  const r = await sql<{
    n: number;
    sum: string | null;
  }>`select count(*)::int as n, sum(id)::text as sum from ${sql.table(name)}`.execute(db(s));
  return r.rows[0];
}

/** Every line read once, loaded or rejected; every chunk loaded; no reject at all. */
async function exact(s: TestPipeline, file: FileRow, rows: number) {
  expect([file.state, file.error, file.rows_read, file.rows_inserted, file.rows_rejected]).toEqual([
    'loaded',
    null,
    rows,
    rows,
    0,
  ]);
  const chunks = await db(s)
    .selectFrom('dropload.chunk')
    .selectAll()
    .where('file_id', '=', file.id)
    .execute();
  expect(chunks.length).toBe(file.chunk_count);
  expect(chunks.filter((c) => c.state !== 'loaded')).toEqual([]);
  expect(chunks.reduce((n, c) => n + c.rows_read, 0)).toBe(rows);
  const rejects = await db(s)
    .selectFrom('dropload.reject')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('file_id', '=', file.id)
    .executeTakeFirstOrThrow();
  expect(Number(rejects.n)).toBe(0);
}

async function expandedCopies(s: TestPipeline): Promise<string[]> {
  const res = await s.stack.s3.send(
    new ListObjectsV2Command({ Bucket: s.stack.bucket, Prefix: EXPANDED_PREFIX }),
  );
  return (res.Contents ?? []).map((o) => o.Key ?? '');
}

async function deleteExpandedCopy(s: TestPipeline, fileId: number): Promise<void> {
  const Key = `${EXPANDED_PREFIX}${fileId}`;
  // It was there: the test removes a real copy, not a key that never existed.
  await s.stack.s3.send(new HeadObjectCommand({ Bucket: s.stack.bucket, Key }));
  await s.stack.s3.send(new DeleteObjectCommand({ Bucket: s.stack.bucket, Key }));
}

/**
 * Load workers that are held before they touch a chunk, once `passFirst` invocations have gone
 * through, until `resume()`; a held worker then dies without loading (while `dies`) or goes on.
 */
function pausableLoads(passFirst = 0) {
  let passed = 0;
  let paused = true;
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const control = {
    dies: false,
    wrap: ((fn, handler) =>
      fn === 'split'
        ? handler
        : async (event, context) => {
            if (paused && passed >= passFirst) {
              await gate;
              if (control.dies) throw new Error('worker killed before it loaded the chunk');
            } else if (paused) passed++;
            return handler(event, context);
          }) as Wrap,
    resume() {
      paused = false;
      release();
    },
  };
  return control;
}

describe('gzip files under faults', () => {
  it('crash mid-load with the expanded copy and the chunk messages lost: backfill --resume loads the rest exactly', async () => {
    // The first three chunks load; then every worker is held, and dies once the queue is purged.
    const loads = pausableLoads(3);
    loads.dies = true;
    const s = await start(loads.wrap);
    const rows = 20_000;
    await drop(s, 'incoming/gz/big.csv.gz', gzipSync(csv(rows)));
    const stuck = await until(
      'three chunks to load',
      async () => {
        const f = await fileRow(s, 'incoming/gz/big.csv.gz');
        return f && f.chunks_done >= 3 ? f : undefined;
      },
      () => fileRow(s, 'incoming/gz/big.csv.gz'),
    );
    expect(stuck.chunk_count).toBeGreaterThan(10);
    // What a kill -9 of an emulator that keeps nothing leaves: no expanded copy, no chunk messages.
    await deleteExpandedCopy(s, stuck.id);
    await s.stack.sqs.send(new PurgeQueueCommand({ QueueUrl: s.stack.chunks.url }));
    loads.resume();
    await new Promise((r) => setTimeout(r, 300));
    loads.dies = false;
    const before = await fileRow(s, 'incoming/gz/big.csv.gz');
    expect([before?.state, before?.chunks_done]).toEqual(['loading', 3]);

    const resumed = await backfill(
      { ...s.stack, db: s.deps.db, logger: s.deps.logger },
      {
        bucket: s.stack.bucket,
        ingestQueueUrl: s.stack.ingest.url,
        datasetPrefixes: s.config.datasets.map((d) => d.prefix),
        resume: true,
      },
    );
    expect(resumed.items.map((i) => [i.ref.key, i.action])).toEqual([['incoming/gz/big.csv.gz', 'enqueued']]);
    const file = await finished(s, 'incoming/gz/big.csv.gz');
    await exact(s, file, rows);
    expect(await table(s, 'gz_rows')).toEqual({ n: rows, sum: sumTo(rows) });
    expect(await expandedCopies(s)).toEqual([]);
  });

  for (const [dataset, tableName] of [
    ['gz', 'gz_rows'],
    ['keyed', 'gz_keyed'],
  ] as const) {
    it(`the expanded copy deleted between split and load (${dataset}): the workers re-make it, the file loads exactly`, async () => {
      const loads = pausableLoads();
      const s = await start(loads.wrap);
      const rows = 12_000;
      const key = `incoming/${dataset}/gone.csv.gz`;
      await drop(s, key, gzipSync(csv(rows)));
      const split = await until(
        'the split',
        async () => {
          const f = await fileRow(s, key);
          return f?.state === 'loading' ? f : undefined;
        },
        () => fileRow(s, key),
      );
      expect(split.chunks_done).toBe(0);
      await deleteExpandedCopy(s, split.id);
      loads.resume();
      const file = await finished(s, key);
      await exact(s, file, rows);
      expect(await table(s, tableName)).toEqual({ n: rows, sum: sumTo(rows) });
      expect(await expandedCopies(s)).toEqual([]);
    });
  }

  it('a copy of other bytes at the expanded key is not read: the workers re-make the right one', async () => {
    const loads = pausableLoads();
    const s = await start(loads.wrap);
    const rows = 12_000;
    const key = 'incoming/gz/foreign.csv.gz';
    await drop(s, key, gzipSync(csv(rows)));
    const split = await until(
      'the split',
      async () => {
        const f = await fileRow(s, key);
        return f?.state === 'loading' ? f : undefined;
      },
      () => fileRow(s, key),
    );
    // Same size, other bytes: what another ledger sharing the bucket (same file id) could have left there.
    const size = split.expanded_bytes ?? 0;
    expect(size).toBeGreaterThan(0);
    await s.stack.s3.send(
      new PutObjectCommand({
        Bucket: s.stack.bucket,
        Key: `${EXPANDED_PREFIX}${split.id}`,
        Body: Buffer.alloc(size, 'x'),
      }),
    );
    loads.resume();
    const file = await finished(s, key);
    await exact(s, file, rows);
    expect(await table(s, 'gz_rows')).toEqual({ n: rows, sum: sumTo(rows) });
    expect(await expandedCopies(s)).toEqual([]);
  });

  it('a file split before the expanded size was recorded, its copy and messages lost: resumes exactly', async () => {
    const loads = pausableLoads(2);
    loads.dies = true;
    const s = await start(loads.wrap);
    const rows = 20_000;
    const key = 'incoming/gz/older.csv.gz';
    await drop(s, key, gzipSync(csv(rows)));
    const stuck = await until(
      'two chunks to load',
      async () => {
        const f = await fileRow(s, key);
        return f && f.chunks_done >= 2 ? f : undefined;
      },
      () => fileRow(s, key),
    );
    // As an older dropload left it: no expanded size in the ledger.
    await db(s)
      .updateTable('dropload.file')
      .set({ expanded_bytes: null })
      .where('id', '=', stuck.id)
      .execute();
    await deleteExpandedCopy(s, stuck.id);
    await s.stack.sqs.send(new PurgeQueueCommand({ QueueUrl: s.stack.chunks.url }));
    loads.resume();
    await new Promise((r) => setTimeout(r, 300));
    loads.dies = false;
    await s.announce({ bucket: s.stack.bucket, key, etag: stuck.etag });
    const file = await finished(s, key);
    await exact(s, file, rows);
    expect(file.expanded_bytes).toBe(Buffer.byteLength(csv(rows)));
    expect(await table(s, 'gz_rows')).toEqual({ n: rows, sum: sumTo(rows) });
    expect(await expandedCopies(s)).toEqual([]);
  });

  it('the expanded copy and the original both gone: the file fails with the reason, nothing left behind', async () => {
    const loads = pausableLoads();
    const s = await start(loads.wrap);
    const key = 'incoming/gz/vanished.csv.gz';
    await drop(s, key, gzipSync(csv(12_000)));
    const split = await until(
      'the split',
      async () => {
        const f = await fileRow(s, key);
        return f?.state === 'loading' ? f : undefined;
      },
      () => fileRow(s, key),
    );
    await deleteExpandedCopy(s, split.id);
    await s.stack.s3.send(new DeleteObjectCommand({ Bucket: s.stack.bucket, Key: key }));
    loads.resume();
    const file = await finished(s, key);
    expect([file.state, file.error, file.rows_read]).toEqual([
      'failed',
      `s3://${s.stack.bucket}/${key} no longer exists (deleted or renamed before it was read)`,
      0,
    ]);
    expect(await table(s, 'gz_rows')).toEqual({ n: 0, sum: null });
    expect(await expandedCopies(s)).toEqual([]);
  });

  it('a gzip bomb (1 MiB → 1 GiB) fails early, naming the limit, and leaves no expanded copy', async () => {
    const s = await start();
    // 1,024 gzip members of 1 MiB of one repeated line each: a valid multi-member gzip file.
    const line = '7,bomb\n';
    const mib = line.repeat(Math.ceil((1024 * 1024) / line.length));
    const member = gzipSync(mib, { level: 9 });
    const bomb = Buffer.concat([gzipSync(`id,label\n${mib}`, { level: 9 }), ...Array(1023).fill(member)]);
    expect(bomb.length).toBeLessThan(2 * 1024 * 1024);
    await drop(s, 'incoming/bomb/bomb.csv.gz', bomb);
    const file = await finished(s, 'incoming/bomb/bomb.csv.gz');
    expect(file.state).toBe('failed');
    expect(file.error).toMatch(
      /^gzip data expands more than 100× \(maxExpansionRatio\): \d+ compressed bytes had expanded to \d+ bytes when it was stopped; raise maxExpansionRatio for this dataset if the file is genuine$/,
    );
    expect([file.chunk_count, file.rows_read]).toEqual([null, 0]);
    expect(await expandedCopies(s)).toEqual([]);
    expect(await table(s, 'gz_rows')).toEqual({ n: 0, sum: null });
  });

  it('a file past maxExpandedBytes fails naming the limit, and its uploaded parts are not left behind', async () => {
    const s = await start();
    // Modest ratio (distinct lines), ~12 MiB expanded: more than one 5 MiB part is uploaded before the limit.
    const body = gzipSync(csv(250_000));
    await drop(s, 'incoming/capped/large.csv.gz', body);
    const file = await finished(s, 'incoming/capped/large.csv.gz');
    expect([file.state, file.error]).toEqual([
      'failed',
      'file expands past maxExpandedBytes (8388608 bytes) when decompressed',
    ]);
    expect(await expandedCopies(s)).toEqual([]);
  });

  it('a split that fails mid-expansion aborts its multipart upload: no parts left in the state folder (h11)', async () => {
    const state = await mkdtemp(path.join(tmpdir(), 'dropload-gz-'));
    const s = await start(undefined, state);
    // As above: more than one 5 MiB part is uploaded before the limit stops the expansion.
    await drop(s, 'incoming/capped/parts.csv.gz', gzipSync(csv(250_000)));
    const file = await finished(s, 'incoming/capped/parts.csv.gz');
    expect(file.state).toBe('failed');
    try {
      expect(await readdir(path.join(state, 'objects', '_multipart'))).toEqual([]);
    } finally {
      await s.stop();
      p = undefined;
      await rm(state, { recursive: true, force: true });
    }
  });

  it('a finished gzip file leaves no expanded copy, loaded or failed', async () => {
    const s = await start();
    await drop(s, 'incoming/gz/done.csv.gz', gzipSync(csv(5_000)));
    const loaded = await finished(s, 'incoming/gz/done.csv.gz');
    await exact(s, loaded, 5_000);
    // Fails after the expansion: the header lacks a required column.
    await drop(s, 'incoming/gz/no-label.csv.gz', gzipSync('id,name\n1,a\n'));
    const failed = await finished(s, 'incoming/gz/no-label.csv.gz');
    expect([failed.state, failed.error]).toEqual([
      'failed',
      'header lacks required column(s) "label"; found "id", "name"',
    ]);
    // Header only: loaded at once, with no chunk to read the copy.
    await drop(s, 'incoming/gz/empty.csv.gz', gzipSync('id,label\n'));
    expect((await finished(s, 'incoming/gz/empty.csv.gz')).state).toBe('loaded');
    expect(await expandedCopies(s)).toEqual([]);
  });
});
