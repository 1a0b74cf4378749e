import type { Transaction } from 'kysely';
import type { ChunkMessage } from '../aws/messages.ts';
import { readRange } from '../aws/object-store.ts';
import type { Dataset, TargetsDataset } from '../config/dataset.ts';
import { FileRejectedError, TransientError } from '../core/errors.ts';
import { oversizedReason, STRAY_QUOTE_HINT } from '../formats/chunking.ts';
import {
  type ChunkSource,
  deleteExpanded,
  ensureExpanded,
  readExpandedRange,
} from '../formats/compressed.ts';
import { ParquetCursor, type ParquetRows, readParquetChunk } from '../formats/parquet.ts';
import { collectRecords, type ParsedRecord, type ParseOptions, parseChunk } from '../formats/parsing.ts';
import type { Reject } from '../ledger/ledger.ts';
import {
  chunkStatus,
  claimChunk,
  completeChunk,
  failFile,
  getFile,
  insertRejects,
  isChunkLoaded,
  moveTableCounts,
  noteDuplicateKeys,
} from '../ledger/ledger.ts';
import { type ResolvedRejects, resolveByNewerRows } from '../ledger/rejects.ts';
import { type Delivery, lostDelivery, recordResume } from '../ledger/resumes.ts';
import { type Database, FINAL_STATES, type FileRow } from '../ledger/schema.ts';
import { holdWhileWaiting, waitingCount } from '../ledger/waiting.ts';
import { partialFailure } from '../pipeline/partial-failure.ts';
import type { PipelineDeps } from '../pipeline/services.ts';
import { chunkRows, cursorRows, type RowExtra, rejectedRows } from './chunk-rows.ts';
import { insertOrphans } from './orphans.ts';
import { retryParked } from './retry-chain.ts';
import { type PassKeys, passKeys, recordKeys, resolvesRejects, withRowKeys } from './row-keys.ts';
import { bytesMayHoldUnstorable } from './unstorable.ts';
import { type Validated, validateRecords } from './validation.ts';
import { waitingDataset } from './write/foreign-keys.ts';
import { afterStagedChunk, ensureStage, stagedTarget } from './write/publish.ts';
import { recordCounts } from './write/records.ts';
import { writeRecords } from './write/relations.ts';
import { writeTarget } from './write/target.ts';
import { writeRowStream } from './write/writing.ts';

export interface LoadOutcome {
  fileId: number;
  index: number;
  /** `loaded`: this delivery committed the chunk; `duplicate`: an earlier one had; `file-failed`: the object is gone or changed. */
  result: 'loaded' | 'duplicate' | 'file-failed';
  /** The chunk's counts: read = inserted + updated + unchanged + waiting + rejected (waiting: rows that wait for parents). */
  read: number;
  inserted: number;
  updated: number;
  unchanged: number;
  rejected: number;
  /** The file, when this chunk was its last and it is final. */
  finishedFile?: FileRow;
  /** The file, when this chunk was its last and rows of it still wait for parents (`waiting`). */
  waitingFile?: FileRow;
  /** Records (lines) of this chunk parked to wait for their parents. */
  waiting?: number;
  reason?: string;
  /** Other files whose rejects rows of this chunk resolved (a keyed dataset's newer rows). */
  resolved?: ResolvedRejects[];
}

const PREVIEW_BYTES = 1024;

/**
 * Loads one chunk exactly once: its rows, rejects and ledger entry commit together or not at all.
 * `delivery`: which delivery of its message this is, to see work an earlier one lost (a resume).
 */
export async function loadChunk(
  deps: PipelineDeps,
  message: ChunkMessage,
  delivery?: Delivery,
): Promise<LoadOutcome> {
  const outcome = await loadOnce(deps, message, delivery);
  if (message.expandedBytes !== undefined) await releaseExpanded(deps, message, outcome);
  return outcome;
}

/**
 * A gzip file's expanded copy is read only while chunks are pending: the delivery that leaves none
 * deletes it. A duplicate delivery checks again (the one that finished the file may have died before
 * deleting); the bucket's lifecycle rule for the prefix is the last resort.
 */
async function releaseExpanded(deps: PipelineDeps, message: ChunkMessage, outcome: LoadOutcome) {
  if (outcome.result === 'loaded' && !outcome.finishedFile && !outcome.waiting) return;
  const file = outcome.finishedFile ?? (await getFile(deps.db, message.fileId));
  if (!file) return;
  const done = file.chunk_count !== null && file.chunks_done >= file.chunk_count;
  if (!done && !FINAL_STATES.includes(file.state)) return;
  await deleteExpanded(deps.s3, message.bucket, message.fileId).catch((err: unknown) =>
    deps.logger.warn('could not delete the expanded copy (the lifecycle rule will)', {
      fileId: message.fileId,
      error: String(err),
    }),
  );
}

async function loadOnce(
  deps: PipelineDeps,
  message: ChunkMessage,
  delivery: Delivery | undefined,
): Promise<LoadOutcome> {
  // The chunk's rows took from here to its commit: the console's rows/s spreads them over that time.
  const began = new Date();
  const base = {
    fileId: message.fileId,
    index: message.index,
    read: 0,
    inserted: 0,
    updated: 0,
    unchanged: 0,
    rejected: 0,
  };
  const dataset = deps.config.datasets.find((d) => d.name === message.dataset);
  if (!dataset) throw new Error(`dataset "${message.dataset}" is not in this deployment's config`);
  const status = await chunkStatus(deps.db, message.fileId, message.index);
  if (status?.state === 'loaded') {
    // A crash after the commit and before the retry was scheduled: schedule it (one per file at most).
    if ((await waitingCount(deps.db, message.fileId)) > 0) await retryParked(deps, message.fileId);
    return { ...base, result: 'duplicate' };
  }
  const lost = lostDelivery(delivery, status?.attempts ?? 0);
  if (lost) await recordResume(deps.db, message.fileId, lost);

  const source: ChunkSource = {
    bucket: message.bucket,
    key: message.key,
    etag: message.etag,
    versionId: message.versionId,
    expandedBytes: message.expandedBytes,
  };
  let chunk: ChunkData;
  try {
    chunk = await readChunk(deps, dataset, source, message);
  } catch (err) {
    if (!(err instanceof FileRejectedError)) throw err;
    return failChunkFile(deps, message, base, err);
  }
  if ('loaded' in chunk) return { ...base, result: 'duplicate' };

  // A dataset whose rows may wait for their parents: found set-based and parked, not refused.
  const waiting = await waitingDataset(deps.db, dataset);
  if (waiting) {
    const records = 'reject' in chunk ? [] : chunkRecords(chunk, waiting, message);
    // Values Postgres cannot store are rejected as on the single-table path: Parquet rows always checked.
    const checkValues =
      'parquet' in chunk || ('bytes' in chunk && bytesMayHoldUnstorable(dataset.format, chunk.bytes));
    const validated =
      'reject' in chunk
        ? { rows: [], rejects: [chunk.reject] }
        : validateRecords(waiting, records, checkValues);
    return loadRelationalChunk(deps, waiting, message, { ...validated, records }, base, began);
  }
  // Unreachable (every targets dataset waits, above); narrows the dataset to a single-table one.
  if (dataset.kind === 'targets') throw new Error(`dataset "${dataset.name}" has targets`);
  try {
    const stage = dataset.publish === 'file' ? await ensureStage(deps.db, dataset) : undefined;
    const target = stage ? stagedTarget(writeTarget(dataset), stage) : writeTarget(dataset);
    // Values the rows carry after the dataset's fields, in the target's column order.
    const extras = target.added.map((a): RowExtra => (a === 'line' ? 'line' : { value: message.fileId }));
    const keys = await passKeys(deps.db, dataset, message.columns);
    const rows = tableRows(dataset, chunk, message, extras, keys);
    return await deps.db.transaction().execute(async (trx: Transaction<Database>) => {
      if (!(await claimChunk(trx, message, began))) return { ...base, result: 'duplicate' as const };
      // The chunk is parsed and validated while it is written: the database copies one piece while the next is read.
      const written = await writeRowStream(trx, target, rows);
      const allRejects = withRowKeys(
        dataset,
        message.columns,
        [...written.invalid, ...written.rejects].sort((a, b) => a.line - b.line),
      );
      await insertRejects(trx, message.fileId, message.index, allRejects, dataset.name);
      const resolved = keys ? await resolveByNewerRows(trx, loading(message), keys.loaded(allRejects)) : [];
      const counts = {
        read: written.rows + written.invalid.length,
        inserted: written.inserted,
        updated: written.updated,
        unchanged: written.unchanged,
        waiting: 0,
        rejected: allRejects.length,
      };
      // Staged rows are not in the target yet: they count as unchanged until publishing moves them to
      // what it wrote (a file refused publishing keeps them there: nothing of it changed the table).
      const staged = { ...counts, inserted: 0, updated: 0, unchanged: counts.inserted + counts.unchanged };
      let file = await completeChunk(trx, message.fileId, message.index, stage ? staged : counts);
      const last = file.chunks_done === file.chunk_count;
      if (stage) file = await afterStagedChunk(trx, dataset, stage, file);
      const finishedFile = last ? file : undefined;
      return { ...base, ...counts, result: 'loaded' as const, finishedFile, resolved };
    });
  } catch (err) {
    if (err instanceof FileRejectedError) return failChunkFile(deps, message, base, err);
    // Anything else is retried by the caller, which notes each failed delivery on the chunk.
    throw err;
  }
}

type Base = Pick<
  LoadOutcome,
  'fileId' | 'index' | 'read' | 'inserted' | 'updated' | 'unchanged' | 'rejected'
>;

/** The rows a single-table chunk streams to its writer; `keys` notes their keys as they are read. */
function tableRows(
  dataset: Dataset,
  chunk: Exclude<ChunkData, { loaded: true }>,
  message: ChunkMessage,
  extras: RowExtra[],
  keys: PassKeys | undefined,
) {
  if ('reject' in chunk) return rejectedRows([chunk.reject]);
  if ('parquet' in chunk)
    // Parquet has no text to scan first: every row's values are checked for what Postgres cannot store.
    return cursorRows(
      dataset,
      () => new ParquetCursor(chunk.parquet),
      undefined,
      extras,
      keys,
      () => true,
    );
  // Read for this load alone: freed once decoded (see HandedOver).
  return chunkRows(dataset, { handedOver: chunk.bytes }, parseOptions(dataset, message), extras, keys);
}

/** The file a chunk loads, as a reject its rows resolve names it. */
const loading = (message: ChunkMessage) => ({
  dataset: message.dataset,
  fileId: message.fileId,
  key: message.key,
});

/** A reason that holds for the whole file (a missing table, say): fail it now instead of retrying into the DLQ. */
async function failChunkFile(
  deps: PipelineDeps,
  message: ChunkMessage,
  base: Base,
  err: FileRejectedError,
): Promise<LoadOutcome> {
  const dataset = deps.config.datasets.find((d) => d.name === message.dataset);
  await failFile(deps.db, message.fileId, err.message, err.action, (file, chunks) =>
    partialFailure(dataset, file, chunks, err),
  );
  return {
    ...base,
    result: 'file-failed',
    reason: err.message,
    finishedFile: await getFile(deps.db, message.fileId),
  };
}

/**
 * A chunk whose rows may wait (a multi-table dataset's, or a single-table one's whose table has foreign
 * keys): claim, write every target parents first, rejects, parked orphans and ledger in
 * one transaction. Rows whose parent is missing wait in `dropload.orphan`; the file is `waiting` (once
 * its chunks are done) until they load or their wait runs out. Their retry is scheduled after the commit.
 */
async function loadRelationalChunk(
  deps: PipelineDeps,
  dataset: TargetsDataset,
  message: ChunkMessage,
  { rows, rejects, records }: Validated & { records: ParsedRecord[] },
  base: Base,
  began: Date,
): Promise<LoadOutcome> {
  try {
    const resolves = await resolvesRejects(deps.db, dataset);
    const outcome = await deps.db
      .transaction()
      .execute(async (trx: Transaction<Database>): Promise<LoadOutcome> => {
        if (!(await claimChunk(trx, message, began))) return { ...base, result: 'duplicate' };
        const written = await writeRecords(trx, dataset, rows, message.index);
        const allRejects = withRowKeys(
          dataset,
          message.columns,
          [...rejects, ...written.rejects.map((r) => r.reject)].sort((a, b) => a.line - b.line),
        );
        await insertRejects(trx, message.fileId, message.index, allRejects, dataset.name);
        await insertOrphans(trx, message.fileId, written.orphans, dataset.orphanWaitSeconds);
        // A record with a row still waiting for its parent has not loaded yet.
        const notLoaded = new Set([...allRejects, ...written.orphans.map((o) => o.unit)].map((r) => r.line));
        const resolved = resolves
          ? await resolveByNewerRows(trx, loading(message), recordKeys(dataset, records, notLoaded))
          : [];
        // In records, as `read` counts them: a record with a row parked is waiting, not loaded.
        const read = rows.length + rejects.length;
        const counts = {
          read,
          ...recordCounts(read, written, {
            rejected: allRejects.map((r) => r.line),
            waiting: written.orphans.map((o) => o.unit.line),
          }),
        };
        if (written.duplicates) await noteDuplicateKeys(trx, message.fileId, written.duplicates);
        const file = await holdWhileWaiting(
          trx,
          await completeChunk(trx, message.fileId, message.index, counts),
        );
        await moveTableCounts(trx, message.fileId, written.tables);
        return {
          ...base,
          ...counts,
          result: 'loaded',
          finishedFile: FINAL_STATES.includes(file.state) ? file : undefined,
          waitingFile: file.state === 'waiting' ? file : undefined,
          resolved,
        };
      });
    if ((outcome.waiting ?? 0) > 0 || outcome.waitingFile) await retryParked(deps, message.fileId);
    return outcome;
  } catch (err) {
    if (err instanceof FileRejectedError) return failChunkFile(deps, message, base, err);
    // Anything else is retried by the caller, which notes each failed delivery on the chunk.
    throw err;
  }
}

/**
 * A chunk's bytes, a Parquet chunk's rows, or the one reject an oversized record makes (its bytes are
 * never read whole); `loaded`: another delivery loaded it meanwhile (found while re-making a gzip copy).
 */
type ChunkData = { bytes: Uint8Array } | { parquet: ParquetRows } | { reject: Reject } | { loaded: true };

/** All of a chunk's records at once, for the multi-table path. */
function chunkRecords(
  chunk: Exclude<ChunkData, { reject: Reject } | { loaded: true }>,
  dataset: Dataset,
  message: ChunkMessage,
) {
  if ('parquet' in chunk) return collectRecords(new ParquetCursor(chunk.parquet), []);
  return parseChunk(chunk.bytes, parseOptions(dataset, message));
}

function parseOptions(dataset: Dataset, message: ChunkMessage): ParseOptions {
  return {
    format: dataset.format,
    delimiter: dataset.delimiter,
    quote: dataset.quote,
    columns: message.columns,
    firstLine: message.firstLine,
  };
}

async function readChunk(
  deps: PipelineDeps,
  dataset: Dataset,
  source: ChunkSource,
  message: ChunkMessage,
): Promise<ChunkData> {
  const read = (start: number, end: number) =>
    source.expandedBytes === undefined
      ? readRange(deps.s3, source, start, end)
      : readExpanded(deps, source, message, start, end);
  if (message.oversized) {
    const preview = await read(message.start, Math.min(message.end, message.start + PREVIEW_BYTES));
    if (!preview) return { loaded: true };
    const size = message.end - message.start;
    const reason = message.unterminated
      ? `a quoted field opened on this line is never closed: the rest of the file (${size} bytes) reads as one record (${STRAY_QUOTE_HINT})`
      : oversizedReason(size, dataset.maxRecordBytes) + quotedRun(preview, size);
    const raw = `${new TextDecoder().decode(preview)}${size > PREVIEW_BYTES ? '…' : ''}`;
    // The preview is not the record: `unreadable`, so retry-rejects leaves it.
    return { reject: { line: message.firstLine, column: null, kind: 'unreadable', reason, raw } };
  }
  if (dataset.format === 'parquet')
    return { parquet: await readParquetChunk(deps.s3, source, message, dataset) };
  const bytes = await read(message.start, message.end);
  return bytes ? { bytes } : { loaded: true };
}

/** An oversized record whose first KiB already holds a line break runs over several lines, inside a quote. */
function quotedRun(preview: Uint8Array, size: number): string {
  const lf = preview.indexOf(0x0a);
  // The record's own line break is its last byte.
  return lf !== -1 && lf < size - 1
    ? ` (a quoted field runs over several lines from here: ${STRAY_QUOTE_HINT})`
    : '';
}

/**
 * A range of a gzip file's expanded bytes, from its expanded copy. A copy that is missing (expired,
 * deleted, lost with an emulator that keeps nothing) or not the one the chunks were planned on is
 * re-made from the pinned original first, unless no chunk needs it any more: undefined when this chunk
 * was loaded by another delivery meanwhile. The compressed original is never read as if it were the copy.
 */
async function readExpanded(
  deps: PipelineDeps,
  source: ChunkSource,
  message: ChunkMessage,
  start: number,
  end: number,
): Promise<Uint8Array | undefined> {
  const bytes = await readExpandedRange(deps.s3, source, message.fileId, start, end);
  if (bytes) return bytes;
  if (await isChunkLoaded(deps.db, message.fileId, message.index)) return undefined;
  const file = await getFile(deps.db, message.fileId);
  // A failed file's copy was deleted on purpose; its own reason stands.
  if (file?.state === 'failed') throw new FileRejectedError(file.error ?? 'the file failed');
  deps.logger.warn('expanded copy missing: re-making it from the original', {
    fileId: message.fileId,
    key: message.key,
  });
  await ensureExpanded(deps.s3, source, message.fileId);
  const again = await readExpandedRange(deps.s3, source, message.fileId, start, end);
  if (again) return again;
  throw new TransientError(
    `the expanded copy of s3://${source.bucket}/${source.key} vanished again just after it was re-made`,
  );
}
