import { gzipSync } from 'node:zlib';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { type Kysely, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { resolveConfig } from '../../shared/config/config.ts';
import { defineDataset } from '../../shared/config/dataset.ts';
import { DROP_AGAIN } from '../../shared/core/errors.ts';
import { STRAY_QUOTE_HINT } from '../../shared/formats/chunking.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { rejectKindsOfKey, rejectsOfKey, startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/** Each bad input from the reliability issue: a clear error where an operator sees it, nothing lost. */

const migration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('bad_rows')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('note', 'text', (c) => c.notNull())
      .execute();
  },
};
const config = {
  datasets: [
    defineDataset({
      name: 'rows',
      format: 'csv',
      table: 'bad_rows',
      maxRecordBytes: 4096,
      schema: z.object({ id: z.coerce.number().int(), note: z.string() }),
    }),
    defineDataset({
      name: 'small',
      format: 'csv',
      table: 'bad_rows',
      maxExpandedBytes: 64 * 1024,
      schema: z.object({ id: z.coerce.number().int(), note: z.string() }),
    }),
    defineDataset({
      name: 'docs',
      prefix: 'incoming/docs/',
      format: 'ndjson',
      table: 'bad_rows',
      schema: z.object({ id: z.number().int(), note: z.string() }),
    }),
  ],
  migrations: { '20260101000000_bad': migration },
};

let p: TestPipeline;
let db: Kysely<Database>;
beforeAll(async () => {
  p = await startTestPipeline(config, ['bad_rows']);
  db = p.deps.db;
});
afterAll(async () => {
  await p?.stop();
});

/** Announces an already registered version again, then waits (up to 10 s) for it to load. */
async function reannounced(file: { id: number; bucket: string; key: string; etag: string; size: number }) {
  await p.announce({ bucket: file.bucket, key: file.key, etag: file.etag, size: file.size });
  for (let i = 0; i < 100; i++) {
    const f = await db
      .selectFrom('dropload.file')
      .select('state')
      .where('id', '=', file.id)
      .executeTakeFirstOrThrow();
    if (f.state === 'loaded') return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const rejectsFor = (key: string) => rejectsOfKey(db, key);
/** The receipt written next to the input, as whoever dropped it reads it. */
async function receiptOf(key: string): Promise<Record<string, unknown>> {
  const out = await p.stack.s3.send(
    new GetObjectCommand({ Bucket: p.stack.bucket, Key: `reports/${key}.json` }),
  );
  return JSON.parse((await out.Body?.transformToString()) ?? '{}');
}
const notes = async (from: number, to: number) =>
  (
    await sql<{
      id: number;
      note: string;
    }>`select id, note from bad_rows where id between ${from} and ${to} order by id`.execute(db)
  ).rows;

describe('bad input', () => {
  it('a header-only file loads as a file with no rows, and says so', async () => {
    const { reports } = await p.load('incoming/rows/header-only.csv', 'id,note\r\n');
    expect(reports[0]).toMatchObject({ state: 'loaded', chunks: { done: 0, total: 0 } });
    expect(reports[0]?.rows.read).toBe(0);
    expect(reports[0]?.note).toBe('file has a header but no data rows');
    // Finished in the split step (no chunk to load): the receipt is written there.
    expect(await receiptOf('incoming/rows/header-only.csv')).toMatchObject({
      state: 'loaded',
      note: 'file has a header but no data rows',
      chunks: { done: 0, total: 0 },
    });
  });

  it('a gzip of a gzip, a zip named .csv and an empty gzip fail saying what they are, each with a receipt', async () => {
    const cases: [string, Uint8Array, string][] = [
      [
        'incoming/rows/twice.csv.gz',
        gzipSync(gzipSync('id,note\n1,a\n')),
        'file is a gzip inside a gzip: gunzip it once before dropping',
      ],
      [
        'incoming/rows/archive.csv',
        Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.from('\u0000\u0000id,note\n')]),
        'file is a zip archive: dropload reads CSV/NDJSON/Parquet, optionally gzipped; unzip it and drop the files',
      ],
      ['incoming/rows/nothing.csv.gz', gzipSync(''), 'file is an empty gzip (no bytes inside)'],
    ];
    for (const [key, body, error] of cases) {
      const { reports } = await p.load(key, body);
      expect(reports.map((r) => [r.state, r.error])).toEqual([['failed', error]]);
      expect(await receiptOf(key)).toMatchObject({ state: 'failed', error, action: DROP_AGAIN });
    }
  });

  it('an unbalanced quote on the last line rejects that record only', async () => {
    const { reports } = await p.load('incoming/rows/unbalanced.csv', 'id,note\n1,fine\n2,"never closed');
    expect(reports[0]?.rows).toMatchObject({ read: 2, loaded: 1, rejected: 1 });
    expect(await rejectsFor('incoming/rows/unbalanced.csv')).toEqual([
      {
        line: 3,
        column: null,
        reason: `malformed CSV: Quoted field unterminated (${STRAY_QUOTE_HINT})`,
        raw: '2,"never closed',
      },
    ]);
    // Stored as it is in the file: a retry can read it again.
    expect(await rejectKindsOfKey(db, 'incoming/rows/unbalanced.csv')).toEqual(['malformed']);
  });

  it('a quote never closed that would swallow the lines after it fails the file, loading nothing', async () => {
    const body = 'id,note\n101,fine\n102,"never closed\n103,tail\n104,more\n';
    const { reports } = await p.load('incoming/rows/swallow.csv', body);
    expect(reports[0]?.state).toBe('failed');
    expect(reports[0]?.error).toBe(
      `line 3: a quoted field opened here is never closed, so the remaining 3 lines (36 bytes) would read as one value; nothing was loaded: close the quote and drop the file again (${STRAY_QUOTE_HINT})`,
    );
    expect(await notes(101, 104)).toEqual([]);
  });

  it('CR-only line endings fail the file instead of loading a header with no rows', async () => {
    const { reports } = await p.load('incoming/rows/mac.csv', 'id,note\r5,a\r6,b\r');
    expect(reports[0]?.state).toBe('failed');
    expect(reports[0]?.error).toBe(
      'file uses CR-only line endings (classic Mac); save it with LF or CRLF line endings',
    );
  });

  it('a header column that differs from a field only in case fails with a hint; unknown columns are noted', async () => {
    const { reports } = await p.load('incoming/rows/case.csv', 'ID,note\n7,x\n');
    expect(reports[0]?.error).toBe('header column "ID" differs from the schema\'s field "id" only in case');
    const extra = await p.load('incoming/rows/extra.csv', 'id,note,colour\n8,x,red\n');
    expect(extra.reports[0]).toMatchObject({ state: 'loaded', rows: { loaded: 1 } });
    expect(extra.reports[0]?.note).toBe('columns not in the schema were ignored: "colour"');
  });

  it('bytes that are not UTF-8 reject only their line, with the line number', async () => {
    const body = Buffer.concat([
      Buffer.from('id,note\n10,ok\n11,caf'),
      Buffer.from([0xe9]),
      Buffer.from('\n12,ok too\n'),
    ]);
    const { reports } = await p.load('incoming/rows/latin1.csv', body);
    expect(reports[0]?.rows).toMatchObject({ read: 3, loaded: 2, rejected: 1 });
    expect(await rejectsFor('incoming/rows/latin1.csv')).toEqual([
      {
        line: 3,
        column: null,
        reason: 'bytes are not valid UTF-8 (first bad byte at offset 6 of the line)',
        raw: '11,caf\uFFFD',
      },
    ]);
    expect(await rejectKindsOfKey(db, 'incoming/rows/latin1.csv')).toEqual(['unreadable']);
    expect(await notes(10, 12)).toEqual([
      { id: 10, note: 'ok' },
      { id: 12, note: 'ok too' },
    ]);
  });

  it('a line longer than maxRecordBytes is rejected without being read whole', async () => {
    const long = `21,${'z'.repeat(10_000)}`;
    const { reports } = await p.load('incoming/rows/long.csv', `id,note\n20,short\n${long}\n22,short\n`);
    expect(reports[0]?.rows).toMatchObject({ read: 3, loaded: 2, rejected: 1 });
    const [reject] = await rejectsFor('incoming/rows/long.csv');
    expect(reject?.line).toBe(3);
    expect(reject?.reason).toBe('record is 10004 bytes, over the limit of 4096 bytes (maxRecordBytes)');
    expect(reject?.raw).toBe(`${long.slice(0, 1024)}…`);
    expect(await rejectKindsOfKey(db, 'incoming/rows/long.csv')).toEqual(['unreadable']);
  });

  it('a key with spaces, +, unicode and percent signs round-trips through the S3 event and loads', async () => {
    const key = 'incoming/rows/Q4 report+final ü 100%25 (2).csv';
    const { reports } = await p.load(key, 'id,note\n35,weird key\n');
    expect(reports[0]).toMatchObject({ key, state: 'loaded', rows: { read: 1, loaded: 1 } });
    const file = await db
      .selectFrom('dropload.file')
      .select('key')
      .where('key', '=', key)
      .executeTakeFirstOrThrow();
    expect(file.key).toBe(key);
  });

  it('a file that failed before any row loaded loads when announced again after the cause is fixed', async () => {
    const key = 'incoming/rows/retry-after-fix.csv';
    const first = await p.load(key, 'id\n120\n121\n');
    expect(first.reports[0]?.error).toBe('header lacks required column(s) "note"; found "id"');
    const before = p.deps.config;
    // The fix: the dataset now gives `note` a default.
    const fixed = config.datasets.map((d) =>
      d.name === 'rows'
        ? { ...d, schema: z.object({ id: z.coerce.number().int(), note: z.string().default('n/a') }) }
        : d,
    );
    p.deps.config = resolveConfig({ ...config, datasets: fixed }, 'fixed');
    try {
      const file = await db
        .selectFrom('dropload.file')
        .selectAll()
        .where('key', '=', key)
        .executeTakeFirstOrThrow();
      await reannounced(file);
      expect(await notes(120, 121)).toEqual([
        { id: 120, note: 'n/a' },
        { id: 121, note: 'n/a' },
      ]);
      const again = await db.selectFrom('dropload.file').selectAll().where('key', '=', key).execute();
      expect(again.map((f) => [f.state, f.error, f.rows_read, f.rows_inserted])).toEqual([
        ['loaded', null, 2, 2],
      ]);
    } finally {
      p.deps.config = before;
    }
  });

  it('a dataset whose table is missing fails the file at once, naming the table; it loads once migrated and announced again', async () => {
    const before = p.deps.config;
    const unmigrated = defineDataset({
      name: 'later',
      format: 'csv',
      table: 'bad_later',
      schema: z.object({ id: z.coerce.number().int() }),
    });
    p.deps.config = resolveConfig({ ...config, datasets: [...config.datasets, unmigrated] }, 'with later');
    try {
      const key = 'incoming/later/first.csv';
      const { reports } = await p.load(key, 'id\n1\n2\n');
      expect(reports[0]?.state).toBe('failed');
      expect(reports[0]?.error).toBe('table bad_later does not exist (has its migration run?)');
      expect(await receiptOf(key)).toMatchObject({
        state: 'failed',
        action:
          'nothing of it was loaded: create or migrate the table (`npx dropload migrate`), then drop the file again',
      });
      await sql`create table bad_later (id integer primary key)`.execute(db);
      const file = await db
        .selectFrom('dropload.file')
        .selectAll()
        .where('key', '=', key)
        .executeTakeFirstOrThrow();
      await reannounced(file);
      const rows = await sql<{ id: number }>`select id from bad_later order by id`.execute(db);
      expect(rows.rows).toEqual([{ id: 1 }, { id: 2 }]);
    } finally {
      p.deps.config = before;
      await sql`drop table if exists bad_later`.execute(db);
    }
  });

  it('values that look like SQL are stored literally', async () => {
    const evil = `'); DROP TABLE bad_rows; --`;
    await p.load(
      'incoming/rows/sql.csv',
      `id,note\n30,"${evil}"\n31,"Robert""); DELETE FROM dropload.file; --"\n`,
    );
    expect(await notes(30, 31)).toEqual([
      { id: 30, note: evil },
      { id: 31, note: 'Robert"); DELETE FROM dropload.file; --' },
    ]);
  });

  it('a number the schema accepts but the column cannot hold is rejected by the database, naming the reason', async () => {
    const { reports } = await p.load(
      'incoming/rows/range.csv',
      'id,note\n40,ok\n99999999999,too big\n41,ok\n',
    );
    expect(reports[0]?.rows).toMatchObject({ read: 3, loaded: 2, rejected: 1 });
    const [reject] = await rejectsFor('incoming/rows/range.csv');
    expect(reject).toMatchObject({ line: 3, raw: '99999999999,too big' });
    expect(reject?.reason).toMatch(
      /^database refused the row: value "99999999999" is out of range for type integer/,
    );
    expect(await rejectKindsOfKey(db, 'incoming/rows/range.csv')).toEqual(['refused']);
  });

  it('NDJSON: invalid JSON, a non-object line and a wrong type each reject their line', async () => {
    const body = [
      '{"id":50,"note":"a"}',
      '{"id":51,',
      '[1,2]',
      '{"id":"52","note":"b"}',
      '',
      '{"id":53,"note":"c"}',
    ].join('\n');
    const { reports } = await p.load('incoming/docs/d.ndjson', body);
    expect(reports[0]?.rows).toMatchObject({ read: 5, loaded: 2, rejected: 3 });
    expect((await rejectsFor('incoming/docs/d.ndjson')).map((r) => [r.line, r.column, r.reason])).toEqual([
      [2, null, expect.stringMatching(/^invalid JSON: /)],
      [3, null, 'line is not a JSON object'],
      [4, 'id', 'not a valid number (got "52")'],
    ]);
  });
});

describe('gzip', () => {
  it('a gzip file loads like the plain one, whatever its name says', async () => {
    const plain = 'id,note\n60,gz one\n61,gz two\n62,gz three\n';
    const { reports } = await p.load('incoming/rows/packed.csv.gz', gzipSync(plain));
    expect(reports[0]?.rows).toMatchObject({ read: 3, loaded: 3, rejected: 0 });
    const again = await p.load('incoming/rows/packed-no-suffix.csv', gzipSync(plain.replaceAll('6', '7')));
    expect(again.reports[0]?.rows).toMatchObject({ read: 3, loaded: 3 });
    expect(await notes(60, 72)).toEqual([
      { id: 60, note: 'gz one' },
      { id: 61, note: 'gz two' },
      { id: 62, note: 'gz three' },
      { id: 70, note: 'gz one' },
      { id: 71, note: 'gz two' },
      { id: 72, note: 'gz three' },
    ]);
  });

  it('a truncated gzip file fails with the reason', async () => {
    const whole = gzipSync('id,note\n80,a\n81,b\n');
    const { reports } = await p.load('incoming/rows/cut.csv.gz', whole.subarray(0, whole.length - 8));
    expect(reports[0]?.state).toBe('failed');
    expect(reports[0]?.error).toBe('gzip data is corrupt or truncated: unexpected end of file');
  });

  it('a file that expands past maxExpandedBytes fails before it fills the disk', async () => {
    const bomb = gzipSync(`id,note\n${'90,x\n'.repeat(20_000)}`);
    const { reports } = await p.load('incoming/small/bomb.csv.gz', bomb);
    expect(reports[0]?.state).toBe('failed');
    expect(reports[0]?.error).toBe('file expands past maxExpandedBytes (65536 bytes) when decompressed');
  });
});
