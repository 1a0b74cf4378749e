import type { Kysely } from 'kysely';
import { z } from 'zod';
import { defineConfig } from '../../shared/config/config.ts';
import { defineDataset } from '../../shared/config/dataset.ts';

// The chaos run's datasets: one per path that must survive kill -9 (plain CSV, gzip, Parquet, staged
// publish). Tables have no primary key on purpose: a row written twice shows up as a count too high.

export const CHAOS_TABLES = ['chaos_csv', 'chaos_gz', 'chaos_parquet', 'chaos_staged'] as const;

const migration = {
  async up(db: Kysely<unknown>) {
    for (const table of CHAOS_TABLES) {
      await db.schema
        .createTable(table)
        .addColumn('id', 'bigint', (c) => c.notNull())
        .addColumn('label', 'text', (c) => c.notNull())
        .execute();
    }
  },
};

const schema = z.object({ id: z.coerce.number().int().positive(), label: z.string().min(1) });
const chunkBytes = 128 * 1024;

export default defineConfig({
  datasets: [
    defineDataset({ name: 'csv', format: 'csv', table: 'chaos_csv', schema, chunkBytes }),
    defineDataset({ name: 'gz', format: 'csv', table: 'chaos_gz', schema, chunkBytes }),
    defineDataset({ name: 'parquet', format: 'parquet', table: 'chaos_parquet', schema, chunkBytes }),
    defineDataset({
      name: 'staged',
      format: 'csv',
      table: 'chaos_staged',
      schema,
      chunkBytes,
      publish: 'file',
    }),
  ],
  migrations: { '20260101000000_chaos': migration },
});
