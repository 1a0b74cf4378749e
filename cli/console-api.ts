import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Kysely } from 'kysely';
import { errorMessage } from '../shared/core/errors.ts';
import type { QueueName } from '../shared/core/topology.ts';
import { listFiles } from '../shared/ledger/ledger.ts';
import type { Database } from '../shared/ledger/schema.ts';
import { readSnapshot } from '../shared/ledger/snapshot.ts';
import { type RowsInSecond, rowsPerSecond } from '../shared/ledger/throughput.ts';
import { type ParentWait, waitingByParent, waitSummaries } from '../shared/ledger/waiting.ts';
import { deadLetterDepth } from '../shared/ops/dead-letters.ts';
import { listRejects } from '../shared/ops/rejects.ts';
import { replayDeadLetters } from '../shared/ops/replay.ts';
import type { Log } from '../shared/pipeline/services.ts';
import { fileStateLine, rejectsHeading, replayLines } from './ops.ts';
import type { QueueUrls } from './ops-resources.ts';
import { type FileReport, fileNotes, reportsOf } from './report.ts';

/**
 * What `dropload console` serves as JSON: the same ledger reads and the same replay as the operator
 * commands (`status`, `rejects`, `replay`), so the page and the terminal never disagree.
 */

export const CONSOLE_QUEUES: readonly QueueName[] = ['ingest', 'chunks'];

export interface ConsoleDeps {
  db: Kysely<Database>;
  sqs: SQSClient;
  logger: Log;
  /** The queue and its DLQ as the operator commands find them; throws (a ConfigError) when it cannot. */
  queues(queue: QueueName): Promise<QueueUrls>;
}

export interface DeadLetters {
  queue: QueueName;
  /** Messages in its dead-letter queue; null when the queue could not be read (`error` says why). */
  depth: number | null;
  error?: string;
}

/** A file as `status --json` gives it, with the lines `status` prints about it under its table. */
export type ConsoleFile = FileReport & { notes: string[] };

export interface Overview {
  at: string;
  files: ConsoleFile[];
  /** Rows per second of the files listed, over the last THROUGHPUT_SECONDS. */
  throughput: { seconds: number; points: RowsInSecond[] };
  waiting: ParentWait[];
  deadLetters: DeadLetters[];
}

/** How far back the rows/s chart reaches. */
const THROUGHPUT_SECONDS = 300;

async function deadLetters(deps: ConsoleDeps, queue: QueueName): Promise<DeadLetters> {
  try {
    const { dlqUrl } = await deps.queues(queue);
    return { queue, depth: await deadLetterDepth(deps.sqs, dlqUrl) };
  } catch (err) {
    // The ledger's views stay useful when the queues are out of reach (no endpoint, no credentials).
    return { queue, depth: null, error: errorMessage(err) };
  }
}

/** Everything the page polls for, as of now: the newest `limit` files as `status` lists them. */
export async function overview(deps: ConsoleDeps, limit: number): Promise<Overview> {
  // The queues answer over the network while the ledger is read: one round trip's wait, not two in a row
  // (`deadLetters` never rejects, so a failing ledger read leaves nothing unhandled).
  const dlqs = Promise.all(CONSOLE_QUEUES.map((q) => deadLetters(deps, q)));
  // One snapshot: a file's row and its counts agree though chunks commit while they are read.
  const { reports, points } = await readSnapshot(deps.db, async (snap) => {
    const files = await listFiles(snap, limit);
    const reports = await reportsOf(snap, files);
    const points = await rowsPerSecond(
      snap,
      files.map((f) => f.id),
      THROUGHPUT_SECONDS,
    );
    return { reports, points };
  });
  const waiting = await waitingByParent(deps.db);
  return {
    at: new Date().toISOString(),
    files: reports.map((r) => ({ ...r, notes: fileNotes(r).map((n) => n.line) })),
    throughput: { seconds: THROUGHPUT_SECONDS, points },
    waiting,
    deadLetters: await dlqs,
  };
}

export interface ConsoleReject {
  line: number;
  column: string | null;
  reason: string;
  kind: string;
  /** The original line as the file had it (see `dropload rejects`). */
  raw: string;
  /** null while open; else how it was resolved, as `rejects --all` prints it. */
  resolved: string | null;
}

/**
 * The most rejects the page lists for a file: it redraws them every second, and `dropload rejects`
 * lists them all.
 */
export const REJECTS_SHOWN = 500;

export interface FileRejects {
  key: string;
  /** How many rejects the listing covers (open ones, or with `all` every one); `rejects` holds the first REJECTS_SHOWN. */
  total: number;
  /** `rejects`' heading and, for a file that is not simply loaded, its state line. */
  heading: string;
  state: string | null;
  rejects: ConsoleReject[];
}

/** `dropload rejects KEY [--all]`, as data. */
export async function rejectsOfKey(deps: ConsoleDeps, key: string, all: boolean): Promise<FileRejects> {
  const { file, rejects, summary } = await listRejects(deps.db, key, { all, limit: REJECTS_SHOWN });
  const [waits] = file.state === 'waiting' ? await waitSummaries(deps.db, [file.id]) : [];
  const resolved = Object.values(summary.resolved).reduce((a, b) => a + b, 0);
  return {
    key: file.key,
    total: summary.open + (all ? resolved : 0),
    heading: rejectsHeading(file, summary, all),
    state: fileStateLine(file, waits) ?? null,
    rejects: rejects.map((r) => ({
      line: Number(r.line),
      column: r.column,
      reason: r.reason,
      kind: r.kind,
      raw: r.raw,
      resolved: r.resolved_by ? `${r.resolved_by}: ${r.resolution ?? '-'}` : null,
    })),
  };
}

/** `dropload replay --queue Q`: every message of the queue's DLQ back to the queue; the lines it prints. */
export async function replayQueue(
  deps: ConsoleDeps,
  queue: QueueName,
): Promise<{ moved: number; lines: string[] }> {
  const { url, dlqUrl } = await deps.queues(queue);
  const result = await replayDeadLetters(
    { sqs: deps.sqs, logger: deps.logger },
    { queue, sourceUrl: url, dlqUrl },
  );
  return { moved: result.moved, lines: replayLines(result, queue) };
}
