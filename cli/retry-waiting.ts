import type { Command } from 'commander';
import { type LocalPipeline, startPipeline } from '../local/local-pipeline.ts';
import { StderrLogger } from '../local/stderr-logger.ts';
import { loadConfig } from '../shared/config/config.ts';
import { ConfigError } from '../shared/core/errors.ts';
import { filesById } from '../shared/ledger/ledger.ts';
import type { FileRow } from '../shared/ledger/schema.ts';
import { retryWaitingNow, type WaitingRetry } from '../shared/ops/retry-waiting.ts';
import { awsClients } from '../shared/runtime/environment.ts';
import { queueConfigured, resolveQueues, withLedger } from './ops-resources.ts';
import { positive } from './options.ts';
import { type FileReport, waitingLine } from './report.ts';
import { quiet, reportsOf } from './run.ts';

type Globals = () => { config?: string; verbose?: boolean };

interface Options {
  json?: boolean;
  timeout: number;
}

/** What became of one file: the retry sent, and (when this command ran it) the file after it. */
interface RetriedFile {
  key: string;
  fileId: number;
  enqueued: boolean;
  before: { state: FileRow['state']; waiting: FileReport['waiting'] | null };
  after?: FileReport;
}

const out = (line: string) => process.stdout.write(`${line}\n`);

function toRetried(r: WaitingRetry): RetriedFile {
  const waiting = r.waiting ? { rows: r.waiting.rows, lines: r.waiting.lines, on: r.waiting.on } : null;
  return { key: r.key, fileId: r.fileId, enqueued: r.enqueued, before: { state: r.state, waiting } };
}

function fileLine(f: RetriedFile): string {
  if (!f.enqueued) return `nothing waits   ${f.key} (${f.before.state})`;
  const before = f.before.waiting ? `: ${waitingLine(f.before.waiting)}` : '';
  if (!f.after) return `enqueued        ${f.key}${before}`;
  const now = f.after.waiting ? `waiting: ${waitingLine(f.after.waiting)}` : f.after.state;
  return `retried         ${f.key}${before} → ${now}`;
}

function print(files: RetriedFile[], mode: 'enqueued' | 'performed', json?: boolean) {
  if (json) return out(JSON.stringify({ mode, files }, null, 2));
  if (files.length === 0) return out('no rows wait');
  for (const f of files) out(fileLine(f));
  const sent = files.filter((f) => f.enqueued).length;
  out(
    mode === 'enqueued'
      ? `enqueued a retry for ${sent} file(s); the load workers run it`
      : `retried the waiting rows of ${sent} file(s)`,
  );
}

/** With the deployed stack or `dev` (a queue to send to): the retries go on the chunk queue, due now. */
async function enqueue(keys: string[], globals: Globals): Promise<RetriedFile[]> {
  const { sqs } = awsClients();
  const { url } = await resolveQueues(sqs, 'chunks');
  const logger = new StderrLogger({ serviceName: 'dropload', logLevel: globals().verbose ? 'INFO' : 'WARN' });
  const retried = await withLedger('retry-waiting', (db) =>
    retryWaitingNow({ db, sqs, chunkQueueUrl: url, logger }, keys),
  );
  return retried.map(toRetried);
}

/** Until the retried files settle (loaded, or waiting with no retry due soon), then their reports by id. */
async function settle(pipeline: LocalPipeline, ids: number[], timeoutMs: number) {
  const { db } = pipeline.deps;
  const deadline = Date.now() + timeoutMs;
  while (!(await quiet(pipeline, await filesById(db, ids))) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  const files = await filesById(db, ids);
  const reports = await reportsOf(db, files, 0);
  return new Map(files.map((f, i) => [f.id, reports[i] as FileReport]));
}

/** Without one: the local runner (as `run` starts it, on DATABASE_URL) runs the retries here. */
async function perform(keys: string[], globals: Globals, options: Options): Promise<RetriedFile[]> {
  // Without it the runner would start an empty embedded database, where nothing waits.
  if (!process.env.DATABASE_URL)
    throw new ConfigError('retry-waiting reads the ledger: set DATABASE_URL (`dropload dev` prints one)');
  const config = await loadConfig(globals().config);
  // Its own sweep would retry every waiting file: only the named ones are asked for.
  const pipeline = await startPipeline({
    config,
    sweepEveryMs: 0,
    logLevel: globals().verbose ? 'INFO' : 'WARN',
  });
  try {
    const retried = (await retryWaitingNow(pipeline.deps, keys)).map(toRetried);
    const sent = retried.filter((f) => f.enqueued).map((f) => f.fileId);
    const after = await settle(pipeline, sent, options.timeout * 1000);
    return retried.map((f) => ({ ...f, after: after.get(f.fileId) }));
  } finally {
    await pipeline.stop();
  }
}

export function registerRetryWaiting(program: Command, globals: Globals) {
  program
    .command('retry-waiting')
    .description('retry now the rows of these files (or every file) that wait for their parents')
    .argument('[keys...]', 'S3 keys of the files (default: every file whose rows wait)')
    .option('--json', 'print JSON')
    .option(
      '-t, --timeout <seconds>',
      'without a queue: give up waiting for the retries after this long',
      positive,
      600,
    )
    .action(async (keys: string[], options: Options) => {
      // A queue to send to (the stack's, or `dev`'s endpoint): its load workers run the retries.
      const queued = queueConfigured();
      const files = queued ? await enqueue(keys, globals) : await perform(keys, globals, options);
      print(files, queued ? 'enqueued' : 'performed', options.json);
    });
}
