/**
 * `npm run chaos`: kill -9 the running pipeline at random moments while files load, round after round,
 * and check after every round that the table holds exactly the file's valid rows: none lost, none
 * doubled, every reject accounted for. One kind of file per round, in turn: plain CSV, `.csv.gz`,
 * Parquet, and a `publish: 'file'` dataset. The pipeline is `dropload dev` as a user runs it, against
 * an S3/SQS emulator in a process of its own (as on AWS, where a function dies and the queues do not)
 * and the Postgres at DATABASE_URL. With --kill-emulator the emulator is killed too, now and then.
 *
 *   npm run chaos -- --rounds 8 --rows 30000 --kills 3 --seed 7
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { Upload } from '@aws-sdk/lib-storage';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { sql } from 'kysely';
import pg from 'pg';
import { createDb, createPool } from '../../shared/ledger/connection.ts';
import { awsClients } from '../../shared/runtime/environment.ts';
import { prng } from '../unit/helpers.ts';
import type { CHAOS_TABLES } from './chaos.config.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '8' },
    rows: { type: 'string', default: '30000' },
    kills: { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
    kinds: { type: 'string', default: 'csv,gz,parquet,staged' },
    'kill-emulator': { type: 'boolean', default: false },
    'round-timeout': { type: 'string', default: '180' },
  },
});
const ROUNDS = Number(args.rounds);
const ROWS = Number(args.rows);
const KILLS = Number(args.kills);
const KINDS = (args.kinds as string).split(',') as Kind[];
const random = prng(Number(args.seed));
/** Every this many rows one has an empty label: a reject the loader must record, exactly once. */
const BAD_EVERY = 997;
const ROOT = path.resolve(import.meta.dirname, '../..');
const CONFIG = path.join(ROOT, 'test/chaos/chaos.config.ts');

type Kind = 'csv' | 'gz' | 'parquet' | 'staged';

async function database(): Promise<string> {
  const url = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
  url.pathname = '/dropload_chaos';
  const admin = new pg.Client({
    connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  });
  await admin.connect();
  await admin.query('drop database if exists dropload_chaos with (force)');
  await admin.query('create database dropload_chaos');
  await admin.end();
  return url.toString();
}

/** Starts a child and resolves once a line of its stdout matches. */
async function startChild(
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let errors = '';
  child.stderr?.on('data', (d: Buffer) => {
    errors = (errors + d.toString()).slice(-4000);
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const found = new Promise<string>((resolve, reject) => {
    lines.on('line', (l) => ready.test(l) && resolve(l));
    child.once('exit', (code) =>
      reject(new Error(`${args[0]} exited (${code}) before it was ready: ${errors}`)),
    );
  });
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`${args[0]} not ready after 60 s: ${errors}`)), 60_000).unref(),
  );
  return { child, line: await Promise.race([found, timeout]) };
}

async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

function rowsOf(from: number, n: number): { id: number; label: string }[] {
  return Array.from({ length: n }, (_, i) => {
    const id = from + i;
    return { id, label: id % BAD_EVERY === 0 ? '' : `row ${id} ${'x'.repeat(20 + (id % 30))}` };
  });
}

async function fileFor(kind: Kind, dir: string, round: number, rows: { id: number; label: string }[]) {
  const csv = `id,label\n${rows.map((r) => `${r.id},${r.label}`).join('\n')}\n`;
  const name = `round-${round}.${kind === 'gz' ? 'csv.gz' : kind === 'parquet' ? 'parquet' : 'csv'}`;
  const local = path.join(dir, name);
  if (kind === 'gz') await writeFile(local, gzipSync(csv));
  else if (kind === 'parquet') {
    const bytes = parquetWriteBuffer({
      rowGroupSize: 2000,
      columnData: [
        { name: 'id', data: rows.map((r) => BigInt(r.id)), type: 'INT64' },
        { name: 'label', data: rows.map((r) => r.label), type: 'STRING' },
      ],
    });
    await writeFile(local, new Uint8Array(bytes));
  } else await writeFile(local, csv);
  return { local, key: `incoming/${kind}/${name}` };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const databaseUrl = await database();
  const dir = await mkdtemp(path.join(tmpdir(), 'dropload-chaos-'));
  const env = { ...process.env, DATABASE_URL: databaseUrl, DROPLOAD_BUCKET: 'dropload-chaos' };
  const emulatorArgs = [path.join(ROOT, 'test/chaos/emulator.ts'), path.join(dir, 'emulator')];
  let emulator = await startChild(emulatorArgs, env, /^http/);
  const endpoint = emulator.line.trim();
  const port = new URL(endpoint).port;
  emulatorArgs.push(port);
  const workerEnv = { ...env, AWS_ENDPOINT_URL: endpoint };
  const workerArgs = [path.join(ROOT, 'cli/dropload.ts'), '--config', CONFIG, 'dev'];
  let worker = await startChild(workerArgs, workerEnv, /^dropload dev/);
  const { s3 } = awsClients(workerEnv);
  const db = createDb(createPool({ connectionString: databaseUrl, poolMax: 1 }));
  const totals = { rounds: 0, kills: 0, emulatorKills: 0, lost: 0, doubled: 0, wrong: 0 };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const kind = KINDS[round % KINDS.length] as Kind;
      const table = `chaos_${kind}` as (typeof CHAOS_TABLES)[number];
      const from = round * 1_000_000 + 1;
      const rows = rowsOf(from, ROWS);
      const valid = rows.filter((r) => r.label !== '');
      const { local, key } = await fileFor(kind, dir, round, rows);
      const started = Date.now();
      await new Upload({
        client: s3,
        params: { Bucket: 'dropload-chaos', Key: key, Body: createReadStream(local) },
      }).done();
      let kills = 0;
      for (let k = 0; k < KILLS; k++) {
        await sleep(100 + Math.floor(random() * 2400));
        await kill9(worker.child);
        kills++;
        if (args['kill-emulator'] && random() < 0.3) {
          await kill9(emulator.child);
          totals.emulatorKills++;
          emulator = await startChild(emulatorArgs, env, /^http/);
        }
        worker = await startChild(workerArgs, workerEnv, /^dropload dev/);
      }
      totals.kills += kills;
      const deadline = Date.now() + Number(args['round-timeout']) * 1000;
      let file: { state: string; rows_read: number; rows_rejected: number; error: string | null } | undefined;
      for (;;) {
        file = await db
          .selectFrom('dropload.file')
          .select(['state', 'rows_read', 'rows_rejected', 'error'])
          .where('key', '=', key)
          .orderBy('id', 'desc')
          .executeTakeFirst();
        if (file && ['loaded', 'failed', 'skipped', 'stalled'].includes(file.state)) break;
        if (Date.now() > deadline) break;
        await sleep(200);
      }
      const got = await sql<{ n: number; distinct: number; sum: string | null }>`
        select count(*)::int as n, count(distinct id)::int as distinct, sum(id)::text as sum
        from ${sql.table(table)} where id between ${from} and ${from + ROWS - 1}`.execute(db);
      const { n, distinct, sum } = got.rows[0] ?? { n: 0, distinct: 0, sum: null };
      const expectedSum = valid.reduce((s, r) => s + BigInt(r.id), 0n).toString();
      const lost = valid.length - distinct;
      const doubled = n - distinct;
      const rejectsRight = file?.rows_rejected === rows.length - valid.length;
      const ok =
        file?.state === 'loaded' && lost === 0 && doubled === 0 && sum === expectedSum && rejectsRight;
      totals.rounds++;
      totals.lost += Math.max(0, lost);
      totals.doubled += doubled;
      if (!ok) totals.wrong++;
      process.stdout.write(
        `round ${round + 1}/${ROUNDS} ${kind.padEnd(7)} ${ROWS} rows, ${kills} kill -9: ${file?.state ?? 'never registered'}, rows ${distinct}/${valid.length}, lost ${lost}, doubled ${doubled}, rejects ${file?.rows_rejected ?? 0}/${rows.length - valid.length}, sum ${sum === expectedSum ? 'ok' : `${sum} ≠ ${expectedSum}`} (${((Date.now() - started) / 1000).toFixed(1)} s)${ok ? '' : `  ✗ ${file?.error ?? ''}`}\n`,
      );
    }
  } finally {
    await kill9(worker.child);
    await kill9(emulator.child);
    await db.destroy();
    await rm(dir, { recursive: true, force: true });
  }
  process.stdout.write(
    `chaos: ${totals.rounds} rounds, ${totals.kills} kill -9 of the pipeline${args['kill-emulator'] ? `, ${totals.emulatorKills} of the emulator` : ''}; rows lost ${totals.lost}, rows doubled ${totals.doubled}, rounds wrong ${totals.wrong}\n`,
  );
  process.exitCode = totals.wrong > 0 ? 1 : 0;
}

await main();
