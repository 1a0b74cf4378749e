import { type Command, InvalidArgumentError, Option } from 'commander';
import { StderrLogger } from '../local/stderr-logger.ts';
import { loadConfig } from '../shared/config/config.ts';
import { ConfigError, UsageError } from '../shared/core/errors.ts';
import type { QueueName } from '../shared/core/topology.ts';
import type { RejectSummary } from '../shared/ledger/rejects.ts';
import { type FileRow, REJECT_RESOLUTIONS } from '../shared/ledger/schema.ts';
import { type WaitSummary, waitSummaries } from '../shared/ledger/waiting.ts';
import { type BackfillItem, backfill } from '../shared/ops/backfill.ts';
import {
  listRejects,
  type OperatorResolution,
  type RejectRow,
  rejectsAsFile,
  resolveByOperator,
} from '../shared/ops/rejects.ts';
import { type ReplayedMessage, type ReplayResult, replayDeadLetters } from '../shared/ops/replay.ts';
import { type RetryResult, retryRejects } from '../shared/ops/retry-rejects.ts';
import { wakeAfterLateRows } from '../shared/ops/retry-waiting.ts';
import { fileAction } from '../shared/pipeline/receipts.ts';
import { awsClients } from '../shared/runtime/environment.ts';
import { queueConfigured, resolveBucket, resolveQueues, withLedger } from './ops-resources.ts';
import { positive } from './options.ts';
import { waitingLine } from './report.ts';
import { registerRetryWaiting } from './retry-waiting.ts';

type Globals = () => { config?: string; verbose?: boolean };

const UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since`: an ISO date/time, or an age such as 90m, 6h, 7d. */
export function parseSince(value: string, now = Date.now()): Date {
  const age = /^(\d+)([mhd])$/.exec(value);
  const date = age ? new Date(now - Number(age[1]) * (UNITS[age[2] as string] as number)) : new Date(value);
  if (Number.isNaN(date.getTime())) {
    throw new InvalidArgumentError(
      'expected an ISO date/time (2026-11-27, 2026-11-27T08:00Z) or an age (90m, 6h, 7d)',
    );
  }
  return date;
}

const out = (line: string) => process.stdout.write(`${line}\n`);

const loggerFor = (globals: Globals) =>
  new StderrLogger({ serviceName: 'dropload', logLevel: globals().verbose ? 'INFO' : 'WARN' });

export function backfillLine(item: BackfillItem): string {
  const verb = { enqueued: 'enqueued', 'would-enqueue': 'would enqueue', seen: 'skipped (seen)' }[
    item.action
  ];
  const at = item.lastModified ? `  ${item.lastModified.toISOString()}` : '';
  return `${verb.padEnd(14)}  s3://${item.ref.bucket}/${item.ref.key}  etag ${item.ref.etag}${at}`;
}

export function replayLines(result: ReplayResult, queue: QueueName): string[] {
  if (result.mode === 'move-task') {
    const failure = result.failure ? ` (${result.failure})` : '';
    return [
      `${queue}: move task ${result.taskHandle} ${result.status}${failure}: moved ${result.moved} message(s)`,
    ];
  }
  const line = (m: ReplayedMessage) =>
    [
      m.queue,
      m.messageId,
      m.keys.join(',') || '(unreadable body)',
      m.chunk === null ? '-' : `chunk ${m.chunk}`,
      m.moved ? 'moved' : 'would move',
    ].join('  ');
  const left = result.messages.length - result.moved;
  const total = result.dryRun
    ? `${queue}: would move ${result.selected} message(s); moved none (dry run)`
    : `${queue}: moved ${result.moved} message(s); left ${left} other(s) it saw in the dead-letter queue`;
  return [...result.messages.filter((m) => m.selected).map(line), total];
}

/** A reject as `dropload rejects` prints it; with `all`, whether it is open or how it was resolved. */
export function rejectLine(r: RejectRow, all = false): string {
  const fields = [`line ${r.line}`, r.column ?? '-', r.reason, JSON.stringify(r.raw)];
  if (all) fields.push(r.resolved_by ? `resolved by ${r.resolved_by}: ${r.resolution ?? '-'}` : 'open');
  return fields.join('\t');
}

/** What the listing covers: the open rejects, and how the others were resolved. */
export function rejectsHeading(
  file: { bucket: string; key: string; id: number; dataset: string | null },
  summary: RejectSummary,
  all: boolean,
): string {
  const ways = REJECT_RESOLUTIONS.filter((by) => summary.resolved[by] > 0);
  const resolved = ways.reduce((n, by) => n + summary.resolved[by], 0);
  const how =
    resolved > 0
      ? `; ${resolved} resolved (${ways.map((by) => `${by} ${summary.resolved[by]}`).join(', ')})`
      : '';
  const more = resolved > 0 && !all ? ': --all lists them' : '';
  return `s3://${file.bucket}/${file.key} (file ${file.id}, ${file.dataset}): ${summary.open} open reject(s)${how}${more}`;
}

/**
 * `incoming/x.csv: FAILED: <error>` for a file that is not simply loaded: failed, stalled, waiting for
 * parents, or still on its way (its rejects may grow); nothing for a loaded file.
 */
export function fileStateLine(file: FileRow, waits?: WaitSummary): string | undefined {
  const error = file.error ? `: ${file.error}` : '';
  switch (file.state) {
    case 'loaded':
      return undefined;
    case 'failed':
      return `${file.key}: FAILED${error}`;
    case 'stalled':
      return `${file.key}: STALLED${error}; once the cause is fixed, run: ${fileAction(file)}`;
    case 'skipped':
      return `${file.key}: skipped${error}`;
    case 'waiting':
      return `${file.key}: waiting${waits ? `: ${waitingLine(waits)}` : ''}`;
    default:
      return `${file.key}: ${file.state} (chunks ${file.chunks_done}/${file.chunk_count ?? '?'}): more rejects may come`;
  }
}

export function resolveLine(r: OperatorResolution): string {
  const notOpen = r.notOpen.length > 0 ? `; no open reject on line(s) ${r.notOpen.join(', ')}` : '';
  const lines = r.resolved.length > 0 ? `: lines ${r.resolved.join(', ')}` : '';
  return `${r.key}: resolved ${r.resolved.length} reject(s)${lines}${notOpen}`;
}

/** `--lines 3,7-9`: line numbers and inclusive ranges, in order, each once. */
export function parseLines(value: string): number[] {
  const lines = new Set<number>();
  for (const part of value.split(',')) {
    const range = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    const from = Number(range?.[1]);
    const to = range?.[2] === undefined ? from : Number(range[2]);
    if (!range || from < 1 || to < from || to - from >= 1_000_000) {
      throw new InvalidArgumentError('expected line numbers and ranges, such as 3,7-9');
    }
    for (let line = from; line <= to; line++) lines.add(line);
  }
  return [...lines].sort((a, b) => a - b);
}

/** Sorted line numbers as `--lines` takes them: runs as ranges (3,7-9). */
export function linesOption(lines: number[]): string {
  const runs: string[] = [];
  for (let i = 0; i < lines.length; ) {
    let j = i;
    while (j + 1 < lines.length && (lines[j + 1] as number) === (lines[j] as number) + 1) j++;
    runs.push(j === i ? `${lines[i]}` : `${lines[i]}-${lines[j]}`);
    i = j + 1;
  }
  return runs.join(',');
}

export function retryLine(r: RetryResult): string {
  const skipped =
    r.notRetryable > 0 ? `; ${r.notRetryable} not retryable (stored text is not the original line)` : '';
  return `${r.key}: retried ${r.retried}, loaded ${r.loaded} (inserted ${r.inserted}, updated ${r.updated}, unchanged ${r.unchanged}), still rejected ${r.stillRejected}${skipped}`;
}

function registerBackfill(program: Command, globals: Globals) {
  program
    .command('backfill')
    .description(
      "enqueue, as S3 would have, every object under the datasets' prefixes the ledger has never seen",
    )
    .option('-p, --prefix <prefix>', 'only keys under this prefix')
    .option('-s, --since <time>', 'only objects modified since: ISO date/time or an age (6h, 7d)', (v) =>
      parseSince(v),
    )
    .option('--dry-run', 'list what would be enqueued; enqueue nothing')
    .option('--resume', 'also re-announce files the ledger never finished (their messages were lost)')
    .action(async (opts: { prefix?: string; since?: Date; dryRun?: boolean; resume?: boolean }) => {
      const config = await loadConfig(globals().config);
      const { s3, sqs } = awsClients();
      const { url } = await resolveQueues(sqs, 'ingest');
      // Resuming re-drives waiting rows too: their retries go on the chunk queue.
      const chunkQueueUrl = opts.resume ? (await resolveQueues(sqs, 'chunks')).url : undefined;
      const result = await withLedger('backfill', (db) =>
        backfill(
          { s3, sqs, db, logger: loggerFor(globals) },
          {
            bucket: resolveBucket(),
            ingestQueueUrl: url,
            chunkQueueUrl,
            datasetPrefixes: config.datasets.map((d) => d.prefix),
            prefix: opts.prefix,
            since: opts.since,
            dryRun: opts.dryRun,
            resume: opts.resume,
            region: process.env.AWS_REGION,
          },
        ),
      );
      for (const item of result.items) out(backfillLine(item));
      out(
        `${opts.dryRun ? 'would enqueue' : 'enqueued'} ${result.unseen}, skipped ${result.seen} already in the ledger`,
      );
      if (opts.resume) {
        for (const f of result.redriven)
          out(`${opts.dryRun ? 'would retry' : 'retry'} waiting rows  ${f.key}`);
        out(
          `${opts.dryRun ? 'would retry' : 'retried'} the waiting rows of ${result.redriven.length} file(s) now`,
        );
      }
    });
}

function registerReplay(program: Command, globals: Globals) {
  program
    .command('replay')
    .description('move dead-lettered messages back to the queue they failed out of')
    .addOption(
      new Option('-q, --queue <queue>', 'which dead-letter queue')
        .choices(['ingest', 'chunks'])
        .makeOptionMandatory(),
    )
    .option('--dry-run', 'list what would move; move nothing')
    .option('-f, --file <key>', 'only messages about this S3 key')
    .option('-n, --max <n>', 'move at most this many', positive)
    .action(async (opts: { queue: QueueName; dryRun?: boolean; file?: string; max?: number }) => {
      const { sqs } = awsClients();
      const queues = await resolveQueues(sqs, opts.queue);
      const result = await replayDeadLetters(
        { sqs, logger: loggerFor(globals) },
        { ...opts, sourceUrl: queues.url, dlqUrl: queues.dlqUrl },
      );
      for (const line of replayLines(result, opts.queue)) out(line);
      if (result.mode === 'move-task' && result.status !== 'COMPLETED') process.exitCode = 1;
    });
}

function registerRejects(program: Command, globals: Globals) {
  const rejects = program
    .command('rejects')
    .description('the open rejected rows of the newest file with this key')
    .argument('<key>', 'S3 key of the file')
    .option(
      '--csv',
      "print them as a file in the dataset's format (CSV: header + original lines) to fix and drop again",
    )
    .option('--all', 'resolved rejects too, with how they were resolved')
    .action(async (key: string, opts: { csv?: boolean; all?: boolean }) => {
      const all = opts.all ?? false;
      const { file, rejects, summary, waits } = await withLedger('rejects', async (db) => {
        const listed = await listRejects(db, key, { all });
        const [waits] = listed.file.state === 'waiting' ? await waitSummaries(db, [listed.file.id]) : [];
        return { ...listed, waits };
      });
      // The list alone would read as "nothing went wrong" for a file that failed or has not finished.
      const state = fileStateLine(file, waits);
      if (!opts.csv) {
        if (state) out(state);
        out(rejectsHeading(file, summary, all));
        for (const r of rejects) out(rejectLine(r, all));
        return;
      }
      // The delimiter is the dataset's, not recorded per file: the config says it.
      const config = await loadConfig(globals().config);
      const dataset = config.datasets.find((d) => d.name === file.dataset);
      if (!dataset)
        throw new ConfigError(
          `file "${key}" belongs to dataset "${file.dataset}", which is not in the config`,
        );
      // stdout is the file to fix: the state goes to stderr.
      if (state) process.stderr.write(`${state}\n`);
      process.stdout.write(rejectsAsFile(file, rejects, dataset));
    });
  registerResolve(rejects);
}

function registerResolve(rejects: Command) {
  rejects
    .command('resolve')
    .description("mark the newest file's open rejects resolved by hand (they stay listed under --all)")
    .argument('<key>', 'S3 key of the file')
    .option(
      '--lines <lines>',
      'only the rejects on these lines, e.g. 3,7-9 (default: every open one)',
      parseLines,
    )
    .option('--reason <text>', 'what was done about the rows (required; stored with them)')
    .action(async (key: string, opts: { lines?: number[]; reason?: string }) => {
      if (!opts.reason?.trim()) {
        const lines = opts.lines ? ` --lines ${linesOption(opts.lines)}` : '';
        throw new UsageError(
          `rejects resolve needs --reason, what was done about the rows: dropload rejects resolve ${key}${lines} --reason "…"`,
        );
      }
      const reason = opts.reason;
      const result = await withLedger('rejects resolve', (db) =>
        resolveByOperator(db, key, { lines: opts.lines, reason }),
      );
      out(resolveLine(result));
    });
}

function registerRetryRejects(program: Command, globals: Globals) {
  program
    .command('retry-rejects')
    .description(
      "re-validate the newest file's rejected rows against the current schema and load those that pass",
    )
    .argument('<key>', 'S3 key of the file')
    .action(async (key: string) => {
      const config = await loadConfig(globals().config);
      const logger = loggerFor(globals);
      await withLedger('retry-rejects', async (db) => {
        const result = await retryRejects({ db, config, logger }, key);
        out(retryLine(result));
        if (result.loaded === 0) return;
        // The rows it loaded may be parents that rows of other files wait for: those are retried now.
        const sqs = queueConfigured() ? awsClients().sqs : undefined;
        if (!sqs) return out(WAKE_LATER);
        const { url } = await resolveQueues(sqs, 'chunks');
        const woken = await wakeAfterLateRows({ db, sqs, chunkQueueUrl: url, logger }, config, result.fileId);
        if (woken > 0) out(`retrying now the waiting rows of ${woken} file(s) these rows may be parents of`);
      });
    });
}

const WAKE_LATER =
  'rows of other files waiting on these are retried by the sweep of the next `dropload run` or `dev` (or `dropload retry-waiting`)';

/** Operator commands (replay, backfill, rejects, retry-rejects, retry-waiting) hang off the main program here. */
export function registerOpsCommands(program: Command, globals: Globals): void {
  registerBackfill(program, globals);
  registerReplay(program, globals);
  registerRejects(program, globals);
  registerRetryRejects(program, globals);
  registerRetryWaiting(program, globals);
}
