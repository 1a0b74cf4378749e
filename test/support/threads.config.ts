// The config of test/integration/load-threads.test.ts: loaded by the test and again, from this file, by
// each load thread. Small chunks, so a file's chunks spread over the threads; a key the database refuses
// twice and a schema check, so rejects come from both the validation and the database.
import { defineConfig, defineDataset } from 'dropload';
import type { Kysely } from 'kysely';
import { z } from 'zod';

export const THREAD_ROWS_TABLE = 'thread_rows';

export default defineConfig({
  datasets: [
    defineDataset({
      name: 'rows',
      format: 'csv',
      table: THREAD_ROWS_TABLE,
      chunkBytes: 64 * 1024,
      schema: z.object({ id: z.coerce.number().int().positive(), label: z.string().min(1) }),
    }),
  ],
  migrations: {
    '20260101000000_thread_rows': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable(THREAD_ROWS_TABLE)
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('label', 'text', (c) => c.notNull())
          .execute();
      },
    },
  },
});
