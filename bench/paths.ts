import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Logger } from '@aws-lambda-powertools/logger';
import type { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
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
function delivery(body: string): SQSRecord {
  return toRecord({ MessageId: randomUUID(), ReceiptHandle: randomUUID(), Body: body }, 'bench', 'us-east-1');
}

/** The split stage as the split Lambda runs it, for one object's S3 event. */
async function split(deps: PipelineDeps, refJson: string): Promise<void> {
  const record = delivery(notificationFor(JSON.parse(refJson) as ObjectRef));
  const { failed } = await handleIngestMessage(deps, record, parseIngestMessage(record.body));
  if (failed) throw failed.error;
}

/** The split step alone: one streaming pass over the object that plans its chunks. */
async function splitPath(refJson: string): Promise<PathResult> {
  const messages: ChunkMessage[] = [];
  const deps = await lambdaDeps(messages);
  try {
    const started = performance.now();
    await split(deps, refJson);
    return { seconds: (performance.now() - started) / 1000, loaded: 0, rejected: 0, chunks: messages.length };
  } finally {
    await deps.db.destroy();
  }
}

/** Untimed set-up for the load workers: splits the object and writes its chunk messages to `out`. */
async function planPath(refJson: string, out: string): Promise<PathResult> {
  const messages: ChunkMessage[] = [];
  const deps = await lambdaDeps(messages);
  try {
    await split(deps, refJson);
    await writeFile(out, JSON.stringify(messages));
    return { seconds: 0, loaded: 0, rejected: 0, chunks: messages.length };
  } finally {
    await deps.db.destroy();
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
 * One load worker, as one Lambda instance: the load stage (`handleLoadMessage`) for its share of the chunks
 * (every `of`-th from `slot`), one at a time, each with a ranged GET, validation, rejects, the ledger and,
 * for the last, the receipt. Connects, says
 * `ready`, and starts on the parent's signal, so start-up is not timed.
 */
async function workerPath(messagesFile: string, slot = '0', of = '1'): Promise<PathResult> {
  const all = JSON.parse(await readFile(messagesFile, 'utf8')) as ChunkMessage[];
  const mine = all.filter((_, i) => i % Number(of) === Number(slot));
  const deps = await lambdaDeps([]);
  try {
    const go = startSignal();
    process.stdout.write('ready\n');
    await go;
    const started = performance.now();
    let loaded = 0;
    let rejected = 0;
    for (const m of mine) {
      const record = delivery(JSON.stringify(m));
      const d = await handleLoadMessage(deps, record, parseLoadMessage(record.body));
      if (d.kind === 'failed') throw d.error;
      if (d.kind !== 'chunk') continue;
      loaded += d.outcome.inserted + d.outcome.updated;
      rejected += d.outcome.rejected;
    }
    return { seconds: (performance.now() - started) / 1000, loaded, rejected, chunks: mine.length };
  } finally {
    await deps.db.destroy();
  }
}

/**
 * End to end on the local stack, as `dropload run` does it: upload, split, chunk queue, `workers` load
 * workers, ledger, report. Timed from the drop (the upload complete, the event sent) to the report.
 */
async function endToEndPath(file: string, workers = '2', dataset = 'bench'): Promise<PathResult> {
  const pipeline = await startPipeline({ config, workers: Number(workers), logLevel: 'ERROR' });
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
    const summary = await init([file], { out });
    const rows = summary.tables.reduce((n, t) => n + t.rows, 0);
    return { seconds: (performance.now() - started) / 1000, loaded: rows, rejected: 0 };
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
