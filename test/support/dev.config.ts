// The config `dropload dev` runs with in test/integration/dev.test.ts: one CSV dataset in small chunks,
// into a table whose every insert statement takes a moment, so a test can stop `dev` mid-file.
import { defineConfig, defineDataset } from 'dropload';
import { type Kysely, sql } from 'kysely';
import { z } from 'zod';

export const DEV_ROWS_TABLE = 'dev_rows';

export default defineConfig({
  datasets: [
    defineDataset({
      name: 'rows',
      format: 'csv',
      table: DEV_ROWS_TABLE,
      chunkBytes: 64 * 1024,
      schema: z.object({ id: z.coerce.number().int().positive(), label: z.string().min(1) }),
    }),
  ],
  migrations: {
    '20260101000000_dev_rows': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable(DEV_ROWS_TABLE)
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('label', 'text', (c) => c.notNull())
          .execute();
        await sql`create or replace function dev_rows_slow() returns trigger language plpgsql as $$
          begin perform pg_sleep(0.3); return null; end $$`.execute(db);
        await sql`create trigger dev_rows_slow before insert on dev_rows
          for each statement execute function dev_rows_slow()`.execute(db);
      },
    },
  },
});
