import { z } from 'zod';
import { defineConfig } from '../shared/config/config.ts';
import { defineDataset } from '../shared/config/dataset.ts';

// The benchmark's own dataset: eight columns of the common Postgres types, validated the way a real
// dataset would be (coerced numbers and dates, an e-mail check, a boolean word), so the load worker
// pays for full validation.

export const BENCH_TABLE = 'bench_rows';

const csvSchema = z.object({
  id: z.coerce.number().int().positive(),
  name: z.string().min(1),
  email: z.email(),
  amount: z.coerce.number().nonnegative(),
  created_at: z.coerce.date(),
  active: z.stringbool(),
  score: z.coerce.number().int(),
  note: z.string().optional(),
});

export const benchDataset = defineDataset({
  name: 'bench',
  format: 'csv',
  table: BENCH_TABLE,
  mode: 'insert',
  schema: csvSchema,
});

/** Created fresh before every measured path, so each one writes into an empty table with its index. */
export const BENCH_DDL = `
  drop table if exists ${BENCH_TABLE};
  create table ${BENCH_TABLE} (
    id bigint primary key,
    name text not null,
    email text not null,
    amount numeric(12, 2),
    created_at timestamptz,
    active boolean,
    score integer,
    note text
  )`;

/**
 * The same rows as Parquet: values arrive typed (INT64 ids as bigint, TIMESTAMP as Date), so the fields
 * the CSV schema coerces from text are checked as types, with the same rules.
 */
export const benchParquetDataset = defineDataset({
  name: 'bench-parquet',
  format: 'parquet',
  table: BENCH_TABLE,
  mode: 'insert',
  schema: csvSchema.extend({
    amount: z.number().nonnegative(),
    created_at: z.date(),
    active: z.boolean(),
    score: z.number().int(),
  }),
});

export default defineConfig({ datasets: [benchDataset, benchParquetDataset] });
