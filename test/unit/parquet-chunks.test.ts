import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { resolveDataset } from '../../shared/config/dataset.ts';
import { classifyError, FileRejectedError } from '../../shared/core/errors.ts';
import { parquetChunks, planParquet, type RowGroupInfo } from '../../shared/formats/parquet.ts';

/** Row groups laid out one after another from byte 4 (after the `PAR1` magic). */
function layout(groups: { rows: number; bytes: number; compressed?: number }[]): RowGroupInfo[] {
  let at = 4;
  return groups.map((g) => {
    const start = at;
    at += g.compressed ?? Math.ceil(g.bytes / 2);
    return { rows: g.rows, bytes: g.bytes, start, end: at };
  });
}

const summary = (groups: RowGroupInfo[], chunkBytes: number) =>
  parquetChunks(groups, chunkBytes).map((c) => [c.index, c.start, c.end, c.firstLine, c.records]);

describe('parquetChunks', () => {
  it('runs whole row groups together up to chunkBytes uncompressed', () => {
    const groups = layout([
      { rows: 10, bytes: 400 },
      { rows: 10, bytes: 400 },
      { rows: 10, bytes: 400 },
      { rows: 5, bytes: 100 },
    ]);
    expect(summary(groups, 1000)).toEqual([
      [0, 4, 404, 1, 20],
      [1, 404, 654, 21, 15],
    ]);
  });

  it('cuts a row group bigger than chunkBytes into row ranges over its bytes, and starts a new run after it', () => {
    const groups = layout([
      { rows: 100, bytes: 2500 },
      { rows: 7, bytes: 100 },
      { rows: 3, bytes: 100 },
    ]);
    expect(summary(groups, 1000)).toEqual([
      [0, 4, 1254, 1, 34],
      [1, 4, 1254, 35, 34],
      [2, 4, 1254, 69, 32],
      [3, 1254, 1354, 101, 10],
    ]);
  });

  it('accounts for every row once, in order', () => {
    const groups = layout(
      Array.from({ length: 40 }, (_, i) => ({ rows: (i * 37) % 23, bytes: ((i * 7919) % 3000) + 1 })),
    );
    for (const chunkBytes of [500, 1000, 4000, 1e9]) {
      const chunks = parquetChunks(groups, chunkBytes);
      let next = 1;
      for (const c of chunks) {
        expect(c.firstLine).toBe(next);
        expect(c.records).toBeGreaterThan(0);
        next += c.records;
      }
      expect(next - 1).toBe(groups.reduce((n, g) => n + g.rows, 0));
    }
  });

  it('skips empty row groups and makes no chunk of a file without rows', () => {
    expect(summary(layout([{ rows: 0, bytes: 0 }]), 1000)).toEqual([]);
    expect(
      summary(
        layout([
          { rows: 0, bytes: 10 },
          { rows: 2, bytes: 10 },
        ]),
        1000,
      ),
    ).toEqual([[0, 9, 14, 1, 2]]);
  });
});

describe('planParquet', () => {
  it('passes a failed GET on as it is (to be retried), not as a file that is not Parquet', async () => {
    // A real client against a port nothing listens on: the connection is refused.
    const s3 = new S3Client({
      endpoint: 'http://127.0.0.1:9',
      region: 'us-east-1',
      forcePathStyle: true,
      maxAttempts: 1,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const dataset = resolveDataset({
      name: 'sales',
      format: 'parquet',
      table: 'sales',
      schema: z.object({ id: z.number() }),
    });
    const object = { bucket: 'b', key: 'incoming/sales/x.parquet', etag: 'e' };
    const failure = await planParquet(s3, object, 1000, dataset).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(Error);
    expect(failure).not.toBeInstanceOf(FileRejectedError);
    expect(classifyError(failure)).toBe('transient');
  });
});
