import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Logger } from '@aws-lambda-powertools/logger';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { type Kysely, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ChunkMessage } from '../../shared/aws/messages.ts';
import { notificationFor, objectRefsFromBody, unquoteEtag } from '../../shared/aws/s3-events.ts';
import { resolveConfig } from '../../shared/config/config.ts';
import { defineDataset } from '../../shared/config/dataset.ts';
import { MIN_VISIBILITY_SECONDS } from '../../shared/core/backoff.ts';
import { filesByKey } from '../../shared/ledger/ledger.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { FINAL_STATES } from '../../shared/ledger/schema.ts';
import { backfill } from '../../shared/ops/backfill.ts';
import { listRejects, rejectsAsFile } from '../../shared/ops/rejects.ts';
import { replayDeadLetters } from '../../shared/ops/replay.ts';
import { retryRejects } from '../../shared/ops/retry-rejects.ts';
import { expectHonestCounts } from '../support/counts.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

const tables: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('ops_items')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('color', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('ops_events')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('kind', 'text', (c) => c.notNull())
      .execute();
  },
};

const items = (colors: [string, ...string[]]) =>
  defineDataset({
    name: 'ops_items',
    format: 'csv',
    table: 'ops_items',
    schema: z.object({
      id: z.coerce.number().int().positive(),
      name: z.string().min(1),
      color: z.enum(colors),
    }),
  });
const events = defineDataset({
  name: 'ops_events',
  format: 'ndjson',
  table: 'ops_events',
  schema: z.object({ id: z.number().int().positive(), kind: z.string().min(1) }),
});
const config = {
  datasets: [items(['red', 'green']), events],
  migrations: { '20260101000000_ops': tables },
};

const logger = new Logger({ serviceName: 'dropload-test', logLevel: 'SILENT' });
let p: TestPipeline;
let db: Kysely<Database>;

beforeAll(async () => {
  p = await startTestPipeline(config, ['ops_items', 'ops_events']);
  // backfill lists the bucket, and a file `run` links (linked-objects.ts) is read where it lies, not
  // listed: this suite's files are uploaded, as `dev` and a real bucket hold them.
  p.stack.link = undefined;
  db = p.deps.db;
});
afterAll(async () => {
  await p?.stop();
});

/** Puts an object straight into the bucket, without the event S3 (or the runner) would send. */
async function dropSilently(key: string, body: string) {
  const res = await p.stack.s3.send(new PutObjectCommand({ Bucket: p.stack.bucket, Key: key, Body: body }));
  return { bucket: p.stack.bucket, key, etag: unquoteEtag(res.ETag ?? ''), size: Buffer.byteLength(body) };
}

/** A queue on the test's emulator that no event source reads: what lands there stays there. */
async function quietQueue(name: string): Promise<string> {
  return (await p.stack.sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl as string;
}

/** A chunk message as the split step sends it; replay only reads its key and index. */
function chunkBody(key: string, index: number): string {
  const message: ChunkMessage = {
    fileId: 999,
    dataset: 'ops_items',
    bucket: 'b',
    key,
    etag: 'e',
    index,
    count: 4,
    start: 0,
    end: 1,
    firstLine: 2,
  };
  return JSON.stringify(message);
}

async function visible(url: string): Promise<number> {
  const res = await p.stack.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages'] }),
  );
  return Number(res.Attributes?.ApproximateNumberOfMessages);
}

/**
 * The DLQ's messages once a replay's held ones are released: visible again after MIN_VISIBILITY_SECONDS,
 * never at once (fauxqs keeping state loses a message made visible at once), so the next replay waits
 * that long; counted held or not (fauxqs counts a released message as held until a receive looks).
 */
async function afterRelease(url: string): Promise<number> {
  await new Promise((r) => setTimeout(r, MIN_VISIBILITY_SECONDS * 1000 + 100));
  const res = await p.stack.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  const a = res.Attributes ?? {};
  return Number(a.ApproximateNumberOfMessages) + Number(a.ApproximateNumberOfMessagesNotVisible);
}

async function drain(url: string): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const res = await p.stack.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }),
    );
    if (!res.Messages?.length) return all;
    all.push(...res.Messages);
  }
}

/** Waits (up to 30 s) until the ledger has every key finished; returns their states. */
async function finished(keys: string[]): Promise<string[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const files = await filesByKey(db, p.stack.bucket, keys);
    const states = keys.map((k) => files.findLast((f) => f.key === k)?.state ?? 'unseen');
    if (states.every((s) => FINAL_STATES.includes(s as never)) || Date.now() > deadline) return states;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const itemRows = async () =>
  (
    await sql<{
      id: number;
      name: string;
      color: string;
    }>`select id, name, color from ops_items order by id`.execute(db)
  ).rows;

describe('backfill', () => {
  const deps = () => ({ s3: p.stack.s3, sqs: p.stack.sqs, db, logger });
  const prefixes = () => p.config.datasets.map((d) => d.prefix);

  it('enqueues exactly the objects the ledger has never seen, as S3 events, and they load', async () => {
    const { reports } = await p.load('incoming/ops_items/seen.csv', 'id,name,color\n1,one,red\n');
    expect(reports[0]?.state).toBe('loaded');
    const a = await dropSilently('incoming/ops_items/a.csv', 'id,name,color\n2,two,green\n');
    const b = await dropSilently('incoming/ops_items/b.csv', 'id,name,color\n3,three,red\n');
    await dropSilently('elsewhere/c.csv', 'id,name,color\n4,four,red\n');

    const quiet = await quietQueue('ops-backfill-probe');
    const dry = await backfill(deps(), {
      bucket: p.stack.bucket,
      ingestQueueUrl: quiet,
      datasetPrefixes: prefixes(),
      dryRun: true,
    });
    expect(dry.items.map((i) => [i.ref.key, i.action])).toEqual([
      ['incoming/ops_items/a.csv', 'would-enqueue'],
      ['incoming/ops_items/b.csv', 'would-enqueue'],
      ['incoming/ops_items/seen.csv', 'seen'],
    ]);
    expect([dry.unseen, dry.seen]).toEqual([2, 1]);
    expect(await visible(quiet)).toBe(0);

    // To a queue nobody reads, to see the bodies exactly as the split step will.
    const probe = await backfill(deps(), {
      bucket: p.stack.bucket,
      ingestQueueUrl: quiet,
      datasetPrefixes: prefixes(),
    });
    expect([probe.unseen, probe.seen]).toEqual([2, 1]);
    const bodies = (await drain(quiet)).flatMap((m) => objectRefsFromBody(m.Body ?? ''));
    // A made-up event carries a sequencer in S3's form, as S3's own do.
    const sequencer = expect.stringMatching(/^[0-9A-F]{16}$/);
    expect(bodies.sort((x, y) => x.key.localeCompare(y.key))).toEqual([
      { ...a, versionId: undefined, sequencer },
      { ...b, versionId: undefined, sequencer },
    ]);

    const real = await backfill(deps(), {
      bucket: p.stack.bucket,
      ingestQueueUrl: p.stack.ingest.url,
      datasetPrefixes: prefixes(),
    });
    expect(real.items.filter((i) => i.action === 'enqueued').map((i) => i.ref.key)).toEqual([a.key, b.key]);
    expect(await finished([a.key, b.key])).toEqual(['loaded', 'loaded']);
    expect(await itemRows()).toEqual([
      { id: 1, name: 'one', color: 'red' },
      { id: 2, name: 'two', color: 'green' },
      { id: 3, name: 'three', color: 'red' },
    ]);

    const again = await backfill(deps(), {
      bucket: p.stack.bucket,
      ingestQueueUrl: p.stack.ingest.url,
      datasetPrefixes: prefixes(),
    });
    expect([again.unseen, again.seen]).toEqual([0, 3]);
  });

  it('narrows to --prefix and --since, and names a prefix under no dataset', async () => {
    const quiet = await quietQueue('ops-backfill-narrow');
    const d = await dropSilently('incoming/ops_items/2026/d.csv', 'id,name,color\n5,five,red\n');
    const base = { bucket: p.stack.bucket, ingestQueueUrl: quiet, datasetPrefixes: prefixes(), dryRun: true };
    const narrowed = await backfill(deps(), { ...base, prefix: 'incoming/ops_items/2026/' });
    expect(narrowed.prefixes).toEqual(['incoming/ops_items/2026/']);
    expect(narrowed.items.map((i) => [i.ref.key, i.action])).toEqual([[d.key, 'would-enqueue']]);
    const wide = await backfill(deps(), { ...base, prefix: 'incoming/' });
    expect(wide.prefixes).toEqual(['incoming/ops_events/', 'incoming/ops_items/']);
    expect(wide.unseen).toBe(1);
    const future = await backfill(deps(), { ...base, since: new Date(Date.now() + 3_600_000) });
    expect(future.items).toEqual([]);
    await expect(backfill(deps(), { ...base, prefix: 'elsewhere/' })).rejects.toThrow(
      '--prefix elsewhere/: no dataset prefix lies under or above it (dataset prefixes: incoming/ops_items/, incoming/ops_events/)',
    );
    expect(await visible(quiet)).toBe(0);
  });
});

describe('replay', () => {
  const deps = () => ({ sqs: p.stack.sqs, logger });

  it('moves dead letters back by filter, cap and in full; a dry run moves none', async () => {
    const source = await quietQueue('ops-replay-chunks');
    const dlq = await quietQueue('ops-replay-chunks-dlq');
    const bodies = [chunkBody('k1', 0), chunkBody('k2', 0), chunkBody('k1', 1), 'not json'];
    for (const body of bodies)
      await p.stack.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: body }));
    const base = { queue: 'chunks' as const, sourceUrl: source, dlqUrl: dlq };

    const dry = await replayDeadLetters(deps(), { ...base, dryRun: true });
    expect(dry).toMatchObject({ mode: 'messages', selected: 4, moved: 0, dryRun: true });
    expect([await afterRelease(dlq), await visible(source)]).toEqual([4, 0]);

    const capped = await replayDeadLetters(deps(), { ...base, file: 'k1', max: 1 });
    if (capped.mode !== 'messages') throw new Error('expected a message-by-message replay');
    expect(capped.messages.filter((m) => m.moved).map((m) => [m.keys, m.chunk])).toEqual([[['k1'], 0]]);
    expect([await afterRelease(dlq), await visible(source)]).toEqual([3, 1]);

    const k1 = await replayDeadLetters(deps(), { ...base, file: 'k1' });
    expect(k1).toMatchObject({ selected: 1, moved: 1 });
    expect([await afterRelease(dlq), await visible(source)]).toEqual([2, 2]);

    // No filter: SQS's move task, which fauxqs answers with InvalidAction, so one by one.
    const rest = await replayDeadLetters(deps(), base);
    expect(rest).toMatchObject({ mode: 'messages', selected: 2, moved: 2 });
    expect(await visible(dlq)).toBe(0);
    expect((await drain(source)).map((m) => m.Body).sort()).toEqual([...bodies].sort());
  });

  it('sends a dead-lettered S3 event back to the ingest queue, and the file loads', async () => {
    const ref = await dropSilently('incoming/ops_items/replayed.csv', 'id,name,color\n6,six,green\n');
    await p.stack.sqs.send(
      new SendMessageCommand({ QueueUrl: p.stack.ingest.dlqUrl, MessageBody: notificationFor(ref) }),
    );
    const result = await replayDeadLetters(deps(), {
      queue: 'ingest',
      sourceUrl: p.stack.ingest.url,
      dlqUrl: p.stack.ingest.dlqUrl,
      file: ref.key,
    });
    expect(result).toMatchObject({ mode: 'messages', selected: 1, moved: 1 });
    expect(await visible(p.stack.ingest.dlqUrl)).toBe(0);
    expect(await finished([ref.key])).toEqual(['loaded']);
    expect((await itemRows()).find((r) => r.id === 6)).toEqual({ id: 6, name: 'six', color: 'green' });
  });
});

describe('rejects and retry-rejects', () => {
  const colorsCsv = [
    'id,name,color,"note, free"',
    '10,ten,red,x',
    '11,eleven,blue,"with, comma"',
    'x,bad id,red,',
    '12,"twelve, quoted",blue,',
    '13,thirteen,green,',
    '',
  ].join('\n');

  it('lists a file’s rejects and exports them as a CSV to fix and drop again', async () => {
    const { reports } = await p.load('incoming/ops_items/colors.csv', colorsCsv);
    expect(reports[0]?.rows).toMatchObject({ read: 5, loaded: 2, rejected: 3 });
    const { file, rejects } = await listRejects(db, 'incoming/ops_items/colors.csv');
    expect(rejects.map((r) => [r.line, r.column, r.reason, r.raw])).toEqual([
      [
        3,
        'color',
        'Invalid option: expected one of "red"|"green" (got "blue")',
        '11,eleven,blue,"with, comma"',
      ],
      [4, 'id', 'not a valid number (got "x")', 'x,bad id,red,'],
      [5, 'color', 'Invalid option: expected one of "red"|"green" (got "blue")', '12,"twelve, quoted",blue,'],
    ]);
    const dataset = p.config.datasets[0];
    if (!dataset) throw new Error('no dataset');
    expect(rejectsAsFile(file, rejects, dataset)).toBe(
      'id,name,color,"note, free"\n11,eleven,blue,"with, comma"\nx,bad id,red,\n12,"twelve, quoted",blue,\n',
    );
  });

  it('exports NDJSON rejects as their original lines', async () => {
    const ndjson = '{"id":1,"kind":"a"}\n{"id":-2,"kind":"b"}\nnot json\n{"id":3,"kind":"c"}\n';
    await p.load('incoming/ops_events/e.ndjson', ndjson);
    const { file, rejects } = await listRejects(db, 'incoming/ops_events/e.ndjson');
    const dataset = p.config.datasets[1];
    if (!dataset) throw new Error('no dataset');
    expect(rejectsAsFile(file, rejects, dataset)).toBe('{"id":-2,"kind":"b"}\nnot json\n');
  });

  it('after a schema fix, loads exactly the rows that pass now, once', async () => {
    const fixed = resolveConfig({ ...config, datasets: [items(['red', 'green', 'blue']), events] }, 'fixed');
    const key = 'incoming/ops_items/colors.csv';
    const first = await retryRejects({ db, config: fixed, logger }, key);
    expect(first).toMatchObject({
      retried: 3,
      loaded: 2,
      inserted: 2,
      updated: 0,
      stillRejected: 1,
      notRetryable: 0,
    });
    expect((await itemRows()).filter((r) => r.id >= 10)).toEqual([
      { id: 10, name: 'ten', color: 'red' },
      { id: 11, name: 'eleven', color: 'blue' },
      { id: 12, name: 'twelve, quoted', color: 'blue' },
      { id: 13, name: 'thirteen', color: 'green' },
    ]);
    const { file, rejects } = await listRejects(db, key);
    expect(rejects.map((r) => r.line)).toEqual([4]);
    expect([file.rows_read, file.rows_inserted, file.rows_rejected]).toEqual([5, 4, 1]);
    const chunks = await db.selectFrom('dropload.chunk').selectAll().where('file_id', '=', file.id).execute();
    expect(chunks.map((c) => [c.rows_read, c.rows_inserted, c.rows_rejected])).toEqual([[5, 4, 1]]);

    const second = await retryRejects({ db, config: fixed, logger }, key);
    // retry-rejects moves counters too: the identity still holds.
    await expectHonestCounts(db);
    expect(second).toMatchObject({ retried: 1, loaded: 0, inserted: 0, stillRejected: 1 });
    expect((await itemRows()).filter((r) => r.id >= 10)).toHaveLength(4);
  });
});

describe('the CLI, end to end', () => {
  const run = promisify(execFile);
  const cli = (args: string[], env: Record<string, string | undefined>) =>
    run(path.resolve('node_modules/.bin/node'), ['cli/dropload.ts', ...args], {
      env: { ...process.env, AWS_ENDPOINT_URL: p.stack.endpoint, DATABASE_URL: undefined, ...env },
    });

  it('replays from the queues the env names and prints one line per message', async () => {
    const source = await quietQueue('ops-cli-chunks');
    const dlq = await quietQueue('ops-cli-chunks-dlq');
    const sent = await p.stack.sqs.send(
      new SendMessageCommand({ QueueUrl: dlq, MessageBody: chunkBody('k 1', 3) }),
    );
    const { stdout } = await cli(['replay', '--queue', 'chunks'], {
      DROPLOAD_CHUNK_QUEUE_URL: source,
      DROPLOAD_CHUNK_DLQ_URL: dlq,
    });
    expect(stdout).toBe(
      `chunks  ${sent.MessageId}  k 1  chunk 3  moved\nchunks: moved 1 message(s); left 0 other(s) it saw in the dead-letter queue\n`,
    );
    expect([await visible(dlq), await visible(source)]).toEqual([0, 1]);
  });

  it('lists rejects from DATABASE_URL, and names DATABASE_URL when it is missing', async () => {
    const file = (await filesByKey(db, p.stack.bucket, ['incoming/ops_items/colors.csv']))[0];
    // The embedded PGlite serves 4 connections and the pipeline's pool holds them all; this is the
    // file's last test, so the pipeline's ledger connections make room for the CLI's.
    await db.destroy();
    const { stdout } = await cli(['rejects', 'incoming/ops_items/colors.csv'], {
      DATABASE_URL: p.stack.databaseUrl,
    });
    expect(stdout).toBe(
      `s3://${p.stack.bucket}/incoming/ops_items/colors.csv (file ${file?.id}, ops_items): 1 open reject(s); 2 resolved (retry 2): --all lists them\n` +
        'line 4\tid\tnot a valid number (got "x")\t"x,bad id,red,"\n',
    );
    const missing = await cli(['rejects', 'x'], {}).catch((e: { code: number; stderr: string }) => e);
    expect('code' in missing && missing.code).toBe(2);
    expect(missing.stderr).toBe(
      'dropload: rejects reads the ledger: set DATABASE_URL (`dropload dev` prints one)\n',
    );
  });
});
