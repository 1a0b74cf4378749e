import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { type Kysely, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { SqsHandler } from '../../local/event-source.ts';
import { unquoteEtag } from '../../shared/aws/s3-events.ts';
import { defineDataset } from '../../shared/config/dataset.ts';
import { integer } from '../../shared/config/fields.ts';
import type { Database, FileRow } from '../../shared/ledger/schema.ts';
import { waitingByParent } from '../../shared/ledger/waiting.ts';
import { deadLetterDepth } from '../../shared/ops/dead-letters.ts';
import { listRejects } from '../../shared/ops/rejects.ts';
import { SHORT_RETRIES } from '../support/faults.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/**
 * `dropload console` in a real headless Chromium, against a whole local pipeline: the page loads, shows
 * a file mid-load, drills into rejects, replays a dead-lettered chunk through its confirmation, and
 * shows hostile keys and lines as text. Screenshots go to test/out/console/.
 */

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = path.resolve('test/out/console');
const run = promisify(execFile);
const NODE = path.resolve('node_modules/.bin/node');

const tables: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`create table console_items (id integer primary key, label text not null)`.execute(db);
    // "Lock not available" (55P03, which reads as transient) while the switch is on: a chunk retried
    // for its whole budget, then dead-lettered, until an operator fixes the cause and replays it.
    await sql`create table console_locked (id integer)`.execute(db);
    await sql`create table console_parents (id integer primary key)`.execute(db);
    await sql`create table console_children (id integer primary key, parent_id integer not null references console_parents (id))`.execute(
      db,
    );
    await sql`create table console_switch (refuse boolean not null)`.execute(db);
    await sql`insert into console_switch values (true)`.execute(db);
    await sql`create function console_lock() returns trigger language plpgsql as $$
      begin
        if (select refuse from console_switch) then
          raise exception 'could not obtain lock on relation "console_locked"' using errcode = '55P03';
        end if;
        return null;
      end $$`.execute(db);
    await sql`create trigger console_lock before insert on console_locked for each statement execute function console_lock()`.execute(
      db,
    );
  },
};

const config = {
  datasets: [
    defineDataset({
      name: 'items',
      format: 'csv',
      table: 'console_items',
      chunkBytes: 64 * 1024,
      schema: z.object({ id: integer(), label: z.string().min(1) }),
    }),
    defineDataset({
      name: 'locked',
      format: 'csv',
      table: 'console_locked',
      schema: z.object({ id: integer() }),
    }),
    defineDataset({
      name: 'parents',
      format: 'csv',
      table: 'console_parents',
      mode: 'upsert',
      key: ['id'],
      schema: z.object({ id: integer() }),
    }),
    // console_children.parent_id references console_parents: a child whose parent is missing waits.
    defineDataset({
      name: 'children',
      format: 'csv',
      table: 'console_children',
      key: ['id'],
      schema: z.object({ id: integer(), parent_id: integer() }),
    }),
  ],
  migrations: { '20260101000000_console': tables },
};

const BIG_KEY = 'incoming/items/big.csv';
const HOSTILE_KEY = 'incoming/items/<script>window.pwned=1</script>.csv';
const LOCKED_KEY = 'incoming/locked/l.csv';

/** Holds the big file's chunks after the first until the test has seen the page show it half loaded. */
let release: () => void = () => {};
const held = new Promise<void>((resolve) => {
  release = resolve;
});
function gate(fn: 'split' | 'load', handler: SqsHandler): SqsHandler {
  if (fn !== 'load') return handler;
  return async (event, context) => {
    const later = event.Records.some((r) => {
      const m = JSON.parse(r.body) as { key?: string; index?: number };
      return m.key === BIG_KEY && (m.index ?? 0) >= 1;
    });
    if (later) await held;
    return handler(event, context);
  };
}

let p: TestPipeline;
let db: Kysely<Database>;
let consoleProcess: ChildProcess | undefined;
let browser: Browser | undefined;
let page: Page;
let base: string;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts `dropload console` on the pipeline's database and endpoint; resolves with its URL once it listens. */
async function startConsole(port: number): Promise<string> {
  const child = spawn(NODE, ['cli/dropload.ts', 'console', '--port', String(port)], {
    env: { ...process.env, DATABASE_URL: p.stack.databaseUrl, AWS_ENDPOINT_URL: p.stack.endpoint },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  consoleProcess = child;
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += String(d);
  });
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += String(d);
      const url = /dropload console: (http:\/\/\S+)/.exec(out)?.[1];
      if (url) resolve(url);
    });
    child.once('exit', (code) => reject(new Error(`console exited (${code}): ${err}`)));
  });
}

async function drop(key: string, body: string): Promise<void> {
  const put = await p.stack.s3.send(new PutObjectCommand({ Bucket: p.stack.bucket, Key: key, Body: body }));
  await p.announce({ bucket: p.stack.bucket, key, etag: unquoteEtag(put.ETag ?? ''), size: body.length });
}

/** Polls the ledger until the newest file of the key passes `done` (up to 60 s). */
async function fileWhen(key: string, done: (f: FileRow) => boolean): Promise<FileRow> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const f = await db
      .selectFrom('dropload.file')
      .selectAll()
      .where('key', '=', key)
      .orderBy('id', 'desc')
      .executeTakeFirst();
    if (f && done(f)) return f;
    if (Date.now() > deadline) throw new Error(`${key}: still ${f?.state ?? 'not in the ledger'}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const fileRowOnPage = (key: string) =>
  page.locator('#files tbody tr').filter({ has: page.getByRole('cell', { name: key, exact: true }) });

/** The page's cells of the file's row: state, chunks, read, loaded, waiting, rejected, open. */
async function shownCounts(key: string): Promise<string[]> {
  const cells = await fileRowOnPage(key).locator('td').allTextContents();
  return [cells[2], ...cells.slice(4, 10)].map(String);
}

/** Waits for a condition the page reaches when the poll after an event has drawn it. */
const eventually = <T>(read: () => Promise<T>) => expect.poll(read, { timeout: 30_000, interval: 100 });

const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `no Chromium at ${CHROMIUM}: install it with \`apt-get update && apt-get install -y chromium\` (.ci/run does; README, Quick start)`,
    );
  }
  await mkdir(SHOTS, { recursive: true });
  p = await startTestPipeline(
    config,
    ['console_children', 'console_parents', 'console_items', 'console_locked', 'console_switch'],
    {
      retry: SHORT_RETRIES,
      wrap: gate,
    },
  );
  db = p.deps.db;
  base = await startConsole(await freePort());
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(30_000);
  await page.goto(base);
});

afterAll(async () => {
  release();
  await browser?.close();
  consoleProcess?.kill('SIGTERM');
  await p?.stop();
});

const waitingShown = () =>
  page
    .locator('#waiting tbody tr')
    .all()
    .then((rows) => Promise.all(rows.map((r) => r.locator('td').allTextContents())));

describe('dropload console in a browser', () => {
  it('loads, and shows a file mid-load with its chunks and rows, then loaded', async () => {
    await eventually(() => page.locator('#updated').textContent()).toMatch(/^updated /);
    const lines = ['id,label'];
    for (let i = 1; i <= 3000; i++) lines.push(`${i},item number ${i} ${'x'.repeat(40)}`);
    await drop(BIG_KEY, `${lines.join('\n')}\n`);

    // The first chunk loads; the others are held: the ledger and the page say so.
    const half = await fileWhen(BIG_KEY, (f) => f.chunks_done === 1);
    const total = half.chunk_count ?? 0;
    expect(total).toBeGreaterThan(1);
    // The counts the page shows while the first chunk alone is in, after the file's state.
    const firstChunkIn = (state: string) => {
      const rows = String(half.rows_read);
      return [state, `1/${total}`, rows, rows, '0', '0', '0'];
    };
    await eventually(() => shownCounts(BIG_KEY)).toEqual(firstChunkIn('loading'));
    const bar = fileRowOnPage(BIG_KEY).locator('progress');
    expect([await bar.getAttribute('value'), await bar.getAttribute('max')]).toEqual(['1', String(total)]);
    await shot('progress');

    // Announced again while loading, as a restarted `dev` announces what it had not finished: resumed.
    const head = await p.stack.s3.send(new HeadObjectCommand({ Bucket: p.stack.bucket, Key: BIG_KEY }));
    await p.announce({
      bucket: p.stack.bucket,
      key: BIG_KEY,
      etag: unquoteEtag(head.ETag ?? ''),
      size: head.ContentLength,
    });
    const resumed = await fileWhen(BIG_KEY, (f) => f.resumes === 1);
    await eventually(() => shownCounts(BIG_KEY)).toEqual(firstChunkIn('loading resumed 1×'));
    const at = new Date(resumed.resumed_at ?? 0).toISOString().slice(11, 19);
    await eventually(() => page.locator('#file-notes').textContent()).toMatch(
      new RegExp(
        `${BIG_KEY}: resumed 1× after an interruption, at ${at} UTC; of its \\d+\\.\\d s, \\d+\\.\\d were idle before it and \\d+\\.\\d active; nothing to do: no row is lost or loaded twice`,
      ),
    );
    await shot('resumed');

    release();
    await fileWhen(BIG_KEY, (f) => f.state === 'loaded');
    await eventually(() => shownCounts(BIG_KEY)).toEqual([
      'loaded resumed 1×',
      `${total}/${total}`,
      '3000',
      '3000',
      '0',
      '0',
      '0',
    ]);
    // The chart has the load's rows, each chunk's spread over the time it took: the seconds add up to
    // the file's rows, and no second has them all (the held chunks took seconds).
    const [, peak, rows] =
      /peak (\d+) rows\/s; (\d+) rows over the last 5 min$/.exec(
        (await page.locator('#rate-summary').textContent()) ?? '',
      ) ?? [];
    expect(Number(rows)).toBe(3000);
    expect(Number(peak)).toBeLessThan(3000);
    await shot('loaded');
  });

  it("shows a file's rejects with line, column, reason and original line; hostile text stays text", async () => {
    const csv = [
      'id,label',
      '9001,ok',
      '<img src=x onerror="window.pwned=2">,x',
      '9002,',
      'x<script>window.pwned=3</script>,y',
      '',
    ].join('\n');
    const { reports } = await p.load(HOSTILE_KEY, csv);
    expect(reports[0]?.rows).toMatchObject({ read: 4, loaded: 1, rejected: 3 });
    const { rejects } = await listRejects(db, HOSTILE_KEY);
    const expected = rejects.map((r) => [String(r.line), r.column ?? '-', r.reason, r.raw, 'open']);
    expect(expected.map((r) => [r[0], r[1], r[3]])).toEqual([
      ['3', 'id', '<img src=x onerror="window.pwned=2">,x'],
      ['4', 'label', '9002,'],
      ['5', 'id', 'x<script>window.pwned=3</script>,y'],
    ]);

    await fileRowOnPage(HOSTILE_KEY).click();
    await eventually(() => page.locator('#rejects-title').textContent()).toBe(`Rejects of ${HOSTILE_KEY}`);
    const rows = page.locator('#rejects tbody tr');
    await eventually(() => rows.count()).toBe(3);
    const shown: string[][] = [];
    for (const tr of await rows.all()) shown.push(await tr.locator('td').allTextContents());
    expect(shown).toEqual(expected);
    expect(await page.locator('#rejects-heading').textContent()).toMatch(/: 3 open reject\(s\)$/);
    expect(await page.locator('#rejects-more').isVisible()).toBe(false);
    // Shown as text: nothing ran, and no markup came from the key or the lines.
    expect(await page.evaluate('typeof window.pwned')).toBe('undefined');
    expect(await page.locator('script').count()).toBe(1);
    expect(await page.locator('main img').count()).toBe(0);
    await shot('rejects');
  });

  it('replays a dead-lettered chunk through the button and its confirmation; it then loads', async () => {
    await drop(LOCKED_KEY, 'id\n1\n2\n3\n');
    await fileWhen(LOCKED_KEY, (f) => f.state === 'stalled');
    const dlq = p.stack.chunks.dlqUrl;
    await eventually(() => deadLetterDepth(p.stack.sqs, dlq)).toBe(1);
    const chunksRow = page.locator('#dead-letters tbody tr').filter({ hasText: 'chunks' });
    await eventually(() => chunksRow.locator('td').nth(1).textContent()).toBe('1');
    await eventually(async () => (await shownCounts(LOCKED_KEY))[0]).toBe('stalled');
    await eventually(() => page.locator('#file-notes').textContent()).toContain(
      `${LOCKED_KEY}: once the cause is fixed, run: npx dropload replay --queue chunks --file "${LOCKED_KEY}"`,
    );

    // Another site cannot replay: its Origin is refused, and nothing moves.
    const foreign = await fetch(`${base}api/replay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'http://evil.example' },
      body: JSON.stringify({ queue: 'chunks' }),
    });
    expect([foreign.status, await foreign.json()]).toEqual([
      403,
      { error: 'refused: a request that changes something must come from the console page' },
    ]);
    expect(await deadLetterDepth(p.stack.sqs, dlq)).toBe(1);

    // Cancelled: nothing moves.
    await chunksRow.getByRole('button', { name: 'Replay…' }).click();
    await eventually(() => page.locator('#replay-dialog').isVisible()).toBe(true);
    expect(await page.locator('#replay-question').textContent()).toBe(
      'Move the 1 message(s) in the chunks dead-letter queue back to the chunks queue, as `dropload replay --queue chunks` does? Do it once the cause of their failure is fixed.',
    );
    await shot('replay-confirmation');
    await page.getByRole('button', { name: 'Cancel' }).click();
    expect(await page.locator('#replay-dialog').isVisible()).toBe(false);
    expect(await deadLetterDepth(p.stack.sqs, dlq)).toBe(1);

    // The cause fixed, confirmed: the chunk goes back to its queue and the file loads.
    await sql`update console_switch set refuse = false`.execute(db);
    await chunksRow.getByRole('button', { name: 'Replay…' }).click();
    await page.locator('#replay-confirm').click();
    await eventually(() => page.locator('#replay-result').textContent()).toMatch(
      /^chunks {2}\S+ {2}incoming\/locked\/l\.csv {2}chunk 0 {2}moved\nchunks: moved 1 message\(s\); left 0 other\(s\) it saw in the dead-letter queue$/,
    );
    const loaded = await fileWhen(LOCKED_KEY, (f) => f.state === 'loaded');
    expect([loaded.rows_read, loaded.rows_inserted, loaded.error]).toEqual([3, 3, null]);
    await eventually(() => shownCounts(LOCKED_KEY)).toEqual(['loaded', '1/1', '3', '3', '0', '0', '0']);
    await eventually(() => chunksRow.locator('td').nth(1).textContent()).toBe('0');
    expect(await chunksRow.getByRole('button', { name: 'Replay…' }).isDisabled()).toBe(true);
    await shot('replayed');
  });

  it('lists the first 500 rejects of a file and says how many there are', async () => {
    const key = 'incoming/items/many-bad.csv';
    const bad = Array.from({ length: 502 }, (_, i) => `bad${i},x`);
    await p.load(key, `id,label\n${bad.join('\n')}\n`);
    await fileRowOnPage(key).click();
    await eventually(() => page.locator('#rejects-more').textContent()).toBe(
      `the first 500 of 502 are listed; \`dropload rejects ${key}\` lists them all`,
    );
    expect(await page.locator('#rejects tbody tr').count()).toBe(500);
    expect(await page.locator('#rejects tbody tr').last().locator('td').first().textContent()).toBe('501');
    expect(await page.locator('#rejects-more').isVisible()).toBe(true);
  });

  it('shows rows waiting for their parents per parent table, until the parents land', async () => {
    const { reports } = await p.load('incoming/children/c.csv', 'id,parent_id\n1,10\n2,10\n3,11\n');
    expect(reports[0]?.state).toBe('waiting');
    expect(await waitingByParent(db)).toEqual([
      { table: 'public.console_parents', key: 'id', rows: 3, files: 1 },
    ]);
    await eventually(waitingShown).toEqual([['public.console_parents', 'id', '3', '1']]);
    await eventually(() => page.locator('#file-notes').textContent()).toContain(
      'incoming/children/c.csv: waiting: 3 rows wait for public.console_parents (id)',
    );
    await shot('waiting');
    await p.load('incoming/parents/p.csv', 'id\n10\n11\n');
    await fileWhen('incoming/children/c.csv', (f) => f.state === 'loaded');
    await eventually(waitingShown).toEqual([['no rows wait']]);
    await eventually(() => shownCounts('incoming/children/c.csv')).toEqual([
      'loaded',
      '1/1',
      '3',
      '3',
      '0',
      '0',
      '0',
    ]);
  });
});

/** A request as any client may send it, Host and Origin included (fetch sets its own Host). */
async function rawRequest(
  method: string,
  pathname: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: unknown }> {
  const url = new URL(pathname, base);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += String(d);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('what the console refuses', () => {
  const json = { 'content-type': 'application/json' };
  const own = () => new URL(base).host;

  it('answers only at its own address: a page under another name (DNS rebinding) reads nothing', async () => {
    expect(await rawRequest('GET', '/api/overview', { host: `evil.example:${new URL(base).port}` })).toEqual({
      status: 403,
      body: { error: `this console answers only at ${base}` },
    });
  });

  it('replays only for its own page: no Origin, a foreign one, or a body that is not JSON moves nothing', async () => {
    const refused = { error: 'refused: a request that changes something must come from the console page' };
    const body = JSON.stringify({ queue: 'chunks' });
    expect(await rawRequest('POST', '/api/replay', json, body)).toEqual({ status: 403, body: refused });
    expect(await rawRequest('POST', '/api/replay', { ...json, origin: `http://evil.example` }, body)).toEqual(
      { status: 403, body: refused },
    );
    expect(
      await rawRequest(
        'POST',
        '/api/replay',
        { 'content-type': 'text/plain', origin: `http://${own()}` },
        body,
      ),
    ).toEqual({ status: 415, body: { error: 'expected a JSON body' } });
    expect(
      await rawRequest('POST', '/api/replay', { ...json, origin: `http://${own()}` }, '{"queue":"x"}'),
    ).toEqual({ status: 400, body: { error: 'queue must be one of ingest, chunks' } });
  });

  it('names an unknown file and an unknown page', async () => {
    expect(await rawRequest('GET', '/api/rejects?key=nope.csv', {})).toEqual({
      status: 404,
      body: { error: 'no file with key "nope.csv" in the ledger (`dropload status` lists them)' },
    });
    expect(await rawRequest('GET', '/etc/passwd', {})).toEqual({
      status: 404,
      body: { error: 'no such page: /etc/passwd' },
    });
  });
});

describe('dropload console on the command line', () => {
  let holder: Server;
  afterAll(() => holder?.close());

  it('names DATABASE_URL when it is missing, exit 2', async () => {
    const failed = await run(NODE, ['cli/dropload.ts', 'console'], {
      env: { ...process.env, DATABASE_URL: undefined },
    }).catch((e: { code: number; stdout: string; stderr: string }) => e);
    expect(failed).toMatchObject({
      code: 2,
      stdout: '',
      stderr: 'dropload: console reads the ledger: set DATABASE_URL (`dropload dev` prints one)\n',
    });
  });

  it('a busy port is one line and exit 1', async () => {
    holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as { port: number };
    const failed = await run(NODE, ['cli/dropload.ts', 'console', '--port', String(port)], {
      env: { ...process.env, DATABASE_URL: p.stack.databaseUrl, AWS_ENDPOINT_URL: p.stack.endpoint },
    }).catch((e: { code: number; stdout: string; stderr: string }) => e);
    expect(failed).toMatchObject({
      code: 1,
      stdout: '',
      stderr: `dropload: port ${port} is in use: pass \`--port N\` or stop what holds it\n`,
    });
  });
});
