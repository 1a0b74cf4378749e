import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { TableDataset } from '../../shared/config/dataset.ts';
import { defineDataset } from '../../shared/config/dataset.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import type { ValidRow } from '../../shared/load/validation.ts';
import { writeTarget } from '../../shared/load/write/target.ts';
import { writeRows } from '../../shared/load/write/writing.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/**
 * A value the database's cast refuses (an integer out of range, a year 0 timestamp) raised an error that
 * names no column (hostile-files trial): the reject now names the column whose value the cast refused.
 */

const tables: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('refused_casts')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('n', 'integer')
      .addColumn('at', 'timestamptz')
      .execute();
  },
};

const dataset = defineDataset({
  name: 'refused_casts',
  format: 'csv',
  table: 'refused_casts',
  mode: 'insert',
  key: ['id'],
  schema: z.object({ id: z.number(), n: z.number(), at: z.string() }),
});

let p: TestPipeline;
let db: Kysely<Database>;
beforeAll(async () => {
  p = await startTestPipeline(
    { datasets: [dataset], migrations: { '20260101000000_refused_casts': tables } },
    ['refused_casts'],
  );
  db = p.deps.db;
});
afterAll(() => p?.stop());

describe('a value the column type refuses', () => {
  it('is rejected naming its column', async () => {
    const rows: [number, number, string][] = [
      [1, 5, '2024-01-01T00:00:00Z'],
      [2, 99999999999, '2024-01-01T00:00:00Z'],
      [3, 7, '0000-01-01T00:00:00Z'],
      [4, 8, '2024-01-01T00:00:00Z'],
    ];
    const valid: ValidRow[] = rows.map(([id, n, at], i) => ({
      line: i + 2,
      raw: `${id},${n},${at}`,
      values: { id, n, at },
    }));
    const resolved = p.config.datasets[0] as TableDataset;
    const result = await db.transaction().execute((trx) => writeRows(trx, writeTarget(resolved), valid, 0));
    expect(result.inserted).toBe(2);
    expect(result.rejects.map((r) => [r.line, r.column, r.kind, r.reason])).toEqual([
      [3, 'n', 'refused', 'database refused the row: value "99999999999" is out of range for type integer'],
      [
        4,
        'at',
        'refused',
        expect.stringMatching(/^database refused the row: date\/time field value out of range/),
      ],
    ]);
  });
});
