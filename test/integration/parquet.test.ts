import { PutObjectCommand } from '@aws-sdk/client-s3';
import { parquetReadObjects, toJson } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { type Kysely, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { unquoteEtag } from '../../shared/aws/s3-events.ts';
import { defineDataset, resolveDataset } from '../../shared/config/dataset.ts';
import { ParquetCursor, planParquet, readParquetChunk } from '../../shared/formats/parquet.ts';
import { rejectsOf } from '../../shared/ledger/ledger.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

const TABLE = 'it_parquet_sales';

const sales: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable(TABLE)
      .addColumn('id', 'bigint', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('amount', 'numeric(12, 2)')
      .addColumn('sold_at', 'timestamptz', (c) => c.notNull())
      .addColumn('paid', 'boolean', (c) => c.notNull())
      .execute();
  },
};

// Parquet values arrive typed: INT64 as bigint, TIMESTAMP as Date, BOOLEAN as boolean.
const schema = z.object({
  id: z.coerce.number().int().positive(),
  name: z.string().min(1),
  amount: z.number().nonnegative().optional(),
  sold_at: z.date(),
  paid: z.boolean(),
});

const config = {
  datasets: [
    defineDataset({
      name: 'sales',
      prefix: 'incoming/sales/',
      format: 'parquet',
      table: TABLE,
      schema,
      chunkBytes: 64 * 1024,
    }),
    defineDataset({
      name: 'sales-upsert',
      prefix: 'incoming/sales-upsert/',
      format: 'parquet',
      table: TABLE,
      schema,
      mode: 'upsert',
      key: ['id'],
      chunkBytes: 64 * 1024,
    }),
  ],
  migrations: { '20260101000000_sales': sales },
};

const ROWS = 6000;
const BASE = Date.UTC(2026, 0, 1);

/** Row i (0-based): every 1000th has an empty name, every 1500th a negative amount; every 7th has no amount. */
function columns(rows = ROWS) {
  const ids = Array.from({ length: rows }, (_, i) => BigInt(i + 1));
  return [
    { name: 'id', data: ids, type: 'INT64' as const },
    {
      name: 'name',
      data: ids.map((id) => (id % 1000n === 500n ? '' : `customer ${id} ${'x'.repeat(Number(id % 40n))}`)),
      type: 'STRING' as const,
    },
    {
      name: 'amount',
      data: ids.map((id) => (id % 7n === 0n ? null : id % 1500n === 0n ? -1 : Number(id % 1000n) + 0.25)),
      type: 'DOUBLE' as const,
    },
    {
      name: 'sold_at',
      data: ids.map((id) => new Date(BASE + Number(id) * 60_000)),
      type: 'TIMESTAMP' as const,
    },
    { name: 'paid', data: ids.map((id) => id % 2n === 0n), type: 'BOOLEAN' as const },
  ];
}

let p: TestPipeline;
let db: Kysely<Database>;

beforeAll(async () => {
  p = await startTestPipeline(config, [TABLE]);
  db = p.deps.db;
});
afterAll(async () => {
  await p?.stop();
});

function chunksOf(fileId: number) {
  return db
    .selectFrom('dropload.chunk')
    .select(['first_line', 'start_byte', 'end_byte'])
    .where('file_id', '=', fileId)
    .orderBy('idx')
    .execute();
}

async function fileRejects(key: string) {
  const file = await db
    .selectFrom('dropload.file')
    .selectAll()
    .where('key', '=', key)
    .executeTakeFirstOrThrow();
  return { file, rejects: await rejectsOf(db, file.id) };
}

describe('a Parquet file', () => {
  it('loads every valid row, chunked at row groups, and rejects the rest by row number and column', async () => {
    const bytes = new Uint8Array(parquetWriteBuffer({ columnData: columns(), rowGroupSize: 500 }));
    const key = 'incoming/sales/sales.parquet';
    const { reports } = await p.load(key, bytes);
    const report = reports[0];
    // 6 empty names (500, 1500, …, 5500) and 4 negative amounts (1500, 3000, 4500, 6000); 1500 and 4500
    // are both, and make one reject each, for the first field that fails.
    expect(report?.state).toBe('loaded');
    expect(report?.rows).toEqual({
      read: ROWS,
      loaded: ROWS - 8,
      inserted: ROWS - 8,
      updated: 0,
      unchanged: 0,
      waiting: 0,
      rejected: 8,
      open: 8,
    });
    expect(report?.chunks.total).toBeGreaterThan(1);

    const { rows } = await sql<{ n: number; ids: string; nulls: number; first: string; paid: number }>`
      select count(*)::int as n, sum(id)::text as ids, count(*) filter (where amount is null)::int as nulls,
        (min(sold_at) at time zone 'UTC')::text as first, count(*) filter (where paid)::int as paid
      from ${sql.table(TABLE)}`.execute(db);
    const loaded = Array.from({ length: ROWS }, (_, i) => i + 1).filter(
      (id) => id % 1000 !== 500 && id % 1500 !== 0,
    );
    expect(rows[0]).toEqual({
      n: ROWS - 8,
      ids: String(loaded.reduce((a, b) => a + b, 0)),
      nulls: loaded.filter((id) => id % 7 === 0).length,
      first: '2026-01-01 00:01:00',
      paid: loaded.filter((id) => id % 2 === 0).length,
    });

    const { file, rejects } = await fileRejects(key);
    // Chunks are runs of whole row groups (500 rows each here), in order, over every row.
    const chunks = await chunksOf(file.id);
    expect(chunks.length).toBe(report?.chunks.total);
    expect(chunks[0]?.first_line).toBe(1);
    for (const [i, c] of chunks.entries()) {
      expect((c.first_line - 1) % 500, `chunk ${i}`).toBe(0);
      if (i > 0) expect(c.start_byte).toBeGreaterThanOrEqual(chunks[i - 1]?.end_byte ?? 0);
      expect(c.end_byte - c.start_byte).toBeLessThanOrEqual(64 * 1024);
    }
    expect(rejects.map((r) => [r.line, r.column])).toEqual([
      [500, 'name'],
      [1500, 'name'],
      [2500, 'name'],
      [3000, 'amount'],
      [3500, 'name'],
      [4500, 'name'],
      [5500, 'name'],
      [6000, 'amount'],
    ]);
    expect(rejects[0]).toMatchObject({
      reason: 'a value is required (got "")',
      raw: '{"id":500,"name":"","amount":500.25,"sold_at":"2026-01-01T08:20:00.000Z","paid":true}',
    });
    expect(rejects[3]?.reason).toBe('Too small: expected number to be >=0 (got "-1")');
  });

  it('cuts a row group bigger than chunkBytes into row ranges, with or without an offset index', async () => {
    for (const offsetIndex of [true, false]) {
      await sql`truncate ${sql.table(TABLE)}`.execute(db);
      const bytes = new Uint8Array(
        parquetWriteBuffer({
          columnData: columns().map((c) => ({ ...c, offsetIndex })),
          rowGroupSize: ROWS,
        }),
      );
      const key = `incoming/sales/one-group-${offsetIndex}.parquet`;
      const { reports } = await p.load(key, bytes);
      expect(reports[0]?.state).toBe('loaded');
      expect(reports[0]?.rows).toMatchObject({ read: ROWS, loaded: ROWS - 8, rejected: 8 });
      const { file, rejects } = await fileRejects(key);
      expect(rejects.map((r) => r.line)).toEqual([500, 1500, 2500, 3000, 3500, 4500, 5500, 6000]);
      const chunks = await chunksOf(file.id);
      expect(chunks.length).toBeGreaterThan(1);
      // Every chunk spans the one row group's bytes, and its rows start after the chunk before.
      expect(new Set(chunks.map((c) => `${c.start_byte}-${c.end_byte}`)).size).toBe(1);
      expect(chunks[0]?.first_line).toBe(1);
      for (let i = 1; i < chunks.length; i++)
        expect(chunks[i]?.first_line).toBeGreaterThan(chunks[i - 1]?.first_line ?? 0);
      const { rows } = await sql<{ n: number; distinct: number }>`
        select count(*)::int as n, count(distinct id)::int as distinct from ${sql.table(TABLE)}`.execute(db);
      expect(rows[0]).toEqual({ n: ROWS - 8, distinct: ROWS - 8 });
    }
  });

  it('fails as a whole, naming the column, when its schema lacks a required field', async () => {
    const bytes = new Uint8Array(
      parquetWriteBuffer({ columnData: columns(10).filter((c) => c.name !== 'paid') }),
    );
    const key = 'incoming/sales/no-paid.parquet';
    const { reports } = await p.load(key, bytes);
    expect(reports[0]?.state).toBe('failed');
    expect(reports[0]?.error).toBe(
      'Parquet schema lacks required column(s) "paid"; found "id", "name", "amount", "sold_at"',
    );
  });

  it('fails as a whole when the bytes are not Parquet', async () => {
    const key = 'incoming/sales/actually.csv';
    const { reports } = await p.load(key, 'id,name\n1,Ada\n');
    expect(reports[0]?.state).toBe('failed');
    expect(reports[0]?.error).toMatch(/^not a readable Parquet file: /);
  });

  it('loads a file with no rows as loaded and empty, with a note', async () => {
    const bytes = new Uint8Array(parquetWriteBuffer({ columnData: columns(0) }));
    const { reports } = await p.load('incoming/sales/empty.parquet', bytes);
    expect(reports[0]?.state).toBe('loaded');
    expect(reports[0]?.rows.read).toBe(0);
    expect(reports[0]?.note).toBe('file has no rows');
  });

  it('upserts on the key: changed rows are updated, new ones inserted, the rest left alone', async () => {
    await sql`truncate ${sql.table(TABLE)}`.execute(db);
    const first = new Uint8Array(parquetWriteBuffer({ columnData: columns(3000), rowGroupSize: 500 }));
    const a = await p.load('incoming/sales-upsert/a.parquet', first);
    // Rejected: empty names at 500, 1500, 2500; a negative amount at 3000.
    expect(a.reports[0]?.rows).toEqual({
      read: 3000,
      loaded: 2996,
      inserted: 2996,
      updated: 0,
      unchanged: 0,
      waiting: 0,
      rejected: 4,
      open: 4,
    });
    const changed = columns(3010).map((c) =>
      c.name === 'amount'
        ? { ...c, data: c.data.map((v, i) => (i < 100 && typeof v === 'number' ? v + 1 : v)) }
        : c,
    );
    const second = new Uint8Array(parquetWriteBuffer({ columnData: changed, rowGroupSize: 500 }));
    const b = await p.load('incoming/sales-upsert/b.parquet', second);
    // Ids 1–100 with an amount (86: every 7th has none) change; 3001–3010 are new.
    expect(b.reports[0]?.rows).toEqual({
      read: 3010,
      loaded: 3006,
      inserted: 10,
      updated: 86,
      unchanged: 2910,
      waiting: 0,
      rejected: 4,
      // Its rows for the keys a.parquet rejected are rejected too: those stay open.
      open: 4,
    });
    const { rows } = await sql<{ amount: string }>`
      select amount::text as amount from ${sql.table(TABLE)} where id = 1`.execute(db);
    expect(rows[0]?.amount).toBe('2.25');
  });

  it('reads chunks column by column into the rows hyparquet makes: timestamps, dates, nulls, pages, structs', async () => {
    for (const [name, bytes] of [
      ['flat', typedParquet(false)],
      ['with a struct', typedParquet(true)],
    ] as const) {
      const key = `incoming/typed/${name}.parquet`;
      const put = await p.stack.s3.send(
        new PutObjectCommand({ Bucket: p.stack.bucket, Key: key, Body: bytes }),
      );
      const object = { bucket: p.stack.bucket, key, etag: unquoteEtag(put.ETag ?? '') };
      const dataset = resolveDataset({
        name: 'typed',
        format: 'parquet',
        table: 'typed',
        schema: z.object({ id: z.bigint(), at: z.date(), day: z.date(), score: z.number(), s: z.unknown() }),
        chunkBytes: 64 * 1024,
      });
      const plan = await planParquet(p.stack.s3, object, bytes.length, dataset);
      // Whole row groups run together, and the big last one is cut into row ranges.
      expect(plan.chunks.map((c) => [c.firstLine, c.records])).toEqual(
        name === 'flat'
          ? [
              [1, 2100],
              [2101, 700],
              [2801, 2100],
              [4901, 2100],
            ]
          : [
              [1, 1400],
              [1401, 1400],
              [2801, 1400],
              [4201, 1400],
              [5601, 1400],
            ],
      );
      const read: { line: number; fields: unknown }[] = [];
      for (const chunk of plan.chunks) {
        const cursor = new ParquetCursor(await readParquetChunk(p.stack.s3, object, chunk, dataset));
        while (cursor.next()) read.push({ line: cursor.line, fields: cursor.fields });
      }
      // What the cursor read rows from before (hyparquet's row objects, nested values as JSON).
      const rows = await parquetReadObjects({ file: bytes.buffer as ArrayBuffer });
      const expected = rows.map((row, i) => ({
        line: i + 1,
        fields: Object.fromEntries(Object.entries(row).map(([k, v]) => [k, k === 's' ? toJson(v) : v])),
      }));
      expect(read).toEqual(expected);
      expect(read[5]?.fields).toEqual({
        id: 6n,
        at: null,
        day: new Date(Date.UTC(2026, 0, 6)),
        score: 3,
        ...(name === 'flat' ? {} : { s: { at: new Date(BASE + 6 * 60_000).toISOString() } }),
      });
    }
  });
});

/**
 * 7,000 rows in row groups of 700 rows and a last one of 4,200 (over chunkBytes), in pages of about
 * 2 KB: a nullable timestamp (every 5th row null), a DATE, a double (decoded as typed arrays, one per
 * page), and, when `struct`, a struct holding a timestamp (so the read is not flat).
 */
function typedParquet(struct: boolean): Uint8Array {
  const rows = 7000;
  const ids = Array.from({ length: rows }, (_, i) => i + 1);
  const schema: NonNullable<Parameters<typeof parquetWriteBuffer>[0]['schema']> = [
    { name: 'root', num_children: struct ? 5 : 4 },
    { name: 'id', type: 'INT64', repetition_type: 'REQUIRED' },
    {
      name: 'at',
      type: 'INT64',
      repetition_type: 'OPTIONAL',
      logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' },
    },
    { name: 'day', type: 'INT32', repetition_type: 'OPTIONAL', converted_type: 'DATE' },
    { name: 'score', type: 'DOUBLE', repetition_type: 'REQUIRED' },
  ];
  if (struct) {
    schema.push(
      { name: 's', repetition_type: 'OPTIONAL', num_children: 1 },
      { name: 'at', type: 'INT64', repetition_type: 'OPTIONAL', converted_type: 'TIMESTAMP_MILLIS' },
    );
  }
  const columnData = [
    { name: 'id', data: ids.map(BigInt) },
    { name: 'at', data: ids.map((i) => (i % 5 === 1 && i > 1 ? null : new Date(BASE + i * 60_000))) },
    { name: 'day', data: ids.map((i) => new Date(Date.UTC(2026, 0, i))) },
    { name: 'score', data: ids.map((i) => i / 2) },
    ...(struct ? [{ name: 's', data: ids.map((i) => ({ at: new Date(BASE + i * 60_000) })) }] : []),
  ];
  return new Uint8Array(
    parquetWriteBuffer({ columnData, schema, rowGroupSize: [700, 700, 700, 700, 4200], pageSize: 2048 }),
  );
}
