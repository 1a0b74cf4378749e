import { readFile } from 'node:fs/promises';
import { sql } from 'kysely';
import { resolveConfig } from '../shared/config/config.ts';
import { planChunks } from '../shared/formats/chunking.ts';
import { chunkCursor, parseHeader } from '../shared/formats/parsing.ts';
import { createDb, createPool } from '../shared/ledger/connection.ts';
import { chunkRows } from '../shared/load/chunk-rows.ts';
import { writeTarget } from '../shared/load/write/target.ts';
import { copyLines, writeRowStream } from '../shared/load/write/writing.ts';
import benchConfig, { BENCH_DDL } from './bench.config.ts';

// Times the load worker's streamed path on one file, in this process, one chunk at a time: where the
// time goes, before and after a change. Each stage is a full pass over the file that does everything the
// stage before did and one thing more (parse; + validate; + COPY text, encoded to the UTF-8 the socket
// is given), so the differences are the stages' costs; `write` is the real thing (writeRowStream into DATABASE_URL, one transaction a chunk).
// `node bench/profile.ts <file> [--no-write] [--repeat N] [--stage parse|validate|format|write] [--warm N]` (`--stage`:
// that stage alone, e.g. under `valgrind --tool=callgrind` with V8's `--predictable`: without it V8's
// heuristics vary, and so did the instruction count of one command, by up to a fifth, run to run).
// `--warm N` runs the stages N times first, untimed, and reads `process.ppid` (one getppid call) before
// and after the timed passes: `valgrind --tool=callgrind --dump-before=getppid` then counts those passes
// alone in the dump's second part, without start-up or V8's first compiles.

const args = process.argv.slice(2);
/** Flags followed by a value (not the file). */
const VALUED = ['--repeat', '--stage', '--warm'];
const file = args.find((a, i) => !a.startsWith('--') && !VALUED.includes(args[i - 1] ?? ''));
if (!file)
  throw new Error('usage: node bench/profile.ts <file> [--no-write] [--repeat N] [--stage NAME] [--warm N]');
const repeatAt = args.indexOf('--repeat');
const repeat = repeatAt >= 0 ? Number(args[repeatAt + 1]) : 1;
const warmAt = args.indexOf('--warm');
const warm = warmAt >= 0 ? Number(args[warmAt + 1]) : 0;
const stageAt = args.indexOf('--stage');
const only = stageAt >= 0 ? args[stageAt + 1] : undefined;
const dataset = resolveConfig(benchConfig).datasets[0];
if (dataset?.kind !== 'table') throw new Error('no bench dataset (of one table)');
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
  url && !args.includes('--no-write')
    ? createDb(createPool({ connectionString: url, poolMax: 1 }))
    : undefined;
const chunks = plan.chunks.map((c) => ({
  bytes: bytes.subarray(c.start, c.end),
  options: { ...dataset, columns, firstLine: c.firstLine },
}));

const stages: Record<string, () => Promise<number> | number> = {
  parse: () => {
    let n = 0;
    for (const c of chunks) {
      const cursor = chunkCursor(c.bytes, c.options);
      while (cursor.next()) n++;
    }
    return n;
  },
  validate: () => {
    let n = 0;
    for (const c of chunks) {
      const pass = chunkRows(dataset, c.bytes, c.options)();
      while (pass.next()) n++;
      n += pass.rejects.length;
    }
    return n;
  },
  format: () => {
    let n = 0;
    for (const c of chunks) {
      const pass = chunkRows(dataset, c.bytes, c.options)();
      for (const piece of copyLines(dataset.fields, pass, [])) n += Buffer.from(piece).length > 0 ? 0 : 1;
      n += pass.rows + pass.rejects.length;
    }
    return n;
  },
  ...(db
    ? {
        write: async () => {
          await sql.raw(BENCH_DDL).execute(db);
          let n = 0;
          for (const c of chunks) {
            const rows = chunkRows(dataset, c.bytes, c.options);
            const written = await db
              .transaction()
              .execute((trx) => writeRowStream(trx, writeTarget(dataset), rows));
            n += written.rows + written.invalid.length;
          }
          return n;
        },
      }
    : {}),
};

const best: Record<string, number> = {};
let records = 0;
for (let r = 0; r < warm; r++) {
  for (const [stage, run] of Object.entries(stages)) if (only === undefined || stage === only) await run();
}
// The marks callgrind's --dump-before=getppid cuts at (see above).
if (warm > 0) process.ppid;
for (let r = 0; r < repeat; r++) {
  for (const [stage, run] of Object.entries(stages)) {
    if (only !== undefined && stage !== only) continue;
    const t = performance.now();
    records = await run();
    const ms = performance.now() - t;
    best[stage] = Math.min(best[stage] ?? Number.POSITIVE_INFINITY, ms);
  }
}
if (warm > 0) process.ppid;
await db?.destroy();
let before = 0;
for (const [stage, ms] of Object.entries(best)) {
  const perRow = (x: number) => `${((x * 1000) / records).toFixed(2)} µs/row`;
  const extra = stage === 'write' ? '' : `  (+${perRow(ms - before)})`;
  console.log(`${stage.padEnd(9)} ${(ms / 1000).toFixed(2)} s  ${perRow(ms)}${extra}`);
  if (stage !== 'write') before = ms;
}
