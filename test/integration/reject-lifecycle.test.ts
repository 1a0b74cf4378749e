import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Logger } from '@aws-lambda-powertools/logger';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { type Kysely, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type FileReport, statusReports } from '../../cli/report.ts';
import { resolveConfig } from '../../shared/config/config.ts';
import { defineDataset } from '../../shared/config/dataset.ts';
import { decimal, integer } from '../../shared/config/fields.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { listRejects, newestFileByKey, resolveByOperator } from '../../shared/ops/rejects.ts';
import { retryRejects } from '../../shared/ops/retry-rejects.ts';
import { type Receipt, receiptFor } from '../../shared/pipeline/receipts.ts';
import { expectHonestCounts } from '../support/counts.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/**
 * A reject is open until something resolves it: retry-rejects loading it, a newer file of a keyed
 * dataset loading a row with its key, or an operator. Resolved rejects stay, as history.
 */

const tables: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('life_orders')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('amount', 'numeric', (c) => c.notNull())
      .addColumn('color', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('life_notes')
      .addColumn('id', 'integer', (c) => c.notNull())
      .addColumn('note', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('life_people')
      .addColumn('id', 'serial', (c) => c.primaryKey())
      .addColumn('email', 'text', (c) => c.notNull().unique())
      .addColumn('name', 'text', (c) => c.notNull())
      .execute();
  },
};

const orders = (colors: [string, ...string[]]) =>
  defineDataset({
    name: 'life_orders',
    format: 'csv',
    table: 'life_orders',
    mode: 'upsert',
    key: ['id'],
    schema: z.object({
      id: integer(),
      name: z.string().min(1),
      amount: decimal().pipe(z.number().nonnegative()),
      color: z.enum(colors),
    }),
  });
const notes = defineDataset({
  name: 'life_notes',
  format: 'csv',
  table: 'life_notes',
  schema: z.object({ id: integer(), note: z.string().min(1) }),
});
const people = defineDataset({
  name: 'life_people',
  format: 'ndjson',
  targets: [{ table: 'life_people', columns: { email: 'email', name: 'name' }, key: ['email'] }],
  schema: z.object({ email: z.email(), name: z.string().min(1) }),
});
const config = {
  datasets: [orders(['red', 'green']), notes, people],
  migrations: { '20260101000000_life': tables },
};

const logger = new Logger({ serviceName: 'dropload-test', logLevel: 'SILENT' });
let p: TestPipeline;
let db: Kysely<Database>;

beforeAll(async () => {
  p = await startTestPipeline(config, ['life_orders', 'life_notes', 'life_people']);
  db = p.deps.db;
});
afterAll(async () => {
  await p?.stop();
});

const csv = (header: string, lines: string[]) => `${[header, ...lines].join('\n')}\n`;
const ORDERS = 'id,name,amount,color';

/** Each reject of the file as [line, kind, how it resolved, what resolved it]: open ones as 'open'. */
async function lifecycle(key: string) {
  const { rejects } = await listRejects(db, key, { all: true });
  return rejects.map((r) => [r.line, r.kind, r.resolved_by ?? 'open', r.resolution]);
}

const openLines = async (key: string) => (await listRejects(db, key)).rejects.map((r) => r.line);

async function statusOf(key: string): Promise<FileReport['rows'] | undefined> {
  return (await statusReports(db, 50)).find((r) => r.key === key)?.rows;
}

/** The receipt in the bucket once `ready` says it is the one expected (it is written after the ledger moves). */
async function storedReceipt(key: string, ready: (r: Receipt) => boolean): Promise<Receipt | undefined> {
  let last: Receipt | undefined;
  for (let i = 0; i < 100; i++) {
    const res = await p.stack.s3
      .send(new GetObjectCommand({ Bucket: p.stack.bucket, Key: `reports/${key}.json` }))
      .catch(() => undefined);
    last = res ? (JSON.parse((await res.Body?.transformToString()) ?? '{}') as Receipt) : undefined;
    if (last && ready(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  return last;
}

describe('a corrected file of a keyed dataset', () => {
  const A1 = 'incoming/life_orders/a1.csv';
  const A2 = 'incoming/life_orders/a2.csv';
  const B = 'incoming/life_orders/b.csv';

  it('resolves the rejects of earlier files whose keys it loads (the report of issue 12)', async () => {
    const a1 = await p.load(
      A1,
      csv(ORDERS, [
        '1,one,1.00,red',
        '2,two', // ragged: too few fields
        '3,three,3.00,red,extra', // ragged: too many
        '4,,4.00,red', // invalid: no name
        '5,five,-5.00,green', // invalid: negative amount
        '6,six,6.00,green',
      ]),
    );
    expect(a1.reports[0]?.rows).toMatchObject({ read: 6, loaded: 2, rejected: 4, open: 4 });
    const a2 = await p.load(A2, csv(ORDERS, ['10,ten,10.00,red', '11,eleven,11.00', '12,twelve,x,red']));
    expect(a2.reports[0]?.rows).toMatchObject({ read: 3, loaded: 1, rejected: 2, open: 2 });
    expect(await openLines(A1)).toEqual([3, 4, 5, 6]);

    const b = await p.load(
      B,
      csv(ORDERS, [
        '2,two,2.00,red',
        '3,three,3.00,red',
        '4,four,4.00,red',
        '5,five,5.00,green',
        '11,eleven,11.00,green',
        '12,twelve,12.00,red',
        '20,twenty,20.00,red',
      ]),
    );
    expect(b.reports[0]?.rows).toMatchObject({ read: 7, inserted: 7, rejected: 0, open: 0 });

    expect(await openLines(A1)).toEqual([]);
    expect(await openLines(A2)).toEqual([]);
    expect(await lifecycle(A1)).toEqual([
      [3, 'malformed', 'newer-row', `${B} line 2`],
      [4, 'malformed', 'newer-row', `${B} line 3`],
      [5, 'invalid', 'newer-row', `${B} line 4`],
      [6, 'invalid', 'newer-row', `${B} line 5`],
    ]);
    expect(await lifecycle(A2)).toEqual([
      [3, 'malformed', 'newer-row', `${B} line 6`],
      [4, 'invalid', 'newer-row', `${B} line 7`],
    ]);
    const fileB = await newestFileByKey(db, B);
    const { rejects } = await listRejects(db, A1, { all: true });
    expect(rejects.map((r) => r.resolved_file_id)).toEqual([fileB.id, fileB.id, fileB.id, fileB.id]);

    // The counts stay what the load did: the rows came from B, not from A1.
    expect(await statusOf(A1)).toEqual({
      read: 6,
      loaded: 2,
      inserted: 2,
      updated: 0,
      unchanged: 0,
      waiting: 0,
      rejected: 4,
      open: 0,
    });
    expect((await statusOf(A2))?.open).toBe(0);
    const retried = await retryRejects({ db, config: p.config, logger }, A1);
    expect(retried).toMatchObject({ retried: 0, loaded: 0, stillRejected: 0, notRetryable: 0 });
  });

  it('leaves a reject without a readable key open, and one its newer file rejects again', async () => {
    const key = 'incoming/life_orders/c.csv';
    await p.load(
      key,
      csv(ORDERS, [
        '31,thirty-one,31.00,blue', // invalid: its newer row is invalid too
        '32,thirty-two,-1,red',
        '30,"thir"ty,30.00,red', // malformed CSV, no key can be read (last: a bad quote reads to the end)
      ]),
    );
    expect(await openLines(key)).toEqual([2, 3, 4]);
    await p.load(
      'incoming/life_orders/d.csv',
      csv(ORDERS, ['30,thirty,30.00,red', '31,thirty-one,31.00,purple', '32,thirty-two,32.00,red']),
    );
    expect(await lifecycle(key)).toEqual([
      [2, 'invalid', 'open', null],
      [3, 'invalid', 'newer-row', 'incoming/life_orders/d.csv line 4'],
      [4, 'malformed', 'open', null],
    ]);
  });

  it('writes the counts into the receipts: what resolved its rejects, and how many of others it resolved', async () => {
    const a1 = await storedReceipt(A1, (r) => r.rejects.open === 0);
    expect([a1?.rows.rejected, a1?.rejects, a1?.firstRejects]).toEqual([
      4,
      { open: 0, resolved: { retry: 0, 'newer-row': 4, operator: 0 } },
      [],
    ]);
    const b = await storedReceipt(B, () => true);
    expect([b?.rejects, b?.resolvedOthers]).toEqual([
      { open: 0, resolved: { retry: 0, 'newer-row': 0, operator: 0 } },
      6,
    ]);
  });

  it('resolves them by the rows of a chunk that has a line that is not UTF-8', async () => {
    const key = 'incoming/life_orders/e.csv';
    await p.load(key, csv(ORDERS, ['50,fifty,x,red']));
    expect(await openLines(key)).toEqual([2]);
    const latin1 = Buffer.concat([
      Buffer.from(`${ORDERS}\n51,caf`),
      Buffer.from([0xe9]),
      Buffer.from(',1.00,red\n50,fifty,50.00,red\n'),
    ]);
    const f = await p.load('incoming/life_orders/f.csv', latin1);
    expect(f.reports[0]?.rows).toMatchObject({ read: 2, inserted: 1, rejected: 1, open: 1 });
    expect(await lifecycle(key)).toEqual([[2, 'invalid', 'newer-row', 'incoming/life_orders/f.csv line 3']]);
  });
});

describe('an unkeyed dataset', () => {
  it('keeps its rejects open whatever a newer file loads', async () => {
    const key = 'incoming/life_notes/n1.csv';
    const first = await p.load(key, csv('id,note', ['1,one', '2,', 'x,three']));
    expect(first.reports[0]?.rows).toMatchObject({ read: 3, loaded: 1, rejected: 2, open: 2 });
    await p.load('incoming/life_notes/n2.csv', csv('id,note', ['2,two', '3,three']));
    expect(await lifecycle(key)).toEqual([
      [3, 'invalid', 'open', null],
      [4, 'invalid', 'open', null],
    ]);
    expect((await statusOf(key))?.open).toBe(2);
  });
});

describe('a multi-table dataset keyed on its counted table', () => {
  it('resolves a reject when a newer file loads a record with its key', async () => {
    const key = 'incoming/life_people/p1.ndjson';
    await p.load(
      key,
      [
        '{"email":"ada@example.com","name":"Ada"}',
        '{"email":"grace@example.com","name":""}',
        '{"email":"alan@example.com"',
        '',
      ].join('\n'),
    );
    expect(await openLines(key)).toEqual([2, 3]);
    await p.load(
      'incoming/life_people/p2.ndjson',
      '{"email":"alan@example.com","name":"Alan"}\n{"email":"grace@example.com","name":"Grace"}\n',
    );
    expect(await lifecycle(key)).toEqual([
      [2, 'invalid', 'newer-row', 'incoming/life_people/p2.ndjson line 2'],
      // Invalid JSON: no key to read.
      [3, 'malformed', 'open', null],
    ]);
  });
});

describe('an operator', () => {
  const key = 'incoming/life_orders/ops.csv';

  it('resolves the lines given, with a reason', async () => {
    await p.load(
      key,
      csv(ORDERS, ['40,a,1.00,blue', '41,b,1.00,blue', '42,c,1.00,blue', '43,d,1.00,blue', '44,e,1.00,blue']),
    );
    expect(await openLines(key)).toEqual([2, 3, 4, 5, 6]);
    const result = await resolveByOperator(db, key, { lines: [3, 5, 6, 9], reason: 'entered by hand' });
    expect(result).toMatchObject({ key, resolved: [3, 5, 6], notOpen: [9] });
    expect(await lifecycle(key)).toEqual([
      [2, 'invalid', 'open', null],
      [3, 'invalid', 'operator', 'entered by hand'],
      [4, 'invalid', 'open', null],
      [5, 'invalid', 'operator', 'entered by hand'],
      [6, 'invalid', 'operator', 'entered by hand'],
    ]);
    const again = await resolveByOperator(db, key, { lines: [3], reason: 'twice' });
    expect(again).toMatchObject({ resolved: [], notOpen: [3] });
    const file = await newestFileByKey(db, key);
    expect((await receiptFor(db, file)).rejects).toEqual({
      open: 2,
      resolved: { retry: 0, 'newer-row': 0, operator: 3 },
    });
  });

  it('and retry-rejects then loads only the open ones, resolving them as retried', async () => {
    const fixed = resolveConfig(
      { ...config, datasets: [orders(['red', 'green', 'blue']), notes, people] },
      'fixed',
    );
    const retried = await retryRejects({ db, config: fixed, logger }, key);
    expect(retried).toMatchObject({ retried: 2, loaded: 2, inserted: 2, stillRejected: 0 });
    expect(await lifecycle(key)).toEqual([
      [2, 'invalid', 'retry', null],
      [3, 'invalid', 'operator', 'entered by hand'],
      [4, 'invalid', 'retry', null],
      [5, 'invalid', 'operator', 'entered by hand'],
      [6, 'invalid', 'operator', 'entered by hand'],
    ]);
    const { rows } = await sql<{
      id: number;
    }>`select id from life_orders where id between 40 and 49 order by id`.execute(db);
    expect(rows.map((r) => r.id)).toEqual([40, 42]);
    // Retried rows count as loaded, so read = inserted + rejected still holds; the operator's stay rejected.
    expect(await statusOf(key)).toMatchObject({ read: 5, inserted: 2, rejected: 3, open: 0 });
    const file = await newestFileByKey(db, key);
    expect((await receiptFor(db, file)).rejects).toEqual({
      open: 0,
      resolved: { retry: 2, 'newer-row': 0, operator: 3 },
    });
    const second = await retryRejects({ db, config: fixed, logger }, key);
    // retry-rejects moves counters too: the identity still holds.
    await expectHonestCounts(db);
    expect(second).toMatchObject({ retried: 0, loaded: 0 });
  });
});

describe('the CLI', () => {
  const run = promisify(execFile);
  const cli = (args: string[], env: Record<string, string | undefined>) =>
    run(path.resolve('node_modules/.bin/node'), ['cli/dropload.ts', ...args], {
      env: { ...process.env, AWS_ENDPOINT_URL: p.stack.endpoint, DATABASE_URL: undefined, ...env },
    });
  const failure = (e: { code: number; stdout: string; stderr: string }) => e;

  it('refuses to resolve without a reason, naming the command that would', async () => {
    const refused = await cli(['rejects', 'resolve', 'incoming/life_orders/c.csv', '--lines', '2'], {}).catch(
      failure,
    );
    expect('code' in refused && refused.code).toBe(2);
    expect(refused.stderr).toBe(
      'dropload: rejects resolve needs --reason, what was done about the rows: dropload rejects resolve incoming/life_orders/c.csv --lines 2 --reason "…"\n',
    );
  });

  it('resolves, lists open and all rejects, and counts them in status', async () => {
    const key = 'incoming/life_orders/c.csv';
    const file = await newestFileByKey(db, key);
    // The embedded PGlite serves 4 connections and the pipeline's pool holds them all; this is the
    // file's last test, so the pipeline's ledger connections make room for the CLI's.
    await db.destroy();
    const env = { DATABASE_URL: p.stack.databaseUrl };
    const resolved = await cli(
      ['rejects', 'resolve', key, '--lines', '2-4', '--reason', 'fixed upstream'],
      env,
    );
    expect(resolved.stdout).toBe(`${key}: resolved 2 reject(s): lines 2, 4; no open reject on line(s) 3\n`);
    const open = await cli(['rejects', key], env);
    expect(open.stdout).toBe(
      `s3://${p.stack.bucket}/${key} (file ${file.id}, life_orders): 0 open reject(s); 3 resolved (newer-row 1, operator 2): --all lists them\n`,
    );
    const all = await cli(['rejects', key, '--all'], env);
    const lines = all.stdout.split('\n');
    expect(lines[0]).toBe(
      `s3://${p.stack.bucket}/${key} (file ${file.id}, life_orders): 0 open reject(s); 3 resolved (newer-row 1, operator 2)`,
    );
    expect(lines.slice(1).map((l) => l.split('\t').slice(0, 2).concat(l.split('\t').slice(4)))).toEqual([
      ['line 2', 'color', 'resolved by operator: fixed upstream'],
      ['line 3', 'amount', 'resolved by newer-row: incoming/life_orders/d.csv line 4'],
      ['line 4', '-', 'resolved by operator: fixed upstream'],
      [''],
    ]);
    const status = await cli(['status', '--json'], env);
    const files = (JSON.parse(status.stdout) as { files: FileReport[] }).files;
    expect(files.find((f) => f.key === key)?.rows).toMatchObject({ rejected: 3, open: 0 });
    expect(files.find((f) => f.key === 'incoming/life_notes/n1.csv')?.rows).toMatchObject({
      rejected: 2,
      open: 2,
    });
  });
});
