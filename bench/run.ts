import { type ChildProcess, spawn } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createGzip } from 'node:zlib';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { build } from 'esbuild';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { HANDLER_NODE_OPTIONS, LOCAL_ONLY_MODULES } from '../infra/constructs/dropload-function.ts';
import { uploadFile } from '../local/local-pipeline.ts';
import type { ObjectRef } from '../shared/aws/s3-events.ts';
import { resolveConfig } from '../shared/config/config.ts';
import { CONSUMERS } from '../shared/core/topology.ts';
import { migrateToLatest } from '../shared/ledger/migrate.ts';
import { awsClients } from '../shared/runtime/environment.ts';
import benchConfig, { BENCH_FK_TABLE, BENCH_TABLE } from './bench.config.ts';
import { costLines, type LoadUse, PRICES, type StepUse } from './cost.ts';
import {
  countRows,
  ensureDatabase,
  refuseEveryRecord,
  refuseEveryRow,
  resetDatabase,
  serverVersion,
} from './db.ts';
import { generateCsv, generateParquet, validRows } from './generate.ts';
import type { PathResult } from './paths.ts';

// `npm run bench`: one file, several ways into the same Postgres, timed in one run. Absolute numbers
// depend on the machine; the ratio to `psql \copy` measured alongside is what to compare.

const OUT = path.join(import.meta.dirname, 'out');
const BUNDLE = path.join(OUT, 'paths.mjs');
const QUICK_ROWS = 50_000;
/** Average bytes of a generated row: turns `--sizes` (MB) into row counts. */
const ROW_BYTES = 112.4;
const BUCKET = 'dropload-bench';
const config = resolveConfig(benchConfig, 'bench/bench.config.ts');

interface Options {
  rows: number;
  workers: number;
  sweep: number[];
  sizes: number[];
  repeat: number;
  /** Only the refused-chunk lines (`--refused-only`): not the main table nor the cost curve. */
  refusedOnly: boolean;
  /** V8 old-space cap (MB) for split and load worker processes, as a small function's memory would set it. */
  workerHeap?: number;
  /** Only these paths (`psql`, `split`, `init`, `worker`, `e2e`, …; a size suffix is ignored), else all. */
  only?: string[];
  url: string;
}

interface Measured extends PathResult {
  path: string;
  label: string;
  rows: number;
  rowsInTable: number;
  maxRssMB?: number;
  /** Most connections dropload held at once, sampled from pg_stat_activity. */
  peakConnections?: number;
  /** Connections the path's pools may hold together. */
  connectionBudget?: number;
  /** Seconds of every run (`--repeat`); `seconds` is their median. */
  runs?: number[];
}

function numbers(text: string, flag: string): number[] {
  const list = text.split(',').filter(Boolean).map(Number);
  if (list.some((n) => !Number.isInteger(n) || n < 1))
    throw new Error(`${flag} takes positive whole numbers, comma-separated (got "${text}")`);
  return list;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string' },
      workers: { type: 'string', default: '2' },
      sweep: { type: 'string' },
      sizes: { type: 'string', default: '' },
      repeat: { type: 'string', default: '1' },
      'worker-heap': { type: 'string' },
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      'refused-only': { type: 'boolean', default: false },
    },
  });
  const url = process.env.DATABASE_URL;
  if (!url) {
    throw new Error(
      'DATABASE_URL is not set: the benchmark loads into a real Postgres (e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/dropload_bench)',
    );
  }
  const [rows] = numbers(values.rows ?? String(values.quick ? QUICK_ROWS : 1_000_000), '--rows');
  const [workers] = numbers(values.workers, '--workers');
  const sweep = numbers(values.sweep ?? (values.quick ? '2' : '2,4'), '--sweep');
  const [repeat] = numbers(values.repeat, '--repeat');
  return {
    rows: rows as number,
    workers: workers as number,
    sweep,
    sizes: numbers(values.sizes, '--sizes'),
    repeat: repeat as number,
    refusedOnly: values['refused-only'],
    workerHeap: values['worker-heap'] ? numbers(values['worker-heap'], '--worker-heap')[0] : undefined,
    only: values.only?.split(',').filter(Boolean),
    url,
  };
}

function exec(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} exited with ${code}`)),
    );
  });
}

async function psqlCopy(file: string, url: string, table = BENCH_TABLE): Promise<PathResult> {
  const started = performance.now();
  await exec('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qc', `\\copy ${table} from '${file}' csv header`]);
  return { seconds: (performance.now() - started) / 1000, loaded: 0, rejected: 0 };
}

const ROOT = path.join(import.meta.dirname, '..');
/** `dropload` as a user types it in this repository, on the benchmark's config. */
const NPX_DROPLOAD = ['dropload', '--config', path.join('bench', 'bench.config.ts')];

/**
 * The environment of a `dropload` command: the benchmark's database, and no AWS_ENDPOINT_URL, so `run`
 * starts its own embedded emulator as it does for a user.
 */
function commandEnv(url: string): NodeJS.ProcessEnv {
  const { AWS_ENDPOINT_URL: _emulator, ...env } = process.env;
  return { ...env, DATABASE_URL: url };
}

/** Seconds from spawning `npx dropload …` to its exit, start-up included, and what it printed. */
async function npxDropload(args: string[], url: string): Promise<{ seconds: number; out: string }> {
  const started = performance.now();
  const out = await exec('npx', [...NPX_DROPLOAD, ...args], { cwd: ROOT, env: commandEnv(url) });
  return { seconds: (performance.now() - started) / 1000, out };
}

/**
 * GNU time, where the machine has it: its %M is the peak RSS of the biggest process it waited for, npx's
 * child included (Node reports no child's rusage), so the `run` line gets the dropload process's peak.
 */
const GNU_TIME = '/usr/bin/time';

/** `npx dropload run FILE --dataset …` end to end, as a user times it: from the command's start to its report. */
async function droploadRun(
  file: string,
  dataset: string,
  url: string,
): Promise<PathResult & { maxRssMB?: number }> {
  const args = ['run', file, '--dataset', dataset, '--json'];
  if (!existsSync(GNU_TIME)) return runResult(await npxDropload(args, url));
  const rss = path.join(OUT, 'run-rss.txt');
  const started = performance.now();
  const out = await exec(GNU_TIME, ['-f', '%M', '-o', rss, 'npx', ...NPX_DROPLOAD, ...args], {
    cwd: ROOT,
    env: commandEnv(url),
  });
  const seconds = (performance.now() - started) / 1000;
  const maxRssMB = Number((await readFile(rss, 'utf8')).trim().split('\n').at(-1)) / 1024;
  await rm(rss, { force: true });
  return { ...runResult({ seconds, out }), maxRssMB };
}

function runResult({ seconds, out }: { seconds: number; out: string }): PathResult {
  const report = (JSON.parse(out) as { files: { rows: { loaded: number; rejected: number } }[] }).files[0];
  return { seconds, loaded: report?.rows.loaded ?? 0, rejected: report?.rows.rejected ?? 0 };
}

/** Start-up: seconds of `npx dropload --help` (what a user types) and of the bin run directly (`node cli/bin.js`). */
async function startup(o: Options): Promise<{ npx: number[]; bin: number[] }> {
  const npx: number[] = [];
  const bin: number[] = [];
  for (let i = 0; i < Math.max(3, o.repeat); i++) {
    npx.push((await npxDropload(['--help'], o.url)).seconds);
    const started = performance.now();
    await exec(process.execPath, [path.join(ROOT, 'cli', 'bin.js'), '--help'], { cwd: ROOT });
    bin.push((performance.now() - started) / 1000);
  }
  return { npx, bin };
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor((sorted.length - 1) / 2)] as number;
}

const seconds = (runs: number[]) =>
  `${median(runs).toFixed(2)} s (${runs.map((r) => r.toFixed(2)).join(', ')})`;

/** The dropload side as the Lambdas ship it: one esbuild bundle, so no child pays for TypeScript stripping. */
async function bundlePaths(): Promise<void> {
  await build({
    // The load and init threads' entries beside the paths, where local/load-threads.ts and
    // cli/init/profile-threads.ts look for them.
    entryPoints: {
      paths: path.join(import.meta.dirname, 'paths.ts'),
      'load-worker': path.join(ROOT, 'local', 'load-worker.ts'),
      'profile-worker': path.join(ROOT, 'cli', 'init', 'profile-worker.ts'),
    },
    outdir: path.dirname(BUNDLE),
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    mainFields: ['module', 'main'],
    external: LOCAL_ONLY_MODULES,
    banner: { js: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);" },
    logLevel: 'error',
  });
}

/** fauxqs in a process of its own: it keeps objects in memory, which must not count against a dropload process. */
async function startEmulator(): Promise<{ endpoint: string; stop: () => void }> {
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  const cli = path.join(import.meta.dirname, '..', 'node_modules', 'fauxqs', 'dist', 'cli.js');
  const proc = spawn(process.execPath, [cli], {
    env: { ...process.env, FAUXQS_PORT: String(port), FAUXQS_HOST: '127.0.0.1', FAUXQS_LOGGER: 'false' },
    stdio: 'ignore',
  });
  const endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const up = await fetch(`${endpoint}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return { endpoint, stop: () => proc.kill() };
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill();
  throw new Error('the S3/SQS emulator did not start');
}

type ChildResult = PathResult & { maxRssMB: number };

/** One dropload path in a process of its own, so its peak RSS is its own. */
/** Node flags of a split or load worker process: the Lambdas' own, and `--worker-heap` when given. */
let handlerFlags = HANDLER_NODE_OPTIONS;

async function child(name: string, ...args: string[]): Promise<ChildResult> {
  // Split and load run as the Lambdas do; `dropload run` (end to end) and the baseline with Node's defaults.
  const flags = name === 'split' || name === 'plan' ? handlerFlags : [];
  const out = await exec(process.execPath, [...flags, BUNDLE, name, ...args]);
  return JSON.parse(out.trim().split('\n').pop() ?? '{}');
}

/** Lines a child prints, in order. */
function lines(proc: ChildProcess): AsyncIterator<string> {
  return createInterface({ input: proc.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
}

/**
 * `n` load workers, each a process of its own (as Lambda instances are), pulling chunks from one queue:
 * each sets up, says ready, and all start on one signal; the time runs until the last one is done.
 */
async function loadWorkers(n: number): Promise<ChildResult> {
  const procs = Array.from({ length: n }, () =>
    spawn(process.execPath, [...handlerFlags, BUNDLE, 'worker'], { stdio: ['pipe', 'pipe', 'inherit'] }),
  );
  const outs = procs.map(lines);
  const exited = procs.map(
    (p) =>
      new Promise<void>((resolve, reject) =>
        p.on('close', (c) => (c === 0 ? resolve() : reject(new Error(`load worker exited with ${c}`)))),
      ),
  );
  for (const out of outs)
    if ((await out.next()).value !== 'ready') throw new Error('a load worker did not start');
  const started = performance.now();
  for (const p of procs) p.stdin?.end('go\n');
  const results = await Promise.all(
    outs.map(async (out) => JSON.parse((await out.next()).value) as ChildResult),
  );
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(exited);
  return {
    seconds,
    loaded: results.reduce((s, r) => s + r.loaded, 0),
    rejected: results.reduce((s, r) => s + r.rejected, 0),
    chunks: results.reduce((s, r) => s + (r.chunks ?? 0), 0),
    chunkShares: results.map((r) => r.chunks ?? 0),
    cpuSeconds: results.reduce((s, r) => s + (r.cpuSeconds ?? 0), 0),
    maxRssMB: Math.max(...results.map((r) => r.maxRssMB)),
  };
}

/**
 * Samples how many connections dropload's pools hold on the benchmark's database (they connect as
 * application_name `dropload`): another dropload on the same server, on another database, is not counted.
 */
function connectionSampler(url: string): { stop: () => Promise<number> } {
  const client = new pg.Client({ connectionString: url });
  let peak = 0;
  let running = true;
  const loop = (async () => {
    await client.connect();
    while (running) {
      const { rows } = await client.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity
         where application_name = 'dropload' and datname = current_database()`,
      );
      peak = Math.max(peak, rows[0]?.n ?? 0);
      await new Promise((r) => setTimeout(r, 25));
    }
    await client.end();
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return peak;
    },
  };
}

interface Bench {
  o: Options;
  s3: S3Client;
  /** The benchmark's own connection (not named `dropload`, so the connection count leaves it out). */
  db: Kysely<unknown>;
}

/** A fresh target table and ledger before every path, so none profits from (or pays for) the one before. */
async function prepare(b: Bench): Promise<void> {
  await resetDatabase(b.o.url);
  await migrateToLatest(b.db, config.migrations);
}

/** Whether `--only` keeps the path `name` (`worker-1000` is the `worker` path on the 1000 MB file). */
const selected = (b: Bench, name: string) => !b.o.only || b.o.only.includes(name.replace(/-\d+$/, ''));

async function measure(
  b: Bench,
  label: string,
  name: string,
  rows: number,
  run: () => Promise<PathResult & { maxRssMB?: number }>,
  connectionBudget?: number,
): Promise<Measured | undefined> {
  if (!selected(b, name)) return undefined;
  process.stderr.write(`  ${label} …`);
  const runs: Measured[] = [];
  for (let i = 0; i < b.o.repeat; i++) {
    await prepare(b);
    const sampler = connectionSampler(b.o.url);
    const result = await run();
    const peakConnections = await sampler.stop();
    const rowsInTable = await countRows(b.o.url);
    const shares = result.chunkShares ?? [];
    process.stderr.write(
      ` ${result.seconds.toFixed(2)} s${shares.length > 1 ? ` (chunks per worker ${shares.join('/')})` : ''}`,
    );
    runs.push({
      path: name,
      label,
      rows,
      ...result,
      rowsInTable,
      // Only dropload's paths have a budget; the others do not connect as `dropload`.
      ...(connectionBudget === undefined ? {} : { peakConnections, connectionBudget }),
    });
  }
  process.stderr.write('\n');
  // The median run, with the highest peaks any run reached.
  const sorted = [...runs].sort((x, y) => x.seconds - y.seconds);
  const median = sorted[Math.floor((sorted.length - 1) / 2)] as Measured;
  const peak = (pick: (r: Measured) => number | undefined) => {
    const seen = runs.map(pick).filter((v) => v !== undefined);
    return seen.length > 0 ? Math.max(...seen) : undefined;
  };
  return {
    ...median,
    maxRssMB: peak((r) => r.maxRssMB),
    peakConnections: peak((r) => r.peakConnections),
    runs: runs.map((r) => r.seconds),
  };
}

/** Pool sizes: a Lambda's is DROPLOAD_DB_POOL_MAX (default 2), the local stack's shared one 8. */
const workerPool = () => Number(process.env.DROPLOAD_DB_POOL_MAX ?? 2);
const stackPool = () => Number(process.env.DROPLOAD_DB_POOL_MAX ?? 8);

async function dataFile(rows: number): Promise<{ file: string; bytes: number }> {
  const file = path.join(OUT, `bench-${rows}.csv`);
  if (!existsSync(file)) {
    process.stderr.write(`generating ${rows.toLocaleString('en-US')} rows into ${file}\n`);
    await generateCsv(file, rows);
    // The new file's dirty pages would otherwise be written back during the first measurements.
    await exec('sync', []);
  }
  return { file, bytes: (await stat(file)).size };
}

async function parquetFile(rows: number): Promise<string> {
  const file = path.join(OUT, `bench-${rows}.parquet`);
  if (!existsSync(file)) {
    await generateParquet(file, rows);
    await exec('sync', []);
  }
  return file;
}

async function gzipped(file: string): Promise<string> {
  const out = `${file}.gz`;
  if (!existsSync(out)) {
    await pipeline(createReadStream(file), createGzip(), createWriteStream(out));
    await exec('sync', []);
  }
  return out;
}

async function upload(b: Bench, file: string, dataset = 'bench'): Promise<string> {
  const key = `${config.datasets.find((d) => d.name === dataset)?.prefix}${path.basename(file)}`;
  const ref: ObjectRef = await uploadFile(b.s3, BUCKET, key, file);
  return JSON.stringify(ref);
}

/** Splits (untimed, in its own process) onto the chunk queue and runs `n` load workers on it. */
async function workersOn(ref: string, n: number): Promise<ChildResult> {
  await child('plan', ref);
  return loadWorkers(n);
}

/** The main table: every path on one file. */
const measured = (results: (Measured | undefined)[]): Measured[] =>
  results.filter((r): r is Measured => r !== undefined);

async function paths(b: Bench): Promise<Measured[]> {
  const { o } = b;
  const { file } = await dataFile(o.rows);
  const ref = await upload(b, file);
  const gz = await gzipped(file);
  const parquet = await parquetFile(o.rows);
  const parquetRef = await upload(b, parquet, 'bench-parquet');
  const m = (label: string, name: string, run: () => Promise<PathResult>, budget?: number) =>
    measure(b, label, name, o.rows, run, budget);
  const results = [
    await m('psql \\copy', 'psql', () => psqlCopy(file, o.url)),
    await m('dropload split alone', 'split', () => child('split', ref), workerPool()),
    await m('dropload init (profile + infer + write)', 'init', () => child('init', file)),
    await m('dropload load worker', 'worker', () => workersOn(ref, 1), workerPool()),
  ];
  for (const n of o.sweep) {
    results.push(
      await m(`dropload load workers ×${n}`, `workers-${n}`, () => workersOn(ref, n), n * workerPool()),
    );
  }
  results.push(
    await m('dropload end to end', 'e2e', () => child('e2e', file, String(o.workers)), stackPool()),
    await m('npx dropload run FILE', 'run', () => droploadRun(file, 'bench', o.url), stackPool()),
    await m(
      'dropload end to end, .csv.gz',
      'e2e-gzip',
      () => child('e2e', gz, String(o.workers)),
      stackPool(),
    ),
    await m('dropload load worker, .parquet', 'worker-parquet', () => workersOn(parquetRef, 1), workerPool()),
    await m(
      'dropload end to end, .parquet',
      'e2e-parquet',
      () => child('e2e', parquet, String(o.workers), 'bench-parquet'),
      stackPool(),
    ),
    await m('kysely VALUES ×1000', 'kysely', () => child('kysely', file)),
  );
  return measured(results);
}

/**
 * The worst chunks for the load function's timeout: one chunk of the dataset's `chunkBytes` whose every
 * row the database refuses, for a key already in the table or for a CHECK, next to `psql \copy` of the
 * same rows into the empty table. Set-up (loading the keys, adding the CHECK) is not timed.
 */
async function refusedChunks(b: Bench): Promise<Measured[]> {
  const { chunkBytes } = config.datasets.find((d) => d.name === 'bench') ?? {};
  if (!chunkBytes) throw new Error('bench/bench.config.ts has no dataset "bench"');
  // Under chunkBytes by a margin, as the row size is an average: the split must make one chunk of it.
  const rows = Math.floor((chunkBytes * 0.97) / ROW_BYTES);
  const { file } = await dataFile(rows);
  const ref = await upload(b, file);
  const fkRef = await upload(b, file, 'bench-fk');
  const recordsRef = await upload(b, file, 'bench-records');
  const oneChunk = async (of = ref): Promise<ChildResult> => {
    const result = await workersOn(of, 1);
    if (result.chunks !== 1) throw new Error(`the refused-rows file made ${result.chunks} chunks, not 1`);
    return result;
  };
  const m = (label: string, name: string, run: () => Promise<PathResult>, budget?: number) =>
    measure(b, label, name, rows, run, budget);
  const mib = (chunkBytes / 2 ** 20).toFixed(0);
  return measured([
    await m(`psql \\copy, one ${mib} MiB chunk`, 'psql-chunk', () => psqlCopy(file, b.o.url)),
    await m(
      'dropload chunk, every key a duplicate',
      'refused-duplicates',
      async () => {
        await psqlCopy(file, b.o.url);
        return oneChunk();
      },
      workerPool(),
    ),
    await m(
      'dropload chunk, every row failing a CHECK',
      'refused-check',
      async () => {
        await refuseEveryRow(b.o.url);
        return oneChunk();
      },
      workerPool(),
    ),
    // Rows that may wait for parents (a foreign key) and records of two tables take the multi-table writer.
    await m(
      'dropload chunk, foreign key, every key a duplicate',
      'refused-fk-duplicates',
      async () => {
        await psqlCopy(file, b.o.url, BENCH_FK_TABLE);
        return oneChunk(fkRef);
      },
      workerPool(),
    ),
    await m(
      'dropload chunk, two-table records, every one failing a CHECK',
      'refused-records-check',
      async () => {
        await refuseEveryRecord(b.o.url);
        return oneChunk(recordsRef);
      },
      workerPool(),
    ),
  ]);
}

/** Files of 100 rows (about 11 KB): what the split and a load worker take for one, as the cost of many small files. */
const SMALL_ROWS = 100;

/** Split and load on one small file, measured as the main paths are (`--repeat` runs, the median). */
interface SmallFile {
  split?: Measured;
  load?: Measured;
  bytes: number;
}

async function smallFile(b: Bench): Promise<SmallFile> {
  const { file, bytes } = await dataFile(SMALL_ROWS);
  const ref = await upload(b, file);
  return {
    split: await measure(b, 'small file: split', 'small-split', SMALL_ROWS, () => child('split', ref)),
    load: await measure(b, 'small file: load worker', 'small-load', SMALL_ROWS, () => workersOn(ref, 1)),
    bytes,
  };
}

/** A measured step as the cost model takes it, scaled by `times` (e.g. to 1 GB), at its function's memory. */
function step(m: Measured, times: number, memoryMB: number): StepUse {
  return { wallSeconds: m.seconds * times, cpuSeconds: (m.cpuSeconds ?? m.seconds) * times, memoryMB };
}

/** The cost of 1 GB (the main file's split and one worker, scaled) and of 1,000 small files. */
/** Undefined when `--only` left out a path it needs. */
function costs(results: Measured[], bytes: number, small: SmallFile | undefined) {
  const split = results.find((r) => r.path === 'split');
  const worker = results.find((r) => r.path === 'worker');
  if (!split || !worker || !small?.split || !small.load) return undefined;
  const perGb = 1e9 / bytes;
  const oneGb: LoadUse = {
    files: 1,
    chunks: Math.ceil((worker.chunks ?? 1) * perGb),
    split: step(split, perGb, CONSUMERS.ingest.memoryMB),
    load: step(worker, perGb, CONSUMERS.chunks.memoryMB),
  };
  const files = 1000;
  const smallFiles: LoadUse = {
    files,
    chunks: files,
    split: step(small.split, files, CONSUMERS.ingest.memoryMB),
    load: step(small.load, files, CONSUMERS.chunks.memoryMB),
  };
  return { oneGb, smallFiles, lines: costLines(oneGb, smallFiles, (small.bytes * files) / 1e9) };
}

/** The cost curve: psql, one load worker and end to end on files of each size in `--sizes` (MB). */
async function curve(b: Bench): Promise<Measured[]> {
  const results: (Measured | undefined)[] = [];
  for (const mb of b.o.sizes) {
    const rows = Math.round((mb * 1e6) / ROW_BYTES);
    const { file, bytes } = await dataFile(rows);
    process.stderr.write(`${(bytes / 1e6).toFixed(0)} MB, ${rows.toLocaleString('en-US')} rows\n`);
    const ref = await upload(b, file);
    const tag = `${mb} MB`;
    results.push(
      await measure(b, `psql \\copy, ${tag}`, `psql-${mb}`, rows, () => psqlCopy(file, b.o.url)),
      await measure(
        b,
        `dropload split alone, ${tag}`,
        `split-${mb}`,
        rows,
        () => child('split', ref),
        workerPool(),
      ),
      await measure(b, `dropload init, ${tag}`, `init-${mb}`, rows, () => child('init', file)),
      await measure(
        b,
        `dropload load worker, ${tag}`,
        `worker-${mb}`,
        rows,
        () => workersOn(ref, 1),
        workerPool(),
      ),
    );
    // The same rows as Parquet: generating it takes minutes, so only when the line is asked for.
    if (selected(b, `worker-parquet-${mb}`)) {
      const parquetRef = await upload(b, await parquetFile(rows), 'bench-parquet');
      results.push(
        await measure(
          b,
          `dropload load worker, .parquet, ${tag}`,
          `worker-parquet-${mb}`,
          rows,
          () => workersOn(parquetRef, 1),
          workerPool(),
        ),
      );
    }
    results.push(
      await measure(
        b,
        `dropload end to end, ${tag}`,
        `e2e-${mb}`,
        rows,
        () => child('e2e', file, String(b.o.workers)),
        stackPool(),
      ),
      await measure(
        b,
        `npx dropload run FILE, ${tag}`,
        `run-${mb}`,
        rows,
        () => droploadRun(file, 'bench', b.o.url),
        stackPool(),
      ),
    );
  }
  return measured(results);
}

function table(results: Measured[]): string {
  const header = [
    'path',
    'seconds',
    'runs, s',
    'rows/s',
    'vs psql \\copy',
    'peak RSS MB',
    'vs split',
    'conns / budget',
    'rows in table',
  ];
  const lines = [header];
  // No psql line (`--only` left it out): nothing to compare with.
  let base: number | undefined;
  let split: Measured | undefined;
  for (const r of results) {
    if (r.path.startsWith('psql')) base = r.seconds;
    if (r.path.startsWith('split')) split = r;
    lines.push([
      r.label,
      r.seconds.toFixed(2),
      (r.runs ?? []).length > 1
        ? `${Math.min(...(r.runs ?? [])).toFixed(2)}–${Math.max(...(r.runs ?? [])).toFixed(2)}`
        : '-',
      Math.round(r.rows / r.seconds).toLocaleString('en-US'),
      base === undefined ? '-' : `${(base / r.seconds).toFixed(2)}×`,
      r.maxRssMB === undefined ? '-' : r.maxRssMB.toFixed(0),
      // `init` against the split pass over the same file (the issue's bound is 2×), and the same in CPU
      // seconds: on a machine others keep busy, wall time mostly measures the wait for a core.
      r.path.startsWith('init') && split ? splitRatios(r, split) : '-',
      r.peakConnections === undefined ? '-' : `${r.peakConnections} / ${r.connectionBudget}`,
      r.rowsInTable.toLocaleString('en-US'),
    ]);
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length)));
  return lines
    .map((l) => l.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  '))
    .join('\n');
}

async function main(): Promise<void> {
  const o = options();
  if (o.workerHeap) handlerFlags = [...HANDLER_NODE_OPTIONS, `--max-old-space-size=${o.workerHeap}`];
  await mkdir(OUT, { recursive: true });
  await ensureDatabase(o.url);
  await bundlePaths();
  process.stderr.write(
    `${o.rows.toLocaleString('en-US')} rows; end to end with ${o.workers} worker(s); load workers ×${o.sweep.join(', ×')}; split and load workers run with ${handlerFlags.join(' ')}\n`,
  );
  const emulator = await startEmulator();
  process.env.AWS_ENDPOINT_URL = emulator.endpoint;
  const { s3 } = awsClients(process.env);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  const db = new Kysely<unknown>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: o.url, max: 1 }) }),
  });
  const b: Bench = { o, s3, db };
  let results: Measured[];
  let sizes: Measured[];
  let refused: Measured[];
  let small: SmallFile | undefined;
  const started = o.refusedOnly ? undefined : await startup(o);
  try {
    results = o.refusedOnly ? [] : await paths(b);
    small = o.refusedOnly ? undefined : await smallFile(b);
    sizes = o.refusedOnly ? [] : await curve(b);
    refused = await refusedChunks(b);
  } finally {
    await db.destroy();
    emulator.stop();
  }
  // The main file's size; `--refused-only` made none.
  const bytes = o.refusedOnly ? undefined : (await dataFile(o.rows)).bytes;
  const cost = bytes === undefined ? undefined : costs(results, bytes, small);
  const summary = {
    rows: o.rows,
    validRows: validRows(o.rows),
    bytes,
    workers: o.workers,
    handlerNodeOptions: handlerFlags,
    node: process.version,
    postgres: await serverVersion(o.url),
    at: new Date().toISOString(),
    startup: started,
    cost: cost && { prices: PRICES, oneGb: cost.oneGb, smallFiles: cost.smallFiles },
    results: withRatios(results),
    curve: withRatios(sizes),
    refused: withRatios(refused),
  };
  if (results.length > 0) console.log(table(results));
  if (sizes.length > 0) console.log(`\n${table(sizes)}`);
  if (started)
    console.log(
      `\nstart-up: npx dropload --help ${seconds(started.npx)}; node cli/bin.js --help ${seconds(started.bin)}`,
    );
  if (cost) console.log(`\n${cost.lines.join('\n')}`);
  if (refused.length > 0) console.log(`\n${table(refused)}\n${worstChunk(refused)}`);
  await writeFile(path.join(OUT, 'results.json'), `${JSON.stringify(summary, null, 2)}\n`);
}

/** The slowest refused chunk against the timeout of the function that loads chunks on AWS. */
function worstChunk(refused: Measured[]): string {
  const worst = Math.max(...refused.filter((r) => r.path.startsWith('refused')).map((r) => r.seconds));
  const timeout = CONSUMERS.chunks.timeoutSeconds;
  return `slowest refused chunk: ${worst.toFixed(2)} s, ${((100 * worst) / timeout).toFixed(1)}% of the load function's ${timeout} s timeout`;
}

/** Each result with rows/s and its ratio to the psql line measured before it on the same file. */
function withRatios(results: Measured[]) {
  let base: number | undefined;
  let split: Measured | undefined;
  return results.map((r) => {
    if (r.path.startsWith('psql')) base = r.seconds;
    if (r.path.startsWith('split')) split = r;
    const cpu = r.cpuSeconds !== undefined && split?.cpuSeconds ? r.cpuSeconds / split.cpuSeconds : undefined;
    return {
      ...r,
      rowsPerSecond: r.rows / r.seconds,
      ratioToCopy: base === undefined ? null : base / r.seconds,
      ...(r.path.startsWith('init') && split
        ? { ratioToSplit: r.seconds / split.seconds, ...(cpu === undefined ? {} : { cpuRatioToSplit: cpu }) }
        : {}),
    };
  });
}

/** `init`'s time over the split pass's: wall seconds, then CPU seconds when both were measured. */
function splitRatios(init: Measured, split: Measured): string {
  const wall = `${(init.seconds / split.seconds).toFixed(2)}×`;
  if (init.cpuSeconds === undefined || !split.cpuSeconds) return wall;
  return `${wall} (CPU ${(init.cpuSeconds / split.cpuSeconds).toFixed(2)}×)`;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
