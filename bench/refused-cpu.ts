import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { resolveConfig } from '../shared/config/config.ts';
import type { Dataset, TableDataset, TargetsDataset } from '../shared/config/dataset.ts';
import type { Database } from '../shared/ledger/schema.ts';
import type { ValidRow } from '../shared/load/validation.ts';
import { waitingDataset } from '../shared/load/write/foreign-keys.ts';
import { writeRecords } from '../shared/load/write/relations.ts';
import { writeTarget } from '../shared/load/write/target.ts';
import { writeRows } from '../shared/load/write/writing.ts';
import benchConfig, { BENCH_FK_TABLE, BENCH_TABLE } from './bench.config.ts';
import { refuseEveryRecord, resetDatabase } from './db.ts';

// `npm run bench:refused-cpu`: the CPU time of writing one chunk of rows the database refuses, in this
// process and in its Postgres backend (read from /proc: Postgres on this machine), per writer. On a
// shared machine the wall clock of `npm run bench -- --refused-only` moves with the load; CPU time
// moves less. Only the write is measured (not reading, validating, the ledger), in one transaction.

const { values } = parseArgs({
  options: { rows: { type: 'string', default: '72392' }, repeat: { type: 'string', default: '3' } },
});
const ROWS = Number(values.rows);
const REPEAT = Number(values.repeat);
const url = process.env.DATABASE_URL;
if (!url)
  throw new Error('DATABASE_URL is not set (Postgres on this machine: its backend CPU is read from /proc)');
const config = resolveConfig(benchConfig, 'bench/bench.config.ts');
const dataset = (name: string) => config.datasets.find((d) => d.name === name) as Dataset;

/** Rows shaped as the bench file's, validated already: ids from 1, scores over the parents' range. */
const rows: ValidRow[] = Array.from({ length: ROWS }, (_, i) => {
  const values = {
    id: i + 1,
    name: `name ${i}`,
    email: `user${i}@example.com`,
    amount: (i % 10_000) / 100,
    created_at: new Date(1_700_000_000_000 + i * 1000),
    active: i % 2 === 0,
    score: (i % 1000) - 100,
    note: i % 3 === 0 ? undefined : `note ${i}`,
  };
  return { line: i + 2, raw: JSON.stringify(values), values };
});

/** Sets the tables up so every row is refused: its key taken already, or a CHECK it breaks. */
async function refuseAll(path: string): Promise<void> {
  await resetDatabase(url as string);
  if (path === 'records') return refuseEveryRecord(url as string);
  const table = path === 'table' ? BENCH_TABLE : BENCH_FK_TABLE;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`insert into ${table} (id, name, email, score)
    select g, 'taken', 'taken', 1 from generate_series(1, ${ROWS}) g`);
  await client.end();
}

/** The writer of each path, as the load stage calls it (one transaction); returns the rows refused. */
const writers: Record<string, (trx: Parameters<typeof writeRecords>[0]) => Promise<number>> = {
  table: async (trx) =>
    (await writeRows(trx, writeTarget(dataset('bench') as TableDataset), rows, 0)).rejects.length,
  'foreign key': async (trx) => {
    const d = (await waitingDataset(trx, dataset('bench-fk'))) as TargetsDataset;
    return (await writeRecords(trx, d, rows, 0)).rejects.length;
  },
  records: async (trx) => {
    const d = (await waitingDataset(trx, dataset('bench-records'))) as TargetsDataset;
    return (await writeRecords(trx, d, rows, 0)).rejects.length;
  },
};

/** CPU seconds of this process and of the connection's backend while `write` runs. */
async function measure(path: string): Promise<{ node: number; backend: number }> {
  await refuseAll(path);
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }),
  });
  try {
    const { rows: pid } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(db);
    const backendCpu = () =>
      Number(readFileSync(`/proc/${pid[0]?.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e9;
    const backend0 = backendCpu();
    const node0 = process.cpuUsage();
    const refused = await db
      .transaction()
      .execute((trx) => (writers[path] as (t: typeof trx) => Promise<number>)(trx));
    const node = process.cpuUsage(node0);
    if (refused !== ROWS) throw new Error(`${path}: ${refused} of ${ROWS} rows refused`);
    return { node: (node.user + node.system) / 1e6, backend: backendCpu() - backend0 };
  } finally {
    await db.destroy();
  }
}

const median = (list: number[]) => [...list].sort((a, b) => a - b)[list.length >> 1] as number;
const runs = Object.fromEntries(
  Object.keys(writers).map((path) => [path, [] as { node: number; backend: number }[]]),
);
// The paths alternate, so a change in the machine's load falls on each alike.
for (let r = 0; r < REPEAT; r++) {
  for (const [path, list] of Object.entries(runs)) list.push(await measure(path));
}
console.log(`${ROWS.toLocaleString('en')} rows, every one refused; CPU seconds, median of ${REPEAT}`);
console.log('writer         node  backend  total  rows per CPU second');
for (const [path, list] of Object.entries(runs)) {
  const node = median(list.map((m) => m.node));
  const backend = median(list.map((m) => m.backend));
  const total = median(list.map((m) => m.node + m.backend));
  const rate = Math.round(ROWS / total).toLocaleString('en');
  console.log(
    `${path.padEnd(12)} ${node.toFixed(2).padStart(6)} ${backend.toFixed(2).padStart(8)} ${total.toFixed(2).padStart(6)}  ${rate.padStart(19)}`,
  );
}
