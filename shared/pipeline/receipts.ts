import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Kysely } from 'kysely';
import { REPORT_PREFIX } from '../core/bucket-layout.ts';
import type { QueueName } from '../core/topology.ts';
import {
  type ChunkCounts,
  getFile,
  newerVersion,
  type Reject,
  type TableCounts,
  tableCountsOf,
} from '../ledger/ledger.ts';
import { fileRejects, type RejectSummary, rejectSummary, resolvedByFile } from '../ledger/rejects.ts';
import { type Resumed, resumedOf } from '../ledger/resumes.ts';
import { type Database, FINAL_STATES, type FileRow } from '../ledger/schema.ts';
import { type Waiting, waitingPart, waitSummaries } from '../ledger/waiting.ts';
import type { PipelineDeps } from './services.ts';

/** Enough rejects for whoever dropped the file to see the pattern; the CLI lists them all. */
const REJECTS_IN_RECEIPT = 20;

/** The command that puts a file's messages parked in `queue`'s dead-letter queue back. */
export function replayCommand(key: string, queue: QueueName): string {
  return `npx dropload replay --queue ${queue} --file ${JSON.stringify(key)}`;
}

/**
 * What to do about a file: a failed one's action as its failure set it; a stalled one's replay, as the
 * step that parked it set it (a split parks in the ingest DLQ even after it planned chunks), else, for
 * files stalled before the ledger kept it, its chunks' (or, unplanned, its split's); else none.
 */
export function fileAction(file: Pick<FileRow, 'state' | 'key' | 'chunk_count' | 'action'>): string | null {
  if (file.state === 'stalled')
    return file.action ?? replayCommand(file.key, file.chunk_count === null ? 'ingest' : 'chunks');
  return file.state === 'failed' ? file.action : null;
}

export interface Receipt {
  file: string;
  bucket: string;
  versionId: string | null;
  etag: string;
  dataset: string | null;
  state: FileRow['state'];
  error: string | null;
  note: string | null;
  /** For a stalled file: the command that replays it once the cause is fixed; for a failed one, what to do. */
  action: string | null;
  /** Its work stopped without an outcome (a crash) and started again: how often, when, the idle time. */
  resumed: Resumed | null;
  /** For a `waiting` file: how many of its rows (of how many records) wait, for which parent tables and keys. */
  waiting: Waiting | null;
  /** The ledger's counters: read = inserted + updated + unchanged + waiting + rejected; a waiting record is not loaded. */
  rows: ChunkCounts;
  /** A multi-table dataset's file: rows per target table (`rows` counts records); empty otherwise. */
  tables: ({ table: string } & TableCounts)[];
  chunks: { done: number; total: number | null };
  /** Of the rejected rows (and those retry-rejects loaded since), how many are open and how each was resolved. */
  rejects: RejectSummary;
  /** Rejects of other files of the dataset that rows of this one resolved (`newer-row`). */
  resolvedOthers: number;
  /** The first open rejects. */
  firstRejects: Reject[];
  receivedAt: string;
  finishedAt: string | null;
  /** From received to finished, including the idle seconds before any resume (`resumed.idleSeconds`). */
  seconds: number | null;
}

export async function receiptFor(db: Kysely<Database>, file: FileRow): Promise<Receipt> {
  const rejects = await fileRejects(db, file.id, { limit: REJECTS_IN_RECEIPT });
  const [waits] = file.state === 'waiting' ? await waitSummaries(db, [file.id]) : [];
  return {
    file: file.key,
    bucket: file.bucket,
    versionId: file.version_id || null,
    etag: file.etag,
    dataset: file.dataset,
    state: file.state,
    error: file.error,
    note: file.note,
    action: fileAction(file),
    resumed: resumedOf(file),
    waiting: waits ? waitingPart(waits) : null,
    rows: {
      read: file.rows_read,
      inserted: file.rows_inserted,
      updated: file.rows_updated,
      unchanged: file.rows_unchanged,
      waiting: file.rows_waiting,
      rejected: file.rows_rejected,
    },
    tables: (await tableCountsOf(db, [file.id])).get(file.id) ?? [],
    chunks: { done: file.chunks_done, total: file.chunk_count },
    rejects: await rejectSummary(db, file.id),
    resolvedOthers: await resolvedByFile(db, file.id),
    firstRejects: rejects.map((r) => ({
      line: r.line,
      column: r.column,
      kind: r.kind,
      reason: r.reason,
      raw: r.raw,
    })),
    receivedAt: file.created_at.toISOString(),
    finishedAt: file.finished_at ? new Date(file.finished_at).toISOString() : null,
    seconds: file.finished_at
      ? (new Date(file.finished_at).getTime() - file.created_at.getTime()) / 1000
      : null,
  };
}

/**
 * Writes `reports/<key>.json` next to the input, so whoever dropped the file sees the outcome without
 * database access: when it is final, stalled, or waiting for parents (rewritten once it loads). The ledger stays the record: a receipt that cannot be written is logged, not retried.
 */
export async function writeReceipt(deps: PipelineDeps, file: FileRow): Promise<void> {
  const prefix = deps.reportPrefix ?? REPORT_PREFIX;
  try {
    // One receipt per key: it speaks for the key's newest finished version, which may have finished first.
    if (await newerVersion(deps.db, file.id, FINAL_STATES)) return;
    const receipt = await receiptFor(deps.db, file);
    await deps.s3.send(
      new PutObjectCommand({
        Bucket: file.bucket,
        Key: `${prefix}${file.key}.json`,
        Body: JSON.stringify(receipt, null, 2),
        ContentType: 'application/json',
      }),
    );
  } catch (err) {
    deps.logger.warn('could not write the receipt', { key: file.key, error: String(err) });
  }
}

/**
 * Writes again the receipts of finished files whose rejects were resolved after they finished (a newer
 * file's rows resolved them), so each says what is still open.
 */
export async function writeReceiptsOf(deps: PipelineDeps, fileIds: number[]): Promise<void> {
  for (const id of fileIds) {
    // As for any receipt, the ledger stays the record: a file that cannot be read now keeps its old one.
    const file = await getFile(deps.db, id).catch((err: unknown) => {
      deps.logger.warn('could not read the file to rewrite its receipt', { fileId: id, error: String(err) });
      return undefined;
    });
    if (file && FINAL_STATES.includes(file.state)) await writeReceipt(deps, file);
  }
}
