import pg from 'pg';
import { BENCH_DDL, BENCH_TABLE } from './bench.config.ts';

async function withClient<T>(url: string, work: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A fresh target table and an empty ledger, so no path profits from (or pays for) the one before. */
export function resetDatabase(url: string): Promise<void> {
  return withClient(url, async (c) => {
    await c.query('drop schema if exists dropload cascade');
    await c.query(BENCH_DDL);
    // Start every path from the same checkpointed state: the previous path's dirty pages are not its cost.
    await c.query('checkpoint');
  });
}

export function countRows(url: string): Promise<number> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ n: number }>(`select count(*)::int as n from ${BENCH_TABLE}`);
    return rows[0]?.n ?? 0;
  });
}

export function serverVersion(url: string): Promise<string> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ v: string }>("select current_setting('server_version') as v");
    return rows[0]?.v ?? '?';
  });
}
