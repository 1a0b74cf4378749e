import { readFile } from 'node:fs/promises';
import { sql } from 'kysely';
import { planChunks } from '../shared/chunking.ts';
import { resolveConfig } from '../shared/config.ts';
import { createDb, createPool } from '../shared/db/connection.ts';
import { parseChunk, parseHeader } from '../shared/parsing.ts';
import { validateRecords } from '../shared/validation.ts';
import { writeRows } from '../shared/writing.ts';
import benchConfig, { BENCH_DDL } from './bench.config.ts';

// Times the load worker's stages (parse, validate, write) on one file, in this process, one chunk at a
// time: where the time goes, before and after a change. `node bench/profile.ts <file> [--no-write]`

const [file, flag] = process.argv.slice(2);
if (!file) throw new Error('usage: node bench/profile.ts <file> [--no-write]');
const dataset = resolveConfig(benchConfig).datasets[0];
if (!dataset) throw new Error('no bench dataset');
const bytes = new Uint8Array(await readFile(file));
const plan = await planChunks(
  (async function* () {
    yield bytes;
  })(),
  dataset,
);
const columns = parseHeader(plan.header ?? new Uint8Array(), ',');
const url = process.env.DATABASE_URL;
const db =
  url && flag !== '--no-write' ? createDb(createPool({ connectionString: url, poolMax: 1 })) : undefined;
if (db) await sql.raw(BENCH_DDL).execute(db);

const time = { parse: 0, validate: 0, write: 0 };
let rows = 0;
for (const c of plan.chunks) {
  let t = performance.now();
  const records = parseChunk(bytes.subarray(c.start, c.end), { ...dataset, columns, firstLine: c.firstLine });
  time.parse += performance.now() - t;
  t = performance.now();
  const valid = validateRecords(dataset, records);
  time.validate += performance.now() - t;
  rows += records.length;
  if (!db) continue;
  t = performance.now();
  await db.transaction().execute((trx) => writeRows(trx, dataset, valid.rows));
  time.write += performance.now() - t;
}
await db?.destroy();
const perRow = (ms: number) => `${((ms * 1000) / rows).toFixed(2)} µs/row`;
for (const [stage, ms] of Object.entries(time))
  console.log(`${stage.padEnd(9)} ${(ms / 1000).toFixed(2)} s  ${perRow(ms)}`);
