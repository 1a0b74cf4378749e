import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Logger } from '@aws-lambda-powertools/logger';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { Kysely, PostgresDialect, sql } from 'kysely';
import Papa from 'papaparse';
import pg from 'pg';
import { init } from '../cli/init/init.ts';
import { planUploads, runFiles } from '../cli/run.ts';
import { toRecord } from '../local/event-source.ts';
import { startPipeline } from '../local/local-pipeline.ts';
import type { ChunkMessage } from '../shared/aws/messages.ts';
import { notificationFor, type ObjectRef } from '../shared/aws/s3-events.ts';
import { resolveConfig } from '../shared/config/config.ts';
import { createDb, createPool } from '../shared/ledger/connection.ts';
import { handleLoadMessage, parseLoadMessage } from '../shared/load/load-message.ts';
import type { PipelineDeps } from '../shared/pipeline/services.ts';
import { awsClients, databaseSettings } from '../shared/runtime/environment.ts';
import { handleIngestMessage, parseIngestMessage } from '../shared/split/ingest-message.ts';
import benchConfig, { BENCH_TABLE } from './bench.config.ts';

// The dropload side of the benchmark, one measured path per process, run from an esbuild bundle as the
// Lambdas are (bench/run.ts builds it), so a process's peak RSS is what that step needs: no TypeScript
// stripper, no emulator, no upload. Split and load workers get their dependencies the way a Lambda
// does (DATABASE_URL, DROPLOAD_DB_POOL_MAX, AWS_ENDPOINT_URL); the object is already in the bucket.

/** What one measured path reports back: the time of the load itself, not of start-up or set-up. */
export interface PathResult {
  seconds: number;
  loaded: number;
  rejected: number;
  chunks?: number;
  /** CPU seconds (user + system) of the timed part: split and load workers, what the cost model bills. */
  cpuSeconds?: number;
  /** Load workers: how many chunks each one took from the queue. */
  chunkShares?: number[];
  /** End to end: the upload before the drop, which `seconds` leaves out. */
  uploadSeconds?: number;
}

const config = resolveConfig(benchConfig, 'bench/bench.config.ts');

/** Collects the split's chunk messages instead of sending them, so the load can be timed on its own. */
function capturingSqs(into: ChunkMessage[]): SQSClient {
  const send = async (command: SendMessageBatchCommand) => {
    const entries = (command.input as { Entries?: { MessageBody?: string }[] }).Entries ?? [];
    for (const e of entries) into.push(JSON.parse(e.MessageBody ?? '{}') as ChunkMessage);
    return { Successful: [], Failed: [] };
  };
  return { send } as unknown as SQSClient;
}

/** A Lambda's dependencies, from the environment as `lazyDeps` builds them; SQS collects what is sent. */
async function lambdaDeps(messages: ChunkMessage[]): Promise<PipelineDeps> {
  const db = createDb(createPool(await databaseSettings()));
  await sql`select 1`.execute(db);
  return {
    s3: awsClients().s3,
    sqs: capturingSqs(messages),
    db,
    config,
    // Nothing reads these queues: a failed delivery is settled against them, then fails the path.
    chunkQueueUrl: 'bench-chunks',
    ingestQueueUrl: 'bench-ingest',
    logger: new Logger({ logLevel: 'ERROR' }),
  };
}

/** A message body as the event source mapping delivers it, first try. */
function delivery(body: string, receiptHandle: string = randomUUID()): SQSRecord {
  return toRecord(
    { MessageId: randomUUID(), ReceiptHandle: receiptHandle, Body: body },
    'bench',
    'us-east-1',
  );
}

/** The split stage as the split Lambda runs it, for one object's S3 event. */
async function split(deps: PipelineDeps, refJson: string): Promise<void> {
  const record = delivery(notificationFor(JSON.parse(refJson) as ObjectRef));
  const { failed } = await handleIngestMessage(deps, record, parseIngestMessage(record.body));
  if (failed) throw failed.error;
}

/** CPU seconds this process spent since `from` (a `process.cpuUsage()`). */
function cpuSince(from: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(from);
  return (user + system) / 1e6;
}

/** The split step alone: one streaming pass over the object that plans its chunks. */
async function splitPath(refJson: string): Promise<PathResult> {
  const messages: ChunkMessage[] = [];
  const deps = await lambdaDeps(messages);
  try {
    const started = performance.now();
    const cpu = process.cpuUsage();
    await split(deps, refJson);
    const seconds = (performance.now() - started) / 1000;
    return { seconds, cpuSeconds: cpuSince(cpu), loaded: 0, rejected: 0, chunks: messages.length };
  } finally {
    await deps.db.destroy();
  }
}

/** The queue the load workers pull chunks from; no message comes back while a worker holds it. */
async function chunkQueue(sqs: SQSClient): Promise<string> {
  const { QueueUrl } = await sqs.send(
    new CreateQueueCommand({ QueueName: 'bench-chunks', Attributes: { VisibilityTimeout: '3600' } }),
  );
  return QueueUrl as string;
}

/**
 * Untimed set-up for the load workers: splits the object and puts its chunk messages on the
 * emulator's chunk queue, where the workers pull them as Lambda's event source mapping does.
 */
async function planPath(refJson: string): Promise<PathResult> {
  const messages: ChunkMessage[] = [];
  const deps = await lambdaDeps(messages);
  try {
    await split(deps, refJson);
    const sqs = awsClients().sqs;
    const QueueUrl = await chunkQueue(sqs);
    for (let i = 0; i < messages.length; i += 10) {
      const Entries = messages
        .slice(i, i + 10)
        .map((m, j) => ({ Id: String(j), MessageBody: JSON.stringify(m) }));
      await sqs.send(new SendMessageBatchCommand({ QueueUrl, Entries }));
    }
    return { seconds: 0, loaded: 0, rejected: 0, chunks: messages.length };
  } finally {
    await deps.db.destroy();
  }
}

/** The next chunk from the queue, or undefined once it holds none: every chunk was queued before the start. */
async function nextChunk(sqs: SQSClient, QueueUrl: string): Promise<SQSRecord | undefined> {
  for (;;) {
    const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 1 }));
    const m = Messages?.[0];
    if (m) return delivery(m.Body ?? '', m.ReceiptHandle);
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
    );
    if (Number(Attributes?.ApproximateNumberOfMessages ?? 0) === 0) return undefined;
  }
}

/** Resolves on the first line of stdin: the parent starts every worker's clock at once. */
function startSignal(): Promise<void> {
  const lines = createInterface({ input: process.stdin });
  return new Promise((resolve) =>
    lines.once('line', () => {
      lines.close();
      resolve();
    }),
  );
}

/**
 * One load worker, as one Lambda instance: pulls chunk messages from the queue one at a time (the load
 * handler takes its SQS batch one chunk at a time) and runs the load stage (`handleLoadMessage`) on each,
 * a ranged GET, validation, rejects, the ledger and, for the last, the receipt, until the queue is empty.
 * A faster worker takes more chunks, as SQS consumers do. Connects, says `ready`, and starts on the
 * parent's signal, so start-up is not timed.
 */
async function workerPath(): Promise<PathResult> {
  const sqs = awsClients().sqs;
  const queueUrl = await chunkQueue(sqs);
  const deps = await lambdaDeps([]);
  try {
    const go = startSignal();
    process.stdout.write('ready\n');
    await go;
    const started = performance.now();
    const cpu = process.cpuUsage();
    let loaded = 0;
    let rejected = 0;
    let chunks = 0;
    for (let record = await nextChunk(sqs, queueUrl); record; record = await nextChunk(sqs, queueUrl)) {
      const d = await handleLoadMessage(deps, record, parseLoadMessage(record.body));
      if (d.kind === 'failed') throw d.error;
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: record.receiptHandle }));
      chunks++;
      if (d.kind !== 'chunk') continue;
      loaded += d.outcome.inserted + d.outcome.updated;
      rejected += d.outcome.rejected;
    }
    const seconds = (performance.now() - started) / 1000;
    return { seconds, cpuSeconds: cpuSince(cpu), loaded, rejected, chunks };
  } finally {
    await deps.db.destroy();
  }
}

/**
 * End to end on the local stack, as `dropload run` does it: upload, split, chunk queue, `workers` load
 * workers, ledger, report. Timed from the drop (the upload complete, the event sent) to the report.
 */
async function endToEndPath(file: string, workers = '2', dataset = 'bench'): Promise<PathResult> {
  const pipeline = await startPipeline({
    config,
    // The loads on worker threads, as `npx dropload run` has them (the bench runs from the repository's root).
    configFile: path.resolve('bench', 'bench.config.ts'),
    workers: Number(workers),
    logLevel: 'ERROR',
  });
  try {
    const uploads = await planUploads([file], config, dataset);
    const started = performance.now();
    let dropped = started;
    const upload = pipeline.upload;
    pipeline.upload = async (path, key) => {
      const ref = await upload(path, key);
      dropped = performance.now();
      return ref;
    };
    const { reports, timedOut } = await runFiles(pipeline, uploads, {
      timeoutMs: 3_600_000,
      rejectsShown: 0,
    });
    const seconds = (performance.now() - dropped) / 1000;
    const report = reports[0];
    if (timedOut || report?.state !== 'loaded') throw new Error(`end-to-end load ended ${report?.state}`);
    return {
      seconds,
      loaded: report.rows.loaded,
      rejected: report.rows.rejected,
      chunks: report.chunks.total ?? undefined,
      uploadSeconds: (dropped - started) / 1000,
    };
  } finally {
    await pipeline.stop();
  }
}

interface BenchRow {
  id: string;
  name: string;
  email: string;
  amount: string;
  created_at: string;
  active: string;
  score: string;
  note: string | null;
}

/** The naive way: papaparse rows into multi-row VALUES inserts of 1,000 through Kysely, no validation. */
async function kyselyPath(file: string): Promise<PathResult> {
  const url = process.env.DATABASE_URL as string;
  const db = new Kysely<{ [BENCH_TABLE]: BenchRow }>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }),
  });
  try {
    const started = performance.now();
    const parser = Papa.parse(Papa.NODE_STREAM_INPUT, { header: true, skipEmptyLines: true });
    let batch: BenchRow[] = [];
    let loaded = 0;
    for await (const row of createReadStream(file).pipe(parser) as AsyncIterable<BenchRow>) {
      batch.push({ ...row, note: row.note === '' ? null : row.note });
      if (batch.length === 1000) {
        await db.insertInto(BENCH_TABLE).values(batch).execute();
        loaded += batch.length;
        batch = [];
      }
    }
    if (batch.length > 0) await db.insertInto(BENCH_TABLE).values(batch).execute();
    loaded += batch.length;
    return { seconds: (performance.now() - started) / 1000, loaded, rejected: 0 };
  } finally {
    await db.destroy();
  }
}

/** `dropload init` on the file: one streaming pass that profiles every column, then the generated files. */
async function initPath(file: string): Promise<PathResult> {
  const out = await mkdtemp(path.join(tmpdir(), 'dropload-bench-init-'));
  try {
    const started = performance.now();
    const cpu = process.cpuUsage();
    const summary = await init([file], { out });
    const rows = summary.tables.reduce((n, t) => n + t.rows, 0);
    const seconds = (performance.now() - started) / 1000;
    return { seconds, cpuSeconds: cpuSince(cpu), loaded: rows, rejected: 0 };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

const PATHS: Record<string, (...args: string[]) => Promise<PathResult>> = {
  split: splitPath,
  plan: planPath,
  worker: workerPath,
  e2e: endToEndPath,
  kysely: kyselyPath,
  init: initPath,
};

/** Child-process entry: `node paths.mjs <path> <args…>`; prints one JSON line, with peak RSS, last. */
async function main(): Promise<void> {
  const [name, ...args] = process.argv.slice(2);
  const run = name ? PATHS[name] : undefined;
  if (!run) throw new Error(`usage: node paths.mjs <${Object.keys(PATHS).join('|')}> <args…>`);
  const result = await run(...args);
  const maxRssMB = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`${JSON.stringify({ ...result, maxRssMB })}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
