import { decimal, defineConfig, defineDataset, integer, timestamp } from 'dropload';
import { z } from 'zod';
import * as samples from './samples/migrations/20261127080000_samples.ts';
import * as shop from './samples/migrations/20261201100000_shop.ts';
import { shopDatasets } from './samples/shop.ts';

// The datasets dropload loads. Each file dropped under a dataset's prefix (default `incoming/<name>/`)
// is checked against its schema row by row; rows that fail go to the rejects table with line and reason.

const customers = defineDataset({
  name: 'customers',
  format: 'csv',
  table: 'customers',
  mode: 'upsert',
  key: ['customer_id'],
  schema: z.object({
    customer_id: z.coerce.number().int().positive(),
    email: z.email(),
    name: z.string().trim().min(1),
    country: z.string().regex(/^[A-Z]{2}$/, 'expected a two-letter ISO country code'),
    signed_up: z.iso.date(),
    vip: z.stringbool().default(false),
  }),
});

const orders = defineDataset({
  name: 'orders',
  format: 'csv',
  table: 'orders',
  mode: 'insert',
  schema: z.object({
    order_id: integer().pipe(z.number().positive()),
    customer_id: integer().pipe(z.number().positive()),
    ordered_at: timestamp(),
    amount: decimal().pipe(z.number().nonnegative().max(9_999_999_999.99)),
    currency: z.enum(['EUR', 'USD', 'GBP']),
    status: z.enum(['placed', 'paid', 'shipped', 'cancelled']),
  }),
  nullValues: ['', 'NULL'],
});

const events = defineDataset({
  name: 'events',
  format: 'ndjson',
  table: 'events',
  mode: 'upsert',
  key: ['id'],
  columns: { id: 'event_id', at: 'occurred_at' },
  schema: z.object({
    id: z.uuid(),
    type: z.string().min(1),
    at: z.coerce.date(),
    user_id: z.number().int().positive().optional(),
    payload: z.record(z.string(), z.unknown()).default({}),
  }),
});

export default defineConfig({
  // The shop family (samples/shop.ts): several tables per file, parents named by natural key, any order.
  datasets: [customers, orders, events, ...shopDatasets],
  migrations: { '20261127080000_samples': samples, '20261201100000_shop': shop },
});
