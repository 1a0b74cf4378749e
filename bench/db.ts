import pg from 'pg';
import { BENCH_DDL, BENCH_RECORD_TABLE, BENCH_TABLE } from './bench.config.ts';

async function withClient<T>(url: string, work: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Creates the database DATABASE_URL names when it does not exist yet (through the server's `postgres` database). */
export async function ensureDatabase(url: string): Promise<void> {
  try {
    await withClient(url, async () => {});
  } catch (err) {
    if ((err as { code?: string }).code !== '3D000') throw err;
    const target = new URL(url);
    const name = decodeURIComponent(target.pathname.slice(1));
    target.pathname = '/postgres';
    await withClient(target.toString(), (c) => c.query(`create database ${pg.escapeIdentifier(name)}`));
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

/** A CHECK no generated row meets (scores run from -100 to 899): the database refuses every row. */
export function refuseEveryRow(url: string): Promise<void> {
  return withClient(url, async (c) => {
    await c.query(`alter table ${BENCH_TABLE} add constraint bench_refuses_every_row check (score < -1000)`);
  });
}

/** A CHECK every record's row breaks, after its score (the other table) was written: every record is refused. */
export function refuseEveryRecord(url: string): Promise<void> {
  return withClient(url, async (c) => {
    await c.query(
      `alter table ${BENCH_RECORD_TABLE} add constraint bench_refuses_every_record check (score_ref < 0)`,
    );
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
