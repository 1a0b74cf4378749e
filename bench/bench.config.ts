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

/** The same rows with a foreign key (`score`): a single-table dataset whose rows may wait for parents. */
export const BENCH_FK_TABLE = 'bench_fk_rows';
/** The same rows as records of two tables: a score (the parent, by natural key) and the row. */
export const BENCH_RECORD_TABLE = 'bench_record_rows';
/** Every score the generator makes (-100 to 899), by natural key with a surrogate id. */
const BENCH_SCORES = 'bench_scores';

export const benchFkDataset = defineDataset({
  name: 'bench-fk',
  format: 'csv',
  table: BENCH_FK_TABLE,
  mode: 'insert',
  schema: csvSchema,
});

export const benchRecordsDataset = defineDataset({
  name: 'bench-records',
  format: 'csv',
  schema: csvSchema,
  targets: [
    { table: BENCH_SCORES, columns: { score: 'score' }, key: ['score'] },
    {
      table: BENCH_RECORD_TABLE,
      columns: Object.fromEntries(
        ['id', 'name', 'email', 'amount', 'created_at', 'active', 'note'].map((c) => [c, c]),
      ),
      references: { score_ref: { table: BENCH_SCORES, key: { score: 'score' } } },
      key: ['id'],
      mode: 'insert',
    },
  ],
});

/** Created fresh before every measured path, so each one writes into an empty table with its index. */
export const BENCH_DDL = `
  drop table if exists ${BENCH_TABLE}, ${BENCH_FK_TABLE}, ${BENCH_RECORD_TABLE}, ${BENCH_SCORES};
  create table ${BENCH_SCORES} (id integer generated always as identity primary key, score integer not null unique);
  insert into ${BENCH_SCORES} (score) select generate_series(-100, 899);
  create table ${BENCH_FK_TABLE} (
    id bigint primary key,
    name text not null,
    email text not null,
    amount numeric(12, 2),
    created_at timestamptz,
    active boolean,
    score integer references ${BENCH_SCORES} (score),
    note text
  );
  create table ${BENCH_RECORD_TABLE} (
    id bigint primary key,
    name text not null,
    email text not null,
    amount numeric(12, 2),
    created_at timestamptz,
    active boolean,
    score_ref integer not null references ${BENCH_SCORES} (id),
    note text
  );
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

export default defineConfig({
  datasets: [benchDataset, benchParquetDataset, benchFkDataset, benchRecordsDataset],
});
