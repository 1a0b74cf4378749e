import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  PurgeQueueCommand,
  ReceiveMessageCommand,
} from '@aws-sdk/client-sqs';
import { integer } from 'dropload';
import { type Kysely, sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { FileReport } from '../../cli/report.ts';
import { renderReports } from '../../cli/report.ts';
import { EXIT_WAITING, runExitCode, runFiles } from '../../cli/run.ts';
import { toRecord } from '../../local/event-source.ts';
import type { LocalPipeline } from '../../local/local-pipeline.ts';
import { type ResolvedConfig, resolveConfig } from '../../shared/config/config.ts';
import { createDb, createPool } from '../../shared/ledger/connection.ts';
import { filesByKey, rejectsOf } from '../../shared/ledger/ledger.ts';
import { ledgerMigrator } from '../../shared/ledger/migrate.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { retrySoon } from '../../shared/ledger/waiting.ts';
import { handleLoadMessage, parseLoadMessage } from '../../shared/load/load-message.ts';
import { wakeWaiting } from '../../shared/load/retry-chain.ts';
import { backfill } from '../../shared/ops/backfill.ts';
import { retryRejects } from '../../shared/ops/retry-rejects.ts';
import { wakeAfterLateRows } from '../../shared/ops/retry-waiting.ts';
import type { PipelineDeps } from '../../shared/pipeline/services.ts';
import { splitObject } from '../../shared/split/split-service.ts';
import { expectHonestCounts } from '../support/counts.ts';
import { resetDatabase } from '../support/pipeline.ts';
import { fileOf, localRunners, waitFor } from '../support/runners.ts';
import waitingConfig, {
  NW_TABLES,
  regions,
  territories as territoriesDataset,
} from '../support/waiting.config.ts';

/**
 * Waiting is the ledger's (issue 12): rows whose parent rows have not landed wait in dropload.orphan
 * with the table they wait on; a commit into that table wakes them; a sweep re-drives waits whose
 * retry message was lost; `run` ends with `waiting` (exit 3) instead of timing out. Run on Postgres
 * (DATABASE_URL) and on the embedded PGlite (two runners over one database need its data on disk).
 */

const postgres = process.env.DATABASE_URL;
const config: ResolvedConfig = resolveConfig(waitingConfig, 'test/support/waiting.config.ts');
const REGION_NAMES = ['Eastern', 'Western', 'Northern', 'Southern'];

const territoriesCsv = (prefix = 'T') => {
  const lines = ['territory_id,name,region_id'];
  for (let i = 1; i <= 53; i++)
    lines.push(`${prefix}${String(i).padStart(2, '0')},Territory ${i},${(i % 4) + 1}`);
  return `${lines.join('\n')}\n`;
};
/** Regions 1–4, then `extra` more (a file of several chunks). */
const regionsCsv = (extra = 0) => {
  const lines = ['region_id,name', ...REGION_NAMES.map((n, i) => `${i + 1},${n}`)];
  for (let i = 5; i <= 4 + extra; i++)
    lines.push(`${i},Region number ${i} with a longer name to fill chunks`);
  return `${lines.join('\n')}\n`;
};

let dir: string;
const runners = localRunners(config, NW_TABLES);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dropload-waiting-'));
});
afterEach(async () => {
  await runners.stopAll();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function count(db: Kysely<Database>, table: 'dropload.orphan' | 'nw.territories' | 'nw.regions') {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from ${sql.table(table)}`.execute(db);
  return rows[0]?.n;
}

async function receiptOf(runner: LocalPipeline, key: string): Promise<Record<string, unknown>> {
  const res = await runner.stack.s3.send(
    new GetObjectCommand({ Bucket: runner.stack.bucket, Key: `reports/${key}.json` }),
  );
  return JSON.parse((await res.Body?.transformToString()) ?? '{}');
}

/** Territories with their region's natural key, as the file named it. */
async function territoryRegions(db: Kysely<Database>) {
  const { rows } = await sql<{ territory_id: string; region_id: number }>`select t.territory_id, r.region_id
    from nw.territories t join nw.regions r on r.id = t.region_ref order by t.territory_id`.execute(db);
  return rows;
}

const expectedTerritories = (prefix = 'T') =>
  Array.from({ length: 53 }, (_, k) => ({
    territory_id: `${prefix}${String(k + 1).padStart(2, '0')}`,
    region_id: ((k + 1) % 4) + 1,
  }));

/** Regions written straight into the table, as another tool would: no commit of dropload's wakes anyone. */
async function insertRegionsBehindDroploadsBack(db: Kysely<Database>) {
  for (const [i, name] of REGION_NAMES.entries())
    await sql`insert into nw.regions (region_id, name) values (${i + 1}, ${name})`.execute(db);
}

/** key, state, read, loaded, rejected, records waiting (the ledger's counter) */
const row = (r: FileReport) => [r.key, r.state, r.rows.read, r.rows.loaded, r.rows.rejected, r.rows.waiting];

describe('the migration', () => {
  it('reads what rows parked before it wait for from their reason, and makes their files `waiting`', async () => {
    const runner = await runners.start({
      fresh: true,
      stateDir: path.join(dir, 'migration'),
      sweepEveryMs: 0,
    });
    const { db } = runner.deps;
    const migrator = ledgerMigrator(db);
    const down = await migrator.migrateTo('20261220090000_reject_kind');
    // Later ledger migrations are undone first; this one is the last undone.
    expect([down.error, down.results?.at(-1)?.migrationName]).toEqual([undefined, '20261221090000_waiting']);
    expect(down.results?.every((r) => r.status === 'Success')).toBe(true);
    const { rows } = await sql<{ id: number }>`insert into dropload.file
        (bucket, key, version_id, etag, size, dataset, state, chunk_count, chunks_done, updated_at)
      values ('dropload-local', 'incoming/territories/old.csv', '', 'e', 1, 'territories', 'loading', 2, 2, now()),
        ('dropload-local', 'incoming/territories/half.csv', '', 'e', 1, 'territories', 'loading', 2, 1, now())
      returning id::int as id`.execute(db);
    const [done, half] = rows.map((r) => r.id);
    for (const [fileId, missing] of [
      [done, 'shop.customers row with email = x@y; shop.products row with sku = A-1'],
      [done, 'customers row with customer_id = 7 and region = 2'],
      [half, 'nw.regions row with region_id = 3'],
    ] as const) {
      await sql`insert into dropload.orphan (file_id, chunk_idx, line, target, row, missing, raw, expires_at)
        values (${fileId}, 0, 2, 't', '{}', ${missing}, 'raw', now() + interval '1 hour')`.execute(db);
    }
    const up = await migrator.migrateToLatest();
    expect([up.error, up.results?.[0]?.migrationName]).toEqual([undefined, '20261221090000_waiting']);
    expect(up.results?.every((r) => r.status === 'Success')).toBe(true);
    const parked = await sql<{ parent_table: string; parent_key: string }>`select parent_table, parent_key
      from dropload.orphan order by id`.execute(db);
    expect(parked.rows).toEqual([
      { parent_table: 'shop.customers', parent_key: 'email' },
      { parent_table: 'public.customers', parent_key: 'customer_id, region' },
      { parent_table: 'nw.regions', parent_key: 'region_id' },
    ]);
    // Chunks all done with rows waiting: `waiting`; chunks still to load: `loading`.
    const states = await sql<{ id: number; state: string }>`select id::int as id, state from dropload.file
      order by id`.execute(db);
    expect(states.rows).toEqual([
      { id: done, state: 'waiting' },
      { id: half, state: 'loading' },
    ]);
  });
});

describe("run's report on a file an earlier run registered", () => {
  it('a file an earlier run left loading is resumed, not called already loaded; loaded once, it is', async () => {
    const stateDir = path.join(dir, 'resumed-run');
    const first = await runners.start({ fresh: true, stateDir });
    const regions = await runners.upload(dir, 'regions', 'incoming/regions/resumed.csv', regionsCsv());
    await runFiles(first, [regions], { timeoutMs: 60_000, rejectsShown: 0 });
    // As `kill -9` of a run mid-file leaves it: registered and split, no chunk loaded, its messages gone.
    const { db } = first.deps;
    const file = await fileOf(db, regions.key);
    await sql`delete from nw.regions`.execute(db);
    await sql`update dropload.chunk set state = 'pending', loaded_at = null where file_id = ${file.id}`.execute(
      db,
    );
    await sql`update dropload.file set state = 'loading', chunks_done = 0, rows_read = 0, rows_inserted = 0,
      finished_at = null, created_at = created_at - interval '1 minute' where id = ${file.id}`.execute(db);
    const registered = (await fileOf(db, regions.key)).created_at;
    await runners.stop(first);

    const second = await runners.start({ stateDir, freshQueues: true });
    const resumed = await runFiles(second, [regions], { timeoutMs: 60_000, rejectsShown: 0 });
    expect(resumed.reports.map(row)).toEqual([['incoming/regions/resumed.csv', 'loaded', 4, 4, 0, 0]]);
    expect(resumed.reports[0]?.note).toBe(
      `registered by an earlier run at ${registered.toISOString()}, which did not finish it; this run did`,
    );
    // Announced again while loading: its work had stopped, and this run resumed it.
    expect(resumed.reports[0]?.resumed?.times).toBe(1);
    const again = await runFiles(second, [regions], { timeoutMs: 60_000, rejectsShown: 0 });
    const loadedAt = (await fileOf(second.deps.db, regions.key)).finished_at as Date;
    expect(again.reports[0]?.note).toBe(
      `this exact version was already loaded at ${new Date(loadedAt).toISOString()}; nothing was loaded again (the counts are that load's)`,
    );
    // A loaded file announced again is no resume.
    expect(again.reports[0]?.resumed?.times).toBe(1);
    expect(await count(second.deps.db, 'nw.regions')).toBe(4);
  });
});

describe('files in any order, over two runs (the reported case)', () => {
  it('children first: the run ends `waiting` (exit 3) and says what for; the next run loads the parents and them', async () => {
    const stateDir = path.join(dir, 'two-runs');
    const first = await runners.start({ fresh: true, stateDir });
    const territories = await runners.upload(
      dir,
      'territories',
      'incoming/territories/territories.csv',
      territoriesCsv(),
    );
    const one = await runFiles(first, [territories], { timeoutMs: 60_000, rejectsShown: 10 });
    expect(one.timedOut).toBe(false);
    expect(one.reports.map(row)).toEqual([['incoming/territories/territories.csv', 'waiting', 53, 0, 0, 53]]);
    expect(one.reports[0]?.waiting).toEqual({
      rows: 53,
      lines: 53,
      on: [{ table: 'nw.regions', key: 'region_id', rows: 53 }],
    });
    expect(runExitCode(one.reports, one.timedOut)).toBe(EXIT_WAITING);
    expect(renderReports(one.reports)).toContain(
      'incoming/territories/territories.csv: waiting: 53 rows wait for nw.regions (region_id)',
    );
    expect(await receiptOf(first, 'incoming/territories/territories.csv')).toMatchObject({
      state: 'waiting',
      finishedAt: null,
      waiting: { rows: 53, lines: 53, on: [{ table: 'nw.regions', key: 'region_id', rows: 53 }] },
      // Not loaded: waiting, counted apart.
      rows: { read: 53, inserted: 0, updated: 0, unchanged: 0, waiting: 53, rejected: 0 },
    });
    await expectHonestCounts(first.deps.db);
    // The first runner ends, and its emulator with every message in it.
    await runners.stop(first);

    const second = await runners.start({ stateDir, freshQueues: true });
    const regions = await runners.upload(dir, 'regions', 'incoming/regions/regions.csv', regionsCsv());
    const two = await runFiles(second, [regions], { timeoutMs: 60_000, rejectsShown: 10 });
    expect(two.timedOut).toBe(false);
    // The parents, and the children waiting since the first run, which loaded in this one.
    expect(two.reports.map(row)).toEqual([
      ['incoming/regions/regions.csv', 'loaded', 4, 4, 0, 0],
      ['incoming/territories/territories.csv', 'loaded', 53, 53, 0, 0],
    ]);
    expect(two.reports[1]?.note).toBe('its rows were waiting before this run; they finished during it');
    expect(runExitCode(two.reports, two.timedOut)).toBe(0);
    const { db } = second.deps;
    expect(await count(db, 'dropload.orphan')).toBe(0);
    expect(await count(db, 'nw.regions')).toBe(4);
    expect(await territoryRegions(db)).toEqual(expectedTerritories());
    expect(await receiptOf(second, 'incoming/territories/territories.csv')).toMatchObject({
      state: 'loaded',
      waiting: null,
      rows: { read: 53, inserted: 53, updated: 0, unchanged: 0, waiting: 0, rejected: 0 },
    });
    await expectHonestCounts(db);
    const file = await fileOf(db, 'incoming/territories/territories.csv');
    expect([file.state, file.rows_read, file.rows_inserted, file.rows_rejected, file.error]).toEqual([
      'loaded',
      53,
      53,
      0,
      null,
    ]);
  });
});

/**
 * Holds the file's waiting rows locked as a retry does (`for update`), in a transaction of its own,
 * until `release` is called: a retry running at the moment a parent commits, which read before it.
 */
async function holdWaitingRows(url: string, fileId: number) {
  const db = createDb(createPool({ connectionString: url, poolMax: 1 }));
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let locked = () => {};
  const held = new Promise<void>((resolve) => {
    locked = resolve;
  });
  const done = db.transaction().execute(async (trx) => {
    await sql`select id from dropload.orphan where file_id = ${fileId} for update`.execute(trx);
    locked();
    await released;
  });
  await held;
  return {
    release: async () => {
      release();
      await done;
      await db.destroy();
    },
  };
}

describe('a retry holding the waiting rows when their parents commit (issue 12: a later run)', () => {
  it.runIf(postgres)(
    'the next run still loads them: a retry that finds the rows held comes back within a second',
    async () => {
      const stateDir = path.join(dir, 'held');
      const first = await runners.start({ fresh: true, stateDir });
      const key = 'incoming/territories/held.csv';
      const territories = await runners.upload(dir, 'territories', key, territoriesCsv('H'));
      const one = await runFiles(first, [territories], { timeoutMs: 60_000, rejectsShown: 10 });
      expect(one.reports.map(row)).toEqual([[key, 'waiting', 53, 0, 0, 53]]);
      const waitingFile = await fileOf(first.deps.db, key);
      await runners.stop(first);

      // Another retry (of a `run` at once, or this run's own that read before the parents) holds the rows.
      const holder = await holdWaitingRows(postgres as string, waitingFile.id);
      const second = await runners.start({ stateDir, freshQueues: true });
      const regions = await runners.upload(dir, 'regions', 'incoming/regions/held.csv', regionsCsv());
      const running = runFiles(second, [regions], { timeoutMs: 60_000, rejectsShown: 10 });
      // The parents commit (their wake finds the rows held), then the holder lets go.
      await waitFor('the regions loaded', async () => {
        const file = (
          await filesByKey(second.deps.db, second.stack.bucket, ['incoming/regions/held.csv'])
        )[0];
        return file?.state === 'loaded' ? file : undefined;
      });
      await new Promise((r) => setTimeout(r, 1500));
      await holder.release();
      const two = await running;
      expect(two.timedOut).toBe(false);
      expect(two.reports.map(row)).toEqual([
        ['incoming/regions/held.csv', 'loaded', 4, 4, 0, 0],
        [key, 'loaded', 53, 53, 0, 0],
      ]);
      expect(two.reports[1]?.note).toBe('its rows were waiting before this run; they finished during it');
      expect(runExitCode(two.reports, two.timedOut)).toBe(0);
      expect(await count(second.deps.db, 'dropload.orphan')).toBe(0);
      await expectHonestCounts(second.deps.db);
    },
  );
});

/** `dropload` as a user runs it, in a child process, on the test config. */
const run = promisify(execFile);
const cli = (args: string[]) =>
  run(
    path.resolve('node_modules/.bin/node'),
    ['cli/dropload.ts', '--config', 'test/support/waiting.config.ts', ...args],
    {
      env: { ...process.env, AWS_ENDPOINT_URL: undefined },
    },
  ).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );

describe('the commands (a database that outlives them: DATABASE_URL)', () => {
  it.runIf(postgres)(
    '`run` children first exits 3 with the waiting line; `run` of the parents then loads both',
    async () => {
      await resetDatabase(NW_TABLES);
      const territories = await runners.upload(
        dir,
        'territories',
        'incoming/territories/cli.csv',
        territoriesCsv('C'),
      );
      const one = await cli(['run', territories.path, '--dataset', 'territories']);
      expect([one.code, one.stderr]).toEqual([3, '']);
      expect(one.stdout).toContain('waiting: 53 rows wait for nw.regions (region_id)');
      const line = one.stdout.split('\n').find((l) => l.startsWith('incoming/territories/cli.csv '));
      // file, dataset, state, chunks, read, loaded, waiting, rejected (seconds vary)
      expect(line?.split(/\s+/).slice(0, 8)).toEqual([
        'incoming/territories/cli.csv',
        'territories',
        'waiting',
        '1/1',
        '53',
        '0',
        '53',
        '0',
      ]);
      // The reported case: `status --json` called waiting rows loaded (and unchanged).
      const waitingStatus = await cli(['status', '--json']);
      const waitingFiles = (JSON.parse(waitingStatus.stdout) as { files: FileReport[] }).files;
      expect(waitingFiles.map((f) => [f.key, f.state, f.rows])).toEqual([
        [
          'incoming/territories/cli.csv',
          'waiting',
          { read: 53, loaded: 0, inserted: 0, updated: 0, unchanged: 0, waiting: 53, rejected: 0, open: 0 },
        ],
      ]);

      const regions = await runners.upload(dir, 'regions', 'incoming/regions/cli.csv', regionsCsv());
      const two = await cli(['run', regions.path, '--dataset', 'regions', '--json']);
      expect(two.code).toBe(0);
      const { files } = JSON.parse(two.stdout) as { files: FileReport[] };
      expect(files.map(row)).toEqual([
        ['incoming/regions/cli.csv', 'loaded', 4, 4, 0, 0],
        ['incoming/territories/cli.csv', 'loaded', 53, 53, 0, 0],
      ]);
      const status = await cli(['status', '--json']);
      const listed = (JSON.parse(status.stdout) as { files: FileReport[] }).files;
      expect(listed.map((f) => [f.key, f.state])).toEqual([
        ['incoming/regions/cli.csv', 'loaded'],
        ['incoming/territories/cli.csv', 'loaded'],
      ]);
    },
  );

  it.runIf(postgres)(
    '`retry-waiting` (no queue named: it runs the retry itself) loads rows whose parents came in by another way',
    async () => {
      await resetDatabase(NW_TABLES);
      const territories = await runners.upload(
        dir,
        'territories',
        'incoming/territories/now.csv',
        territoriesCsv('N'),
      );
      expect((await cli(['run', territories.path, '--dataset', 'territories'])).code).toBe(3);
      const nothing = await cli(['retry-waiting', 'incoming/regions/none.csv']);
      expect([nothing.code, nothing.stderr]).toEqual([
        2,
        'dropload: no file with key "incoming/regions/none.csv" in the ledger (`dropload status` lists them)\n',
      ]);

      const before = await cli(['status']);
      expect(before.stdout).toContain(
        'incoming/territories/now.csv: waiting: 53 rows wait for nw.regions (region_id)',
      );
      const { createDb, createPool } = await import('../../shared/ledger/connection.ts');
      const db = createDb(createPool({ connectionString: postgres ?? '', poolMax: 1 }));
      try {
        await insertRegionsBehindDroploadsBack(db);
        const retried = await cli(['retry-waiting', '--json']);
        expect(retried.code).toBe(0);
        const out = JSON.parse(retried.stdout) as {
          mode: string;
          files: { key: string; enqueued: boolean; before: { state: string }; after: FileReport }[];
        };
        expect(out.mode).toBe('performed');
        expect(
          out.files.map((f) => [f.key, f.enqueued, f.before.state, f.after.state, f.after.rows.loaded]),
        ).toEqual([['incoming/territories/now.csv', true, 'waiting', 'loaded', 53]]);
        expect(await count(db, 'nw.territories')).toBe(53);
        expect(await count(db, 'dropload.orphan')).toBe(0);
        const again = await cli(['retry-waiting']);
        expect(again.stdout).toBe('no rows wait\n');
      } finally {
        await db.destroy();
      }
    },
  );
});

/** Until the file's rows wait with no handler running and its chain's next retry at least 0.5 s off. */
async function chainDelayed(runner: LocalPipeline, key: string) {
  return waitFor(`${key} to wait with a delayed retry`, async () => {
    const { rows } = await sql<{ id: number }>`select id::int as id from dropload.file
      where key = ${key} and state = 'waiting' and retry_started_at is null
      and retry_due > now() + interval '0.5 seconds'`.execute(runner.deps.db);
    return rows[0] && runner.busy() === 0 ? rows[0].id : undefined;
  });
}

async function purgeChunks(runner: LocalPipeline) {
  await runner.stack.sqs.send(new PurgeQueueCommand({ QueueUrl: runner.stack.chunks.url }));
  const attrs = await runner.stack.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: runner.stack.chunks.url, AttributeNames: ['All'] }),
  );
  const left = [
    'ApproximateNumberOfMessages',
    'ApproximateNumberOfMessagesNotVisible',
    'ApproximateNumberOfMessagesDelayed',
  ] as const;
  expect(left.map((a) => attrs.Attributes?.[a])).toEqual(['0', '0', '0']);
}

/** Chains count as lost one second past due; the sweep looks every 200 ms. */
const QUICK_SWEEP = { waitRetry: { lostAfterSeconds: 1, runningForSeconds: 30 }, sweepEveryMs: 200 };

describe('the sweep', () => {
  it('every retry message lost mid-wait (a purged queue): the sweep re-drives the wait, which ends exact', async () => {
    const runner = await runners.start({ fresh: true, stateDir: path.join(dir, 'purge'), ...QUICK_SWEEP });
    const key = 'incoming/territories/purged.csv';
    const drop = await runners.upload(dir, 'territories', key, territoriesCsv('P'));
    await runner.upload(drop.path, drop.key);
    await chainDelayed(runner, key);
    await purgeChunks(runner);
    // The parents come in behind dropload's back: nothing wakes the territories; only a retry loads them.
    await insertRegionsBehindDroploadsBack(runner.deps.db);
    const file = await waitFor('the territories to load', async () => {
      const f = await fileOf(runner.deps.db, key);
      return f.state === 'loaded' ? f : undefined;
    });
    expect([file.rows_read, file.rows_inserted, file.rows_rejected]).toEqual([53, 53, 0]);
    expect(await territoryRegions(runner.deps.db)).toEqual(expectedTerritories('P'));
    expect(await count(runner.deps.db, 'dropload.orphan')).toBe(0);
    expect([file.rows_unchanged, file.rows_waiting]).toEqual([0, 0]);
    await expectHonestCounts(runner.deps.db);
  });

  it('a wait past orphanWaitSeconds with no message in flight becomes rejects naming the missing key', async () => {
    const runner = await runners.start({ fresh: true, stateDir: path.join(dir, 'expiry'), ...QUICK_SWEEP });
    const key = 'incoming/territories-strict/expired.csv';
    const drop = await runners.upload(dir, 'territories-strict', key, territoriesCsv('X'));
    await runner.upload(drop.path, drop.key);
    await chainDelayed(runner, key);
    await purgeChunks(runner);
    const file = await waitFor('the wait to expire', async () => {
      const f = await fileOf(runner.deps.db, key);
      return f.state === 'loaded' ? f : undefined;
    });
    expect([file.rows_read, file.rows_inserted, file.rows_rejected]).toEqual([53, 0, 53]);
    const rejects = await rejectsOf(runner.deps.db, file.id);
    expect(rejects).toHaveLength(53);
    expect(rejects.slice(0, 2).map((r) => [r.line, r.column, r.reason, r.raw])).toEqual([
      [2, 'region_ref', 'orphan: no nw.regions row with region_id = 2 (waited 2s)', 'X01,Territory 1,2'],
      [3, 'region_ref', 'orphan: no nw.regions row with region_id = 3 (waited 2s)', 'X02,Territory 2,3'],
    ]);
    expect(await count(runner.deps.db, 'dropload.orphan')).toBe(0);
    expect(await count(runner.deps.db, 'nw.territories')).toBe(0);
    // Expired: they leave `waiting` for `rejected`, on the file and its chunk.
    expect([file.rows_unchanged, file.rows_waiting]).toEqual([0, 0]);
    await expectHonestCounts(runner.deps.db);
  });

  it('a waiting file whose dataset left the config: noted on the file, retried every 15 min, nothing dead-lettered', async () => {
    const runner = await runners.start({ fresh: true, stateDir: path.join(dir, 'gone'), ...QUICK_SWEEP });
    const { db } = runner.deps;
    const { rows } = await sql<{ id: number }>`insert into dropload.file
        (bucket, key, version_id, etag, size, dataset, state, chunk_count, chunks_done, updated_at)
      values ('dropload-local', 'incoming/gone/x.csv', '', 'e', 1, 'gone', 'waiting', 1, 1, now())
      returning id::int as id`.execute(db);
    await sql`insert into dropload.orphan (file_id, chunk_idx, line, target, row, missing, parent_table, parent_key, raw, expires_at)
      values (${rows[0]?.id}, 0, 2, 'gone.t', '{}', 'nw.regions row with region_id = 9', 'nw.regions', 'region_id',
        'raw', now() + interval '1 hour')`.execute(db);
    const file = await waitFor('the retry to note why it cannot run', async () => {
      const { rows: found } = await sql<{ error: string | null; due_in: number | null; state: string }>`
        select error, state, extract(epoch from retry_due - now())::int as due_in from dropload.file
        where key = 'incoming/gone/x.csv' and retry_due > now() + interval '10 minutes'`.execute(db);
      return found[0];
    });
    expect(file.state).toBe('waiting');
    expect(file.error).toBe('its waiting rows cannot be retried: dataset "gone" is not in this config');
    expect(file.due_in).toBeGreaterThan(890);
    const dlq = await runner.stack.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: runner.stack.chunks.dlqUrl, AttributeNames: ['All'] }),
    );
    expect(dlq.Attributes?.ApproximateNumberOfMessages).toBe('0');
    expect(await count(db, 'dropload.orphan')).toBe(1);
  });

  it('`backfill --resume` re-drives waiting rows whose messages were lost', async () => {
    // No sweep here: only the backfill can re-drive.
    const runner = await runners.start({ fresh: true, stateDir: path.join(dir, 'resume'), sweepEveryMs: 0 });
    const key = 'incoming/territories/resumed.csv';
    const drop = await runners.upload(dir, 'territories', key, territoriesCsv('R'));
    await runner.upload(drop.path, drop.key);
    await chainDelayed(runner, key);
    await purgeChunks(runner);
    await insertRegionsBehindDroploadsBack(runner.deps.db);
    const { stack } = runner;
    const result = await backfill(
      { ...stack, logger: runner.deps.logger },
      {
        bucket: stack.bucket,
        ingestQueueUrl: stack.ingest.url,
        chunkQueueUrl: stack.chunks.url,
        datasetPrefixes: config.datasets.map((d) => d.prefix),
        resume: true,
      },
    );
    expect(result.redriven.map((f) => f.key)).toEqual([key]);
    const file = await waitFor('the territories to load', async () => {
      const f = await fileOf(runner.deps.db, key);
      return f.state === 'loaded' ? f : undefined;
    });
    expect([file.rows_read, file.rows_inserted, file.rows_rejected]).toEqual([53, 53, 0]);
    expect(await territoryRegions(runner.deps.db)).toEqual(expectedTerritories('R'));
  });
});

describe('rows loaded late by retry-rejects', () => {
  it('wake the files whose rows wait on them', async () => {
    const runner = await runners.start({ fresh: true, stateDir: path.join(dir, 'late'), sweepEveryMs: 0 });
    const { db } = runner.deps;
    const key = 'incoming/regions/short.csv';
    // Region 1's name is too short for the schema: rejected; the territories of region 1 wait for it.
    const short = regionsCsv().replace('1,Eastern', '1,EA');
    await runFiles(runner, [await runners.upload(dir, 'regions', key, short)], {
      timeoutMs: 60_000,
      rejectsShown: 0,
    });
    const territories = await runners.upload(
      dir,
      'territories',
      'incoming/territories/late.csv',
      territoriesCsv('L'),
    );
    const ran = await runFiles(runner, [territories], { timeoutMs: 60_000, rejectsShown: 0 });
    expect(ran.reports.map(row)).toEqual([['incoming/territories/late.csv', 'waiting', 53, 40, 0, 13]]);
    // Their retry chain is lost (and no sweep runs): only a wake can load them now.
    await chainDelayed(runner, 'incoming/territories/late.csv');
    await purgeChunks(runner);

    // The schema is relaxed; retry-rejects loads region 1, and the territories waiting on it are retried now.
    const lax = resolveConfig(
      {
        ...waitingConfig,
        datasets: [
          { ...regions, schema: z.object({ region_id: integer(), name: z.string().min(1) }) },
          territoriesDataset,
        ],
      },
      'lax config',
    );
    const retried = await retryRejects({ db, config: lax, logger: runner.deps.logger }, key);
    // retry-rejects moves counters too: the identity still holds.
    await expectHonestCounts(db);
    expect([retried.loaded, retried.stillRejected]).toEqual([1, 0]);
    expect(await wakeAfterLateRows(runner.deps, lax, retried.fileId)).toBe(1);
    const file = await waitFor('the territories to load', async () => {
      const f = await fileOf(db, 'incoming/territories/late.csv');
      return f.state === 'loaded' ? f : undefined;
    });
    expect([file.rows_read, file.rows_inserted, file.rows_rejected]).toEqual([53, 53, 0]);
    expect(await territoryRegions(db)).toEqual(expectedTerritories('L'));
  });
});

describe('wakes are bounded', () => {
  let runner: LocalPipeline;
  let deps: PipelineDeps;

  /** Puts `body` under `key` and splits it, as an S3 event would have it split, onto the test's queue. */
  async function splitInto(s3: S3Client, key: string, body: string) {
    const put = await s3.send(new PutObjectCommand({ Bucket: runner.stack.bucket, Key: key, Body: body }));
    return splitObject(deps, { bucket: runner.stack.bucket, key, etag: put.ETag?.replace(/"/g, '') });
  }

  async function receive(waitSeconds = 1): Promise<Message[]> {
    const res = await runner.stack.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: deps.chunkQueueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: waitSeconds,
        MessageSystemAttributeNames: ['All'],
      }),
    );
    return res.Messages ?? [];
  }

  const handle = (m: Message) =>
    handleLoadMessage(deps, toRecord(m, 'arn:test', 'us-east-1'), parseLoadMessage(m.Body ?? ''));

  it('N parent chunks committing while a file waits send it one retry, not N', async () => {
    runner = await runners.start({ fresh: true, stateDir: path.join(dir, 'bounded'), sweepEveryMs: 0 });
    // The stage functions against a queue nobody consumes: every message they send is counted here.
    const queue = await runner.stack.sqs.send(
      new CreateQueueCommand({ QueueName: 'dropload-waiting-count' }),
    );
    deps = { ...runner.deps, chunkQueueUrl: queue.QueueUrl as string };
    const child = await splitInto(runner.stack.s3, 'incoming/territories/bounded.csv', territoriesCsv('B'));
    const [chunk] = await receive();
    expect((await handle(chunk as Message)).kind).toBe('chunk');
    // Its first retry (due in a second) finds no parent; handled as a late attempt, it backs off 15 minutes.
    const [first] = await receive(2);
    const retry = JSON.parse(first?.Body ?? '{}');
    expect(retry).toEqual({ kind: 'orphans', fileId: child.fileId, attempt: 1, token: 1 });
    await handleLoadMessage(
      deps,
      toRecord(first as Message, 'arn:test', 'us-east-1'),
      parseLoadMessage(JSON.stringify({ ...retry, attempt: 10 })),
    );

    await splitInto(runner.stack.s3, 'incoming/regions/bounded.csv', regionsCsv(10_000));
    const chunks = (await fileOf(deps.db, 'incoming/regions/bounded.csv')).chunk_count ?? 0;
    expect(chunks).toBeGreaterThanOrEqual(5);
    const wakes: unknown[] = [];
    let loaded = 0;
    while (loaded < chunks) {
      for (const m of await receive()) {
        const body = JSON.parse(m.Body ?? '{}');
        if (body.kind === 'orphans') wakes.push(body);
        else {
          await handle(m);
          loaded++;
        }
      }
    }
    const { rows } = await sql<{ retry_token: number }>`select retry_token from dropload.file
      where id = ${child.fileId}`.execute(deps.db);
    // One wake for all the parent chunks, carrying the chain's current token; the stale delayed retry is still out.
    expect(wakes).toEqual([
      { kind: 'orphans', fileId: child.fileId, attempt: 1, token: rows[0]?.retry_token },
    ]);
    expect(rows[0]?.retry_token).toBe(3);
    const attrs = await runner.stack.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: deps.chunkQueueUrl, AttributeNames: ['All'] }),
    );
    expect(attrs.Attributes?.ApproximateNumberOfMessagesDelayed).toBe('1');
    expect(attrs.Attributes?.ApproximateNumberOfMessages).toBe('0');

    // That one retry loads them all.
    const wake = await handleLoadMessage(
      deps,
      toRecord({ MessageId: 'w', ReceiptHandle: 'w', Body: '' }, 'arn:test', 'us-east-1'),
      parseLoadMessage(JSON.stringify(wakes[0])),
    );
    expect(
      wake.kind === 'orphans' && [
        wake.outcome.resolved,
        wake.outcome.waiting,
        wake.outcome.finishedFile?.state,
      ],
    ).toEqual([53, 0, 'loaded']);
    expect(await territoryRegions(deps.db)).toEqual(expectedTerritories('B'));
  });

  it('eight commits into the parent table at once wake a waiting file once', async () => {
    runner = await runners.start({ fresh: true, stateDir: path.join(dir, 'racing'), sweepEveryMs: 0 });
    const queue = await runner.stack.sqs.send(new CreateQueueCommand({ QueueName: 'dropload-waiting-race' }));
    deps = { ...runner.deps, chunkQueueUrl: queue.QueueUrl as string };
    // A file whose rows wait on nw.regions, its chain's next retry a quarter hour away.
    const { rows } = await sql<{ id: number }>`insert into dropload.file
        (bucket, key, version_id, etag, size, dataset, state, chunk_count, chunks_done, updated_at)
      values ('dropload-local', 'incoming/territories/race.csv', '', 'e', 1, 'territories', 'waiting', 1, 1, now())
      returning id::int as id`.execute(deps.db);
    const fileId = rows[0]?.id as number;
    await sql`update dropload.file set retry_token = 5, retry_due = now() + interval '15 minutes'
      where id = ${fileId}`.execute(deps.db);
    await sql`insert into dropload.orphan (file_id, chunk_idx, line, target, row, missing, parent_table, parent_key, raw, expires_at)
      select ${fileId}, 0, g, 'nw.territories', '{}', 'nw.regions row with region_id = 1', 'nw.regions', 'region_id',
        'raw', now() + interval '1 hour' from generate_series(2, 54) g`.execute(deps.db);

    const woken = await Promise.all(Array.from({ length: 8 }, () => wakeWaiting(deps, ['nw.regions'])));
    expect(woken.reduce((a, b) => a + b, 0)).toBe(1);
    const messages = await receive();
    expect(messages.map((m) => JSON.parse(m.Body ?? ''))).toEqual([
      { kind: 'orphans', fileId, attempt: 1, token: 6 },
    ]);
  });

  it.runIf(postgres)(
    'a wake whose transaction began before another wake committed sees that one: still one message',
    async () => {
      runner = await runners.start({ fresh: true, sweepEveryMs: 0 });
      const { db } = runner.deps;
      const { rows } = await sql<{ id: number }>`insert into dropload.file
          (bucket, key, version_id, etag, size, dataset, state, chunk_count, chunks_done, updated_at)
        values ('dropload-local', 'incoming/territories/late-wake.csv', '', 'e', 1, 'territories', 'waiting', 1, 1, now())
        returning id::int as id`.execute(db);
      await sql`insert into dropload.orphan (file_id, chunk_idx, line, target, row, missing, parent_table, parent_key, raw, expires_at)
        values (${rows[0]?.id}, 0, 2, 'nw.territories', '{}', 'nw.regions row with region_id = 1', 'nw.regions', 'region_id',
          'raw', now() + interval '1 hour')`.execute(db);
      const times = { lostAfterSeconds: 60, runningForSeconds: 180 };
      const steps = await db.transaction().execute(async (trx) => {
        // This transaction's start: a wake that went by `now()` would compare against this instant.
        await sql`select 1`.execute(trx);
        await new Promise((r) => setTimeout(r, 20));
        const first = await retrySoon(db, { waitingOn: ['nw.regions'] }, 0, times);
        const second = await retrySoon(trx, { waitingOn: ['nw.regions'] }, 0, times);
        return [first, second];
      });
      expect(steps.map((s) => s.length)).toEqual([1, 0]);
    },
  );
});
