import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Kysely, sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FileReport } from '../../cli/report.ts';
import { EXIT_WAITING, runExitCode, runFiles } from '../../cli/run.ts';
import { type ResolvedConfig, resolveConfig } from '../../shared/config/config.ts';
import { createDb, createPool } from '../../shared/ledger/connection.ts';
import { filesByKey, rejectsOf } from '../../shared/ledger/ledger.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { retryRejects } from '../../shared/ops/retry-rejects.ts';
import { expectHonestCounts } from '../support/counts.ts';
import {
  cli,
  DEV_BUCKET,
  devS3,
  dropInto,
  freePortPair,
  startDev,
  stopAllDevs,
  stopDev,
} from '../support/dev.ts';
import familyConfig, { FAMILY_TABLES } from '../support/family.config.ts';
import { resetDatabase } from '../support/pipeline.ts';
import { localRunners } from '../support/runners.ts';

/**
 * Files in any order (issue 12): an eight-file family — 1:N, M:N, a self-reference and a three-level
 * chain — dropped in adversarial orders, one file per separate `run` (a runner whose emulator keeps
 * nothing), ends with exactly the parents-first database, nothing waiting, every file `loaded`, and
 * each run's exit code as the README documents (3 while its file waits for a parent no file so far
 * brought, 0 once it is loaded). Run on Postgres (DATABASE_URL) and on the embedded PGlite (its data
 * on disk, so that each runner finds what the one before left).
 */

const postgres = process.env.DATABASE_URL;
const config: ResolvedConfig = resolveConfig(familyConfig, 'test/support/family.config.ts');

type Name =
  | 'regions'
  | 'territories'
  | 'employees'
  | 'employee-territories'
  | 'customers'
  | 'products'
  | 'orders'
  | 'order-lines';

/** Each file's rows name rows of every table listed here (its ancestors, transitively). */
const ANCESTORS: Record<Name, Name[]> = {
  regions: [],
  territories: ['regions'],
  // Its `reports_to` names employees of the same file only.
  employees: [],
  'employee-territories': ['employees', 'territories', 'regions'],
  customers: [],
  products: [],
  orders: ['customers'],
  'order-lines': ['orders', 'customers', 'products'],
};

const range = (n: number) => Array.from({ length: n }, (_, k) => k + 1);
const csv = (header: string, lines: string[]) => `${[header, ...lines].join('\n')}\n`;

const CONTENT: Record<Name, string> = {
  regions: csv('region_id,name', ['1,Eastern', '2,Western', '3,Northern']),
  territories: csv(
    'territory_id,name,region_id',
    range(6).map((i) => `T${i},Territory ${i},${(i % 3) + 1}`),
  ),
  // Reports before their managers, two levels deep: 5 → 3 → 2 → 1.
  employees: csv('employee_id,name,reports_to', ['5,Eve,3', '3,Carl,2', '4,Dana,1', '2,Bob,1', '1,Ann,']),
  'employee-territories': csv('employee_id,territory_id', [
    '1,T1',
    '2,T2',
    '3,T3',
    '4,T4',
    '5,T5',
    '1,T6',
    '2,T6',
  ]),
  customers: csv(
    'customer_id,name',
    range(4).map((i) => `C${i},Customer ${i}`),
  ),
  products: csv(
    'product_id,name',
    range(5).map((i) => `${i},Product ${i}`),
  ),
  orders: csv(
    'order_id,customer_id',
    range(6).map((i) => `${10 + i},C${(i % 4) + 1}`),
  ),
  'order-lines': csv(
    'order_id,product_id,quantity',
    range(12).map((i) => `${10 + ((i - 1) % 6) + 1},${((i - 1) % 5) + 1},${i}`),
  ),
};

const keyOf = (name: Name) => `incoming/${name}/${name}.csv`;

const PARENTS_FIRST: Name[] = [
  'regions',
  'territories',
  'employees',
  'employee-territories',
  'customers',
  'products',
  'orders',
  'order-lines',
];

const ORDERS: Record<string, Name[]> = {
  'children first (reverse topological)': [...PARENTS_FIRST].reverse(),
  'interleaved (a child, a parent, a grandchild, …)': [
    'order-lines',
    'customers',
    'employee-territories',
    'regions',
    'orders',
    'employees',
    'territories',
    'products',
  ],
  'grandchildren, then grandparents, then the middle': [
    'order-lines',
    'employee-territories',
    'customers',
    'regions',
    'products',
    'employees',
    'orders',
    'territories',
  ],
};

let dir: string;
const runners = localRunners(config, FAMILY_TABLES);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dropload-family-'));
});
afterEach(async () => {
  await runners.stopAll();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** One `dropload run` of one file, in a runner of its own: its reports and exit code. */
async function runOne(stateDir: string, dataset: string, key: string, content: string, options = {}) {
  const runner = await runners.start({ stateDir, freshQueues: true, ...options });
  const run = await runFiles(runner, [await runners.upload(dir, dataset, key, content)], {
    timeoutMs: 60_000,
    rejectsShown: 100,
  });
  const states = await fileStates(runner.deps.db);
  const ledger = await ledgerState(runner.deps.db);
  await expectHonestCounts(runner.deps.db);
  await runners.stop(runner);
  return {
    reports: run.reports,
    code: runExitCode(run.reports, run.timedOut),
    timedOut: run.timedOut,
    states,
    ledger,
  };
}

async function fileStates(db: Kysely<Database>): Promise<Record<string, string>> {
  const { rows } = await sql<{ key: string; state: string }>`select key, state from dropload.file
    order by key`.execute(db);
  return Object.fromEntries(rows.map((r) => [r.key, r.state]));
}

/** What waits, on what, with its chain's state: printed when an order's run does not end as expected. */
async function ledgerState(db: Kysely<Database>) {
  const { rows } = await sql`select f.key, f.state, f.rows_waiting, f.retry_due, f.retry_started_at,
      (select string_agg(distinct o.parent_table, ',') from dropload.orphan o where o.file_id = f.id) as waits_on
    from dropload.file f where f.state <> 'loaded' order by f.key`.execute(db);
  return rows;
}

/** Every family table's rows, in key order. */
async function snapshot(db: Kysely<Database>) {
  const out: Record<string, unknown[]> = {};
  for (const t of FAMILY_TABLES) {
    const { rows } = await sql`select * from ${sql.table(t)} order by 1, 2`.execute(db);
    out[t] = rows;
  }
  return out;
}

async function count(db: Kysely<Database>, table: string) {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from ${sql.table(table)}`.execute(db);
  return rows[0]?.n;
}

/** key, state, read, loaded, rejected, waiting */
const row = (r: FileReport) => [r.key, r.state, r.rows.read, r.rows.loaded, r.rows.rejected, r.rows.waiting];

/** Drops the files in this order, one `run` each; checks every run's exit code and the ledger after it. */
async function dropInOrder(label: string, order: Name[]) {
  await resetDatabase(FAMILY_TABLES);
  const stateDir = path.join(dir, label);
  const dropped: Name[] = [];
  const codes: [Name, number][] = [];
  const expectedCodes: [Name, number][] = [];
  for (const name of order) {
    dropped.push(name);
    const loadable = (n: Name) => ANCESTORS[n].every((a) => dropped.includes(a));
    const { reports, code, states, ledger, timedOut } = await runOne(
      stateDir,
      name,
      keyOf(name),
      CONTENT[name],
    );
    codes.push([name, code]);
    expectedCodes.push([name, loadable(name) ? 0 : EXIT_WAITING]);
    if (code !== (loadable(name) ? 0 : EXIT_WAITING) || Object.values(states).some((s) => s === 'waiting'))
      console.log(JSON.stringify({ label, after: name, code, timedOut, reports: reports.map(row), ledger }));
    // After each run, a dropped file is loaded exactly when every file its rows name a row of came.
    expect({ after: name, states }).toEqual({
      after: name,
      states: Object.fromEntries(
        [...dropped].sort().map((n) => [keyOf(n), loadable(n) ? 'loaded' : 'waiting']),
      ),
    });
    // The run reports its file, then the earlier waiting files that finished during it.
    expect(reports[0]?.key).toBe(keyOf(name));
    for (const r of reports.slice(1)) expect(row(r).slice(0, 2)).toEqual([r.key, 'loaded']);
  }
  expect(codes).toEqual(expectedCodes);
}

let expected: Record<string, unknown[]>;

describe('an eight-file family', () => {
  it('parents first: every run exits 0 and loads its file (the expected database)', async () => {
    await resetDatabase(FAMILY_TABLES);
    const stateDir = path.join(dir, 'parents-first');
    for (const name of PARENTS_FIRST) {
      const { reports, code } = await runOne(stateDir, name, keyOf(name), CONTENT[name]);
      expect([name, code, reports.map(row)]).toEqual([
        name,
        0,
        [[keyOf(name), 'loaded', reports[0]?.rows.read, reports[0]?.rows.read, 0, 0]],
      ]);
    }
    const runner = await runners.start({ stateDir, freshQueues: true });
    expected = await snapshot(runner.deps.db);
    expect(Object.values(expected).map((rows) => rows.length)).toEqual([12, 6, 5, 4, 7, 5, 6, 3]);
    expect(expected['fam.employees']).toEqual([
      { employee_id: 1, name: 'Ann', reports_to: null },
      { employee_id: 2, name: 'Bob', reports_to: 1 },
      { employee_id: 3, name: 'Carl', reports_to: 2 },
      { employee_id: 4, name: 'Dana', reports_to: 1 },
      { employee_id: 5, name: 'Eve', reports_to: 3 },
    ]);
  }, 300_000);

  for (const [label, order] of Object.entries(ORDERS)) {
    it(`${label}, one run per file: exactly the parents-first database, nothing waiting`, async () => {
      expect(expected).toBeDefined();
      await dropInOrder(label.replace(/\W+/g, '-'), order);
      const runner = await runners.start({
        freshQueues: true,
        stateDir: path.join(dir, label.replace(/\W+/g, '-')),
      });
      const { db } = runner.deps;
      expect(await snapshot(db)).toEqual(expected);
      expect(await count(db, 'dropload.orphan')).toBe(0);
      expect(await count(db, 'dropload.reject')).toBe(0);
      expect(Object.values(await fileStates(db))).toEqual(Array(8).fill('loaded'));
      await expectHonestCounts(db);
    }, 300_000);
  }

  it('a child whose wait expired, its parent after, then retry-rejects: the parents-first database', async () => {
    expect(expected).toBeDefined();
    await resetDatabase(FAMILY_TABLES);
    const stateDir = path.join(dir, 'expiry');
    for (const name of PARENTS_FIRST.filter((n) => n !== 'orders' && n !== 'order-lines')) {
      expect((await runOne(stateDir, name, keyOf(name), CONTENT[name])).code).toBe(0);
    }
    // The order lines come before their orders and give up waiting after 2 s.
    const key = 'incoming/order-lines-strict/order-lines.csv';
    const strict = await runners.start({
      stateDir,
      freshQueues: true,
      waitRetry: { lostAfterSeconds: 1, runningForSeconds: 30 },
      sweepEveryMs: 200,
    });
    const first = await runFiles(
      strict,
      [await runners.upload(dir, 'order-lines-strict', key, CONTENT['order-lines'])],
      {
        timeoutMs: 60_000,
        rejectsShown: 100,
      },
    );
    expect([first.reports.map(row), runExitCode(first.reports, first.timedOut)]).toEqual([
      [[key, 'waiting', 12, 0, 0, 12]],
      EXIT_WAITING,
    ]);
    const deadline = Date.now() + 60_000;
    let file = (await filesByKey(strict.deps.db, strict.stack.bucket, [key])).at(-1);
    while (file?.state !== 'loaded' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      file = (await filesByKey(strict.deps.db, strict.stack.bucket, [key])).at(-1);
    }
    expect([
      file?.state,
      file?.rows_read,
      file?.rows_inserted,
      file?.rows_rejected,
      file?.rows_waiting,
    ]).toEqual(['loaded', 12, 0, 12, 0]);
    const rejects = await rejectsOf(strict.deps.db, file?.id ?? 0);
    expect(rejects.map((r) => r.kind)).toEqual(Array(12).fill('orphan'));
    expect(rejects.slice(0, 2).map((r) => [r.line, r.reason])).toEqual([
      [2, 'orphan: no fam.orders row with order_id = 11 (waited 2s)'],
      [3, 'orphan: no fam.orders row with order_id = 12 (waited 2s)'],
    ]);
    expect(await count(strict.deps.db, 'dropload.orphan')).toBe(0);
    await expectHonestCounts(strict.deps.db);
    await runners.stop(strict);

    // The parent arrives: its run loads it and exits 0 (the expired lines wait for nothing).
    const orders = await runOne(stateDir, 'orders', keyOf('orders'), CONTENT.orders);
    expect([orders.code, orders.reports.map(row)]).toEqual([0, [[keyOf('orders'), 'loaded', 6, 6, 0, 0]]]);

    const runner = await runners.start({ stateDir, freshQueues: true });
    const { db } = runner.deps;
    const retried = await retryRejects({ db, config, logger: runner.deps.logger }, key);
    expect([retried.loaded, retried.stillRejected]).toEqual([12, 0]);
    await expectHonestCounts(db);
    expect(await snapshot(db)).toEqual(expected);
    expect(await count(db, 'dropload.orphan')).toBe(0);
    expect(Object.values(await fileStates(db))).toEqual(Array(8).fill('loaded'));
  }, 300_000);
});

const FAMILY_CONFIG = 'test/support/family.config.ts';

/**
 * One `dropload dev` (its own state folder and ports) and what an operator uses beside it: an S3
 * client to drop files, and the CLI (`wait`, `status`, `retry-rejects`) on dev's database.
 */
async function startFamilyDev() {
  const stateDir = await mkdtemp(path.join(dir, 'dev-'));
  const port = await freePortPair();
  const databaseUrl = postgres ?? `postgres://postgres@127.0.0.1:${port + 1}/postgres`;
  const dev = startDev(FAMILY_CONFIG, ['--port', String(port), '--state-dir', stateDir], {
    DATABASE_URL: postgres,
  });
  await dev.waitFor('status --watch');
  const s3 = devS3(`http://127.0.0.1:${port}`);
  const env = { DATABASE_URL: databaseUrl };
  const run = (...args: string[]) => cli(FAMILY_CONFIG, args, env);
  /** `dropload wait KEY… --json`: the exit code and each file's key and state. */
  const wait = async (keys: string[]) => {
    const { code, stdout, stderr } = await run('wait', ...keys, '--json', '--timeout', '120');
    if (!stdout) throw new Error(`wait printed nothing (exit ${code}): ${stderr}`);
    const { files } = JSON.parse(stdout) as { files: FileReport[] };
    return { code, states: Object.fromEntries(files.map((f) => [f.key, f.state])), files };
  };
  const ledger = () => createDb(createPool({ connectionString: databaseUrl, poolMax: 1 }));
  return { dev, s3, run, wait, ledger };
}

type FamilyDev = Awaited<ReturnType<typeof startFamilyDev>>;

/**
 * Drops one file into `dev` and waits as an operator would: `wait` on it (its exit code: 0 loaded, 3
 * waiting for a parent), then `wait` on every file dropped so far until each is loaded exactly when
 * every file its rows name a row of came (a parent's commit wakes its children a moment later).
 */
async function dropIntoDev(d: FamilyDev, name: Name, dropped: Name[]): Promise<number> {
  await dropInto(d.s3, keyOf(name), CONTENT[name]);
  // `received`, or `resumed` when it landed before dev's first look at the bucket (backfill --resume).
  await d.dev.waitFor(`s3://${DEV_BUCKET}/${keyOf(name)}`);
  const { code } = await d.wait([keyOf(name)]);
  const loadable = (n: Name) => ANCESTORS[n].every((a) => dropped.includes(a));
  const want = Object.fromEntries(
    [...dropped].sort().map((n) => [keyOf(n), loadable(n) ? 'loaded' : 'waiting']),
  );
  let states: Record<string, string> = {};
  const deadline = Date.now() + 60_000;
  do {
    ({ states } = await d.wait(dropped.map(keyOf)));
    if (JSON.stringify(Object.entries(states).sort()) === JSON.stringify(Object.entries(want))) break;
    await new Promise((r) => setTimeout(r, 200));
  } while (Date.now() < deadline);
  expect({ after: name, states: Object.fromEntries(Object.entries(states).sort()) }).toEqual({
    after: name,
    states: want,
  });
  return code;
}

/** The database `dev` ended with is the parents-first one: nothing waits (and, unless some expired, no reject). */
async function expectParentsFirstDatabase(d: FamilyDev, rejects: 'none' | 'retried') {
  const db = d.ledger();
  try {
    expect(await snapshot(db)).toEqual(expected);
    expect(await count(db, 'dropload.orphan')).toBe(0);
    if (rejects === 'none') expect(await count(db, 'dropload.reject')).toBe(0);
    expect(Object.values(await fileStates(db))).toEqual(Array(8).fill('loaded'));
    await expectHonestCounts(db);
  } finally {
    await db.destroy();
  }
}

describe('an eight-file family through `dropload dev`, one process per order, files dropped one by one', () => {
  afterEach(stopAllDevs);

  for (const [label, order] of Object.entries(ORDERS)) {
    it(`${label}: each wait exits as documented, exactly the parents-first database, nothing waiting`, async () => {
      expect(expected).toBeDefined();
      await resetDatabase(FAMILY_TABLES);
      const d = await startFamilyDev();
      const dropped: Name[] = [];
      const codes: [Name, number][] = [];
      const expectedCodes: [Name, number][] = [];
      for (const name of order) {
        dropped.push(name);
        codes.push([name, await dropIntoDev(d, name, dropped)]);
        expectedCodes.push([name, ANCESTORS[name].every((a) => dropped.includes(a)) ? 0 : EXIT_WAITING]);
      }
      expect(codes).toEqual(expectedCodes);
      await expectParentsFirstDatabase(d, 'none');
      await stopDev(d.dev, 'SIGTERM');
      expect(await d.dev.exited).toBe(0);
    }, 300_000);
  }

  it('a child whose wait expired, its parent after, then retry-rejects: the parents-first database', async () => {
    expect(expected).toBeDefined();
    await resetDatabase(FAMILY_TABLES);
    const d = await startFamilyDev();
    const dropped: Name[] = [];
    for (const name of PARENTS_FIRST.filter((n) => n !== 'orders' && n !== 'order-lines')) {
      dropped.push(name);
      expect([name, await dropIntoDev(d, name, dropped)]).toEqual([name, 0]);
    }
    // The order lines come before their orders and give up waiting after 2 s.
    const key = 'incoming/order-lines-strict/order-lines.csv';
    await dropInto(d.s3, key, CONTENT['order-lines']);
    const first = await d.wait([key]);
    expect([first.code, first.files.map(row)]).toEqual([EXIT_WAITING, [[key, 'waiting', 12, 0, 0, 12]]]);
    let expired = first;
    const deadline = Date.now() + 60_000;
    while (expired.states[key] !== 'loaded' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      expired = await d.wait([key]);
    }
    // Rejected rows are in the report, not a failure: exit 0.
    expect([expired.code, expired.files.map(row)]).toEqual([0, [[key, 'loaded', 12, 0, 12, 0]]]);
    expect(expired.files[0]?.rejects.slice(0, 2).map((r) => [r.line, r.reason])).toEqual([
      [2, 'orphan: no fam.orders row with order_id = 11 (waited 2s)'],
      [3, 'orphan: no fam.orders row with order_id = 12 (waited 2s)'],
    ]);

    // The parent arrives: it loads (wait exits 0); the expired lines wait for nothing.
    dropped.push('orders');
    expect(await dropIntoDev(d, 'orders', dropped)).toBe(0);
    const retried = await d.run('retry-rejects', key);
    expect([retried.code, retried.stdout.split('\n')[0]]).toEqual([
      0,
      `${key}: retried 12, loaded 12 (inserted 12, updated 0, unchanged 0), still rejected 0`,
    ]);
    await expectParentsFirstDatabase(d, 'retried');
    await stopDev(d.dev, 'SIGTERM');
    expect(await d.dev.exited).toBe(0);
  }, 300_000);
});
