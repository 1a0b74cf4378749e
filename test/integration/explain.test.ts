import { CreateQueueCommand } from '@aws-sdk/client-sqs';
import { type CompiledQuery, type Kysely, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import * as samples from '../../samples/migrations/20261127080000_samples.ts';
import * as shop from '../../samples/migrations/20261201100000_shop.ts';
import { shopDatasets } from '../../samples/shop.ts';
import { defineDataset } from '../../shared/config/dataset.ts';
import { WAIT_RETRY } from '../../shared/core/topology.ts';
import { createDb, createPool } from '../../shared/ledger/connection.ts';
import { getFile } from '../../shared/ledger/ledger.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { filesWithWaitingRows, retriesInFlight, waitSummaries } from '../../shared/ledger/waiting.ts';
import { retryOrphans } from '../../shared/load/orphans.ts';
import { wakeWaiting } from '../../shared/load/retry-chain.ts';
import { sweepWaiting } from '../../shared/load/sweep.ts';
import type { PipelineDeps } from '../../shared/pipeline/services.ts';
import { loadParked as loadParkedBy } from '../support/parked.ts';
import { SAMPLE_TABLES, startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/**
 * Every statement the loader issues while it loads a chunk (natural-key resolution, upserts, the
 * orphan check, ledger updates) is captured and EXPLAINed against tables of 100,000 rows, where the
 * planner prefers an index whenever one serves: a sequential scan of a large table fails the test.
 */

const BIG = 100_000;
const customersCsv = defineDataset({
  name: 'plain-customers',
  format: 'csv',
  table: 'customers',
  mode: 'upsert',
  key: ['customer_id'],
  schema: z.object({
    customer_id: z.coerce.number().int(),
    email: z.string(),
    name: z.string(),
    country: z.string(),
    signed_up: z.iso.date(),
  }),
});
const config = {
  datasets: [...shopDatasets, customersCsv],
  migrations: { '20261127080000_samples': samples, '20261201100000_shop': shop },
};

let p: TestPipeline;
let parked: PipelineDeps;
const captured: CompiledQuery[] = [];

async function seed(db: Kysely<Database>) {
  await sql`insert into shop.customers (email, name, country) select 'c' || g || '@x.io', 'n' || g, 'DE' from generate_series(1, ${BIG}) g`.execute(
    db,
  );
  await sql`insert into shop.products (sku, name, price, currency) select 'P-' || g, 'p' || g, 1, 'EUR' from generate_series(1, ${BIG}) g`.execute(
    db,
  );
  await sql`insert into shop.categories (slug, name) select 'cat-' || g, 'c' || g from generate_series(1, ${BIG}) g`.execute(
    db,
  );
  await sql`insert into shop.orders (order_no, customer_id, ordered_at, status, currency)
    select 'SO-' || (100000 + g), g, now(), 'paid', 'EUR' from generate_series(1, ${BIG}) g`.execute(db);
  await sql`insert into shop.order_lines (order_id, line_no, product_id, quantity, unit_price)
    select g, 1, g, 1, 1 from generate_series(1, ${BIG}) g`.execute(db);
  await sql`insert into customers (customer_id, email, name, country, signed_up)
    select g, 'c' || g || '@x.io', 'n' || g, 'DE', '2020-01-01' from generate_series(1, ${BIG}) g`.execute(
    db,
  );
  await sql`insert into dropload.file (bucket, key, etag, size, state)
    select 'seed', 'seed/' || g, g::text, 1, 'loaded' from generate_series(1, ${BIG}) g`.execute(db);
  await sql`insert into dropload.chunk (file_id, idx, start_byte, end_byte, first_line, state)
    select id, 0, 0, 1, 2, 'loaded' from dropload.file where bucket = 'seed'`.execute(db);
  // Open rejects of the keyed dataset, so its chunks look for the rejects their rows resolve.
  await sql`insert into dropload.reject (file_id, chunk_idx, line, kind, reason, raw, dataset, row_key)
    select id, 0, 2, 'invalid', 'seed', 'seed', 'plain-customers', '["' || (id + 500000) || '"]'
      from dropload.file where bucket = 'seed'`.execute(db);
  // Rows waiting on a thousand other tables: "who waits on this table" must stay an index probe.
  await sql`insert into dropload.orphan (file_id, chunk_idx, line, target, row, missing, parent_table, parent_key, raw, expires_at)
    select id, 0, 2, 'seed.child', '{}', 'seed', 'seed.parent_' || (id % 1000), 'k', 'seed', now() + interval '1 hour'
    from dropload.file where bucket = 'seed'`.execute(db);
  await sql`analyze`.execute(db);
}

beforeAll(async () => {
  p = await startTestPipeline(config, SAMPLE_TABLES, { workers: 1 });
  await seed(p.deps.db);
  const queue = await p.stack.sqs.send(new CreateQueueCommand({ QueueName: 'dropload-explain' }));
  // The same database through a Kysely that records every statement it sends.
  const db = createDb(createPool({ connectionString: p.stack.databaseUrl, poolMax: 1 }), (event) => {
    if (event.level === 'query') captured.push(event.query);
  });
  parked = { ...p.deps, db, chunkQueueUrl: queue.QueueUrl as string };
}, 300_000);

afterAll(async () => {
  await parked?.db.destroy();
  await p?.stop();
});

const loadParked = (key: string, body: string) => loadParkedBy(p, parked, key, body);

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Schema?: string;
  Plans?: PlanNode[];
}

function seqScans(node: PlanNode, out: string[] = []): string[] {
  if (node['Node Type'] === 'Seq Scan' && node['Relation Name'])
    out.push(`${node.Schema}.${node['Relation Name']}`);
  for (const child of node.Plans ?? []) seqScans(child, out);
  return out;
}

describe('query plans of the per-chunk statements on 100k-row tables', () => {
  it('use no sequential scan of a large table', async () => {
    const lines = ['order_no,line_no,sku,quantity,unit_price'];
    for (let i = 1; i <= 50; i++) lines.push(`SO-${100000 + i},2,P-${i},1,9.99`);
    lines.push('SO-99999999,1,P-1,1,1.00'); // no such order: waits as an orphan
    const fileId = await loadParked('incoming/shop/order-lines/explain.csv', `${lines.join('\n')}\n`);
    const token = (await getFile(parked.db, fileId))?.retry_token;
    // The current chain's retry: take, retry, next step; then what a commit, the sweep and `run` ask.
    await retryOrphans(parked, { kind: 'orphans', fileId, attempt: 1, token });
    await wakeWaiting(parked, ['shop.orders']);
    await sweepWaiting(parked);
    await retriesInFlight(parked.db, [fileId], 1, WAIT_RETRY);
    await waitSummaries(parked.db, [fileId]);
    await filesWithWaitingRows(parked.db);
    await loadParked(
      'incoming/plain-customers/explain.csv',
      'customer_id,email,name,country,signed_up\n1,c1@x.io,renamed,DE,2020-01-01\n200001,new@x.io,new,FR,2021-01-01\n',
    );

    const big = new Set(
      (
        await sql<{ name: string }>`select n.nspname || '.' || c.relname as name from pg_class c
          join pg_namespace n on n.oid = c.relnamespace where c.relkind = 'r' and c.reltuples >= 10000`.execute(
          p.deps.db,
        )
      ).rows.map((r) => r.name),
    );
    expect([...big].sort()).toEqual(
      expect.arrayContaining([
        'dropload.chunk',
        'dropload.file',
        'dropload.orphan',
        'shop.orders',
        'shop.products',
        'public.customers',
      ]),
    );

    const client = new pg.Client({ connectionString: p.stack.databaseUrl });
    await client.connect();
    const explained: string[] = [];
    const violations: string[] = [];
    try {
      // One transaction for all of it: temp tables the loader created (its COPY staging) are re-created
      // as it created them, so the statements that read them can be planned too; nothing is committed.
      await client.query('begin');
      for (const q of captured) {
        const temp = /^\s*create temp table "(\w+)"/i.exec(q.sql);
        if (temp) {
          await client.query(`drop table if exists pg_temp."${temp[1]}"`);
          await client.query(q.sql, q.parameters as unknown[]);
          continue;
        }
        if (!/^\s*(select|insert|update|delete|with)\b/i.test(q.sql)) continue;
        if (/pg_advisory|pg_catalog|pg_attribute|version\(\)|to_regclass/i.test(q.sql)) continue;
        const res = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
          `explain (format json) ${q.sql}`,
          q.parameters as unknown[],
        );
        explained.push(q.sql);
        const scans = seqScans(res.rows[0]?.['QUERY PLAN'][0].Plan as PlanNode).filter((t) => big.has(t));
        if (scans.length > 0)
          violations.push(`${scans.join(', ')} ← ${q.sql.replace(/\s+/g, ' ').slice(0, 200)}`);
      }
      await client.query('rollback');
    } finally {
      await client.end();
    }
    expect(violations).toEqual([]);
    const joined = explained.join('\n');
    // The statements that matter were among those planned:
    expect(joined).toMatch(/left join "shop"\."orders"/i); // natural-key resolution
    expect(joined).toMatch(/insert into "shop"\."order_lines"/i); // the child upsert
    expect(joined).toMatch(/"dropload"\."orphan"/i); // the orphan check
    expect(joined).toMatch(/"parent_table" in/i); // who waits on a table that got rows
    expect(joined).toMatch(/set "retry_due" = \$1, "retry_started_at" = clock_timestamp\(\)/i); // a retry taken
    expect(joined).toMatch(/set "retry_token" = "retry_token" \+ \$1/i); // a chain started or continued
    expect(joined).toMatch(/update "dropload"\."chunk"/i); // the chunk claim
    expect(joined).toMatch(/update "dropload"\."file"/i); // the file's totals
    expect(joined).toMatch(/on conflict \("customer_id"\)/i); // a single-table upsert
    expect(joined).toMatch(/from "dropload"\."reject" where "dataset" = /i); // any open keyed rejects?
    expect(joined).toMatch(/update dropload\.reject r\s+set resolved_at/i); // rejects the rows resolve
    expect(explained.length).toBeGreaterThan(15);
  });
});
