import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_TABLE } from './bench.config.ts';
import { countRows, resetDatabase, serverVersion } from './db.ts';
import { generateCsv, validRows } from './generate.ts';
import type { PathResult } from './paths.ts';

// `npm run bench`: one file, four ways into the same Postgres, timed in one run. Absolute numbers
// depend on the machine; the ratio to `psql \copy` measured alongside is what to compare.

const OUT = path.join(import.meta.dirname, 'out');
const QUICK_ROWS = 50_000;

interface Options {
  rows: number;
  workers: number;
  url: string;
}

interface Measured extends PathResult {
  path: string;
  label: string;
  rowsInTable: number;
  maxRssMB?: number;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string' },
      workers: { type: 'string', default: '2' },
      quick: { type: 'boolean', default: false },
    },
  });
  const url = process.env.DATABASE_URL;
  if (!url) {
    throw new Error(
      'DATABASE_URL is not set: the benchmark loads into a real Postgres (e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/dropload_bench)',
    );
  }
  const rows = Number(values.rows ?? (values.quick ? QUICK_ROWS : 1_000_000));
  const workers = Number(values.workers);
  if (!Number.isInteger(rows) || rows < 1) throw new Error(`--rows must be a positive whole number`);
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`--workers must be a positive whole number`);
  return { rows, workers, url };
}

function exec(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
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

async function psqlCopy(file: string, url: string): Promise<PathResult> {
  const started = performance.now();
  await exec('psql', [
    url,
    '-v',
    'ON_ERROR_STOP=1',
    '-qc',
    `\\copy ${BENCH_TABLE} from '${file}' csv header`,
  ]);
  return { seconds: (performance.now() - started) / 1000, loaded: 0, rejected: 0 };
}

/**
 * fauxqs in a process of its own: it keeps objects in memory, and inside a dropload process it would
 * count the whole file against that process's peak RSS.
 */
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

/** Each dropload path runs in its own process, so its peak RSS is its own. */
async function child(
  name: string,
  file: string,
  workers: number,
): Promise<PathResult & { maxRssMB: number }> {
  const script = path.join(import.meta.dirname, 'paths.ts');
  const out = await exec(process.execPath, [script, name, file, String(workers)]);
  return JSON.parse(out.trim().split('\n').pop() ?? '{}');
}

async function measure(label: string, name: string, o: Options, run: () => Promise<PathResult>) {
  await resetDatabase(o.url);
  process.stderr.write(`  ${label} …`);
  const result = await run();
  const rowsInTable = await countRows(o.url);
  process.stderr.write(` ${result.seconds.toFixed(2)} s\n`);
  return { path: name, label, ...result, rowsInTable } satisfies Measured;
}

function table(results: Measured[], rows: number): string {
  const base = results.find((r) => r.path === 'psql')?.seconds ?? Number.NaN;
  const lines = [['path', 'seconds', 'rows/s', 'vs psql \\copy', 'peak RSS MB', 'rows in table']];
  for (const r of results) {
    lines.push([
      r.label,
      r.seconds.toFixed(2),
      Math.round(rows / r.seconds).toLocaleString('en-US'),
      `${(base / r.seconds).toFixed(2)}×`,
      r.maxRssMB === undefined ? '-' : r.maxRssMB.toFixed(0),
      r.rowsInTable.toLocaleString('en-US'),
    ]);
  }
  const widths = lines[0]?.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length))) ?? [];
  return lines
    .map((l) => l.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  '))
    .join('\n');
}

async function main(): Promise<void> {
  const o = options();
  await mkdir(OUT, { recursive: true });
  const file = path.join(OUT, `bench-${o.rows}.csv`);
  if (!existsSync(file)) {
    process.stderr.write(`generating ${o.rows.toLocaleString('en-US')} rows into ${file}\n`);
    await generateCsv(file, o.rows);
  }
  const { size } = await stat(file);
  process.stderr.write(
    `loading ${o.rows.toLocaleString('en-US')} rows (${(size / 1e6).toFixed(1)} MB), ${o.workers} worker(s)\n`,
  );
  const emulator = await startEmulator();
  process.env.BENCH_S3_ENDPOINT = emulator.endpoint;
  let results: Measured[];
  try {
    results = [
      await measure('psql \\copy', 'psql', o, () => psqlCopy(file, o.url)),
      await measure('dropload split alone', 'split', o, () => child('split', file, o.workers)),
      await measure('dropload load worker', 'worker', o, () => child('worker', file, o.workers)),
      await measure('dropload end to end', 'e2e', o, () => child('e2e', file, o.workers)),
      await measure('kysely VALUES ×1000', 'kysely', o, () => child('kysely', file, o.workers)),
    ];
  } finally {
    emulator.stop();
  }
  const base = results[0]?.seconds ?? Number.NaN;
  const summary = {
    rows: o.rows,
    validRows: validRows(o.rows),
    bytes: size,
    workers: o.workers,
    node: process.version,
    postgres: await serverVersion(o.url),
    at: new Date().toISOString(),
    results: results.map((r) => ({ ...r, rowsPerSecond: o.rows / r.seconds, ratioToCopy: base / r.seconds })),
  };
  console.log(table(results, o.rows));
  await writeFile(path.join(OUT, 'results.json'), `${JSON.stringify(summary, null, 2)}\n`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
