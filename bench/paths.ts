import { createReadStream } from 'node:fs';
import { Logger } from '@aws-lambda-powertools/logger';
import type { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Kysely, PostgresDialect } from 'kysely';
import Papa from 'papaparse';
import pg from 'pg';
import { startPipeline, uploadFile } from '../cli/local-pipeline.ts';
import { startLocalStack } from '../cli/local-stack.ts';
import { planUploads, runFiles } from '../cli/run.ts';
import { resolveConfig } from '../shared/config.ts';
import { loadChunk } from '../shared/load-service.ts';
import type { ChunkMessage } from '../shared/messages.ts';
import type { PipelineDeps } from '../shared/services.ts';
import { splitObject } from '../shared/split-service.ts';
import benchConfig, { BENCH_TABLE } from './bench.config.ts';

/** What one measured path reports back: the time of the load itself, not of start-up or set-up. */
export interface PathResult {
  seconds: number;
  loaded: number;
  rejected: number;
  chunks?: number;
}

const config = resolveConfig(benchConfig, 'bench/bench.config.ts');
const dataset = config.datasets[0];
// The benchmark's own emulator process (so a path's peak RSS is the loader's, not the stored object's),
// never an AWS endpoint the developer's shell may point at.
const localEnv = () => ({ ...process.env, AWS_ENDPOINT_URL: process.env.BENCH_S3_ENDPOINT });

/** Collects the split's chunk messages instead of sending them, so the load can be timed on its own. */
function capturingSqs(into: ChunkMessage[]): SQSClient {
  const send = async (command: SendMessageBatchCommand) => {
    const entries = (command.input as { Entries?: { MessageBody?: string }[] }).Entries ?? [];
    for (const e of entries) into.push(JSON.parse(e.MessageBody ?? '{}') as ChunkMessage);
    return { Successful: [], Failed: [] };
  };
  return { send } as unknown as SQSClient;
}

/** Runs `tasks` with at most `limit` at once, like the load mapping's maximum concurrency. */
async function pool<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await task(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, lane));
  return out;
}

/** Uploads the file to a fresh local stack and gives deps whose SQS collects the split's chunk messages. */
async function stackWithFile(file: string) {
  const stack = await startLocalStack({ config, env: localEnv() });
  const key = `${dataset?.prefix}${file.split('/').pop()}`;
  const ref = await uploadFile(stack.s3, stack.bucket, key, file);
  const messages: ChunkMessage[] = [];
  const deps: PipelineDeps = {
    s3: stack.s3,
    sqs: capturingSqs(messages),
    db: stack.db,
    config,
    chunkQueueUrl: '',
    logger: new Logger({ logLevel: 'ERROR' }),
  };
  return { stack, ref, messages, deps };
}

/** The split step alone: one streaming pass over the object that plans its chunks. */
export async function splitPath(file: string): Promise<PathResult> {
  const { stack, ref, messages, deps } = await stackWithFile(file);
  try {
    const started = performance.now();
    await splitObject(deps, ref);
    return { seconds: (performance.now() - started) / 1000, loaded: 0, rejected: 0, chunks: messages.length };
  } finally {
    await stack.stop();
  }
}

/**
 * (b) The load worker alone: `loadChunk` for every chunk against the embedded S3 emulator (ranged
 * GETs included) and DATABASE_URL, with validation, rejects and the ledger. Upload and split are untimed.
 */
export async function workerPath(file: string, workers: number): Promise<PathResult> {
  const { stack, ref, messages, deps } = await stackWithFile(file);
  try {
    await splitObject(deps, ref);
    const started = performance.now();
    const outcomes = await pool(messages, workers, (m) => loadChunk(deps, m));
    const seconds = (performance.now() - started) / 1000;
    const loaded = outcomes.reduce((n, o) => n + o.inserted + o.updated, 0);
    const rejected = outcomes.reduce((n, o) => n + o.rejected, 0);
    return { seconds, loaded, rejected, chunks: messages.length };
  } finally {
    await stack.stop();
  }
}

/** (c) End to end on the local stack: upload, split, chunk queue, load workers, ledger. */
export async function endToEndPath(file: string, workers: number): Promise<PathResult> {
  const pipeline = await startPipeline({ config, workers, env: localEnv(), logLevel: 'ERROR' });
  try {
    const uploads = await planUploads([file], config, dataset?.name);
    const started = performance.now();
    const { reports, timedOut } = await runFiles(pipeline, uploads, {
      timeoutMs: 3_600_000,
      rejectsShown: 0,
    });
    const seconds = (performance.now() - started) / 1000;
    const report = reports[0];
    if (timedOut || report?.state !== 'loaded') throw new Error(`end-to-end load ended ${report?.state}`);
    return {
      seconds,
      loaded: report.rows.loaded,
      rejected: report.rows.rejected,
      chunks: report.chunks.total ?? undefined,
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

/** (d) The naive way: papaparse rows into multi-row VALUES inserts of 1,000 through Kysely, no validation. */
export async function kyselyPath(file: string): Promise<PathResult> {
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

const PATHS: Record<string, (file: string, workers: number) => Promise<PathResult>> = {
  split: splitPath,
  worker: workerPath,
  e2e: endToEndPath,
  kysely: kyselyPath,
};

/** Child-process entry: `node bench/paths.ts <path> <file> <workers>`; prints one JSON line with peak RSS. */
async function main(): Promise<void> {
  const [name, file, workers] = process.argv.slice(2);
  const run = name ? PATHS[name] : undefined;
  if (!run || !file)
    throw new Error(`usage: node bench/paths.ts <${Object.keys(PATHS).join('|')}> <file> [workers]`);
  const result = await run(file, Number(workers ?? 2));
  const maxRssMB = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`${JSON.stringify({ ...result, maxRssMB })}\n`);
}

if (import.meta.main) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
