import type { Transaction } from 'kysely';
import { headObject, type PinnedObject, streamObject } from '../aws/object-store.ts';
import type { ObjectRef } from '../aws/s3-events.ts';
import { type Dataset, datasetForKey, noDatasetReason } from '../config/dataset.ts';
import { classifyError, DROP_AGAIN, FileRejectedError, sqlState } from '../core/errors.ts';
import { type FilePlan, planChunks } from '../formats/chunking.ts';
import {
  adoptExpanded,
  type ChunkSource,
  deleteExpanded,
  ensureExpanded,
  expandAndPlan,
  isGzip,
} from '../formats/compressed.ts';
import { checkFile } from '../formats/file-check.ts';
import { planParquet } from '../formats/parquet.ts';
import {
  failFile,
  getFile,
  pendingChunks,
  plannedEnd,
  recordExpandedBytes,
  recordPlan,
  registerFile,
  retriable,
  retryFile,
} from '../ledger/ledger.ts';
import { interruptedWhenAnnounced, recordResume } from '../ledger/resumes.ts';
import { type Database, FINAL_STATES, type FileRow } from '../ledger/schema.ts';
import { loadsInOrder, sendChunkMessages, sendPendingChunks } from '../pipeline/chunk-queue.ts';
import { partialFailure } from '../pipeline/partial-failure.ts';
import type { PipelineDeps } from '../pipeline/services.ts';
import { StreamedChunks } from './streamed-chunks.ts';

export interface SplitOutcome {
  fileId: number;
  key: string;
  dataset: string | null;
  /** `split`: chunks sent; `resent`: a redelivery re-sent unfinished chunks; `duplicate`: already done. */
  result: 'split' | 'resent' | 'duplicate' | 'failed' | 'skipped';
  chunks: number;
  reason?: string;
}

const outcome = (
  file: FileRow,
  result: SplitOutcome['result'],
  chunks = 0,
  reason?: string,
): SplitOutcome => ({
  fileId: file.id,
  key: file.key,
  dataset: file.dataset,
  result,
  chunks,
  reason,
});

/** Splits one object version into chunk messages. Safe to run twice: the ledger remembers each version. */
export async function splitObject(deps: PipelineDeps, ref: ObjectRef): Promise<SplitOutcome> {
  const dataset = datasetForKey(deps.config.datasets, ref.key);
  // Recorded from the event alone: the functions may read only under dataset prefixes.
  if (!dataset)
    return finishUnsplit(deps, ref, null, 'skipped', noDatasetReason(deps.config.datasets, ref.key));

  let head: Awaited<ReturnType<typeof headObject>>;
  try {
    head = await headObject(deps.s3, ref.bucket, ref.key, ref.versionId);
  } catch (err) {
    if (!(err instanceof FileRejectedError)) throw err;
    return finishUnsplit(deps, ref, dataset.name, 'failed', err.message, err.action);
  }
  if (ref.etag && !ref.versionId && head.etag !== ref.etag) {
    // Without versioning the announced bytes are gone; the overwrite sent its own event.
    const reason = `superseded: overwritten before it was split (ETag ${ref.etag} → ${head.etag}); the new version loads on its own`;
    return finishUnsplit(deps, ref, dataset.name, 'skipped', reason);
  }

  const pinned: PinnedObject = {
    bucket: ref.bucket,
    key: ref.key,
    etag: head.etag,
    versionId: head.versionId,
  };
  const registered = await registerFile(deps.db, {
    ...identity({ ...ref, versionId: head.versionId }, head.etag),
    size: head.size,
    dataset: dataset.name,
    state: 'splitting',
    lastModified: head.lastModified,
    sequencer: ref.sequencer,
  });
  const { created } = registered;
  // Announced again while its work was under way (a restart's `backfill --resume`, a redelivery, a rerun):
  // what did that work stopped. See ledger/resumes.ts.
  if (!created && interruptedWhenAnnounced(registered.file)) await recordResume(deps.db, registered.file.id);
  // A version that failed before any of its rows loaded (a missing table, say) loads again when announced again.
  const file =
    !created && retriable(registered.file) ? await retryFile(deps.db, registered.file.id) : registered.file;
  if (!created && FINAL_STATES.includes(file.state)) return outcome(file, 'duplicate');
  // Announced again (a replay, `backfill --resume`, a redelivery) while splitting, loading or stalled:
  // a file with a plan re-sends the chunks that have not loaded; one without is split (again).
  if (!created && file.chunk_count !== null) return resend(deps, dataset, file, pinned);

  let source: ChunkSource | undefined;
  const streamed = loadsInOrder(dataset)
    ? undefined
    : new StreamedChunks(deps, file.id, dataset, pinned, head.size);
  try {
    const planned = await planFile(deps, dataset, pinned, head.size, file.id, streamed);
    source = planned.source;
    const { plan } = planned;
    const columns = await checkWholeFile(dataset, plan, head.size, streamed);
    await deps.db.transaction().execute((trx: Transaction<Database>) =>
      recordPlan(trx, file.id, {
        chunks: streamed ? streamed.rest(plan) : plan.chunks,
        count: plan.chunks.length,
        columns: columns ?? null,
        records: plan.records,
        note: fileNote(dataset, plan, columns),
        expandedBytes: source?.expandedBytes ?? null,
      }),
    );
    // A file with no rows is loaded already: no chunk will read its expanded copy.
    if (plan.chunks.length === 0) await discardExpanded(deps, source, file.id);
    const sent = (streamed?.sent ?? 0) + (await sendChunks(deps, file, dataset, source, columns, streamed));
    // chunks: the file's; sent: the messages this split sent (only the first chunk, for a dataset
    // that loads a file in order).
    deps.logger.info('file split', {
      fileId: file.id,
      key: ref.key,
      chunks: plan.chunks.length,
      sent,
      records: plan.records,
    });
    return outcome(file, 'split', sent);
  } catch (err) {
    const reason = fileFailure(err);
    if (reason === undefined) throw err;
    const action = err instanceof FileRejectedError ? err.action : DROP_AGAIN;
    // Chunks sent before may have loaded: the failure then tells which, as a file failing mid-load does.
    const refused = err instanceof FileRejectedError ? err : new FileRejectedError(reason);
    await failFile(deps.db, file.id, reason, action, (now, chunks) =>
      partialFailure(dataset, now, chunks, refused),
    );
    await discardExpanded(deps, source, file.id);
    return outcome(file, 'failed', 0, reason);
  }
}

/**
 * The file's checks on its whole plan. Those a split that sent chunks while it cut ran before its
 * first send pass again; what only the end of the file tells may refuse it now, with chunks of it
 * loaded: the rest of its plan is stored first, so that its failure tells every chunk.
 */
async function checkWholeFile(
  dataset: Dataset,
  plan: FilePlan,
  size: number,
  streamed: StreamedChunks | undefined,
): Promise<string[] | undefined> {
  const sentBefore = (streamed?.sent ?? 0) > 0;
  try {
    return checkFile(dataset, plan, size, sentBefore);
  } catch (err) {
    if (sentBefore && err instanceof FileRejectedError) await streamed?.storeRest(plan);
    throw err;
  }
}

/**
 * Why a file fails for good when `err` ends its split: the file is at fault (FileRejectedError), or
 * the database refused something read from it (SQLSTATE class 22/23: a byte sequence it cannot store,
 * say). Either would end every delivery the same way. Undefined for anything else, which is retried.
 */
function fileFailure(err: unknown): string | undefined {
  if (err instanceof FileRejectedError) return err.message;
  if (classifyError(err) !== 'data') return undefined;
  return `the database refused what was read from the file (SQLSTATE ${sqlState(err)}): ${(err as Error).message}`;
}

/**
 * A redelivered or re-announced event for a file that is loading (a crash between commit and send,
 * chunk messages lost with an emulator that keeps nothing): send the chunks that have not loaded
 * (loads are idempotent). A gzip file's chunks are ranges of its expanded bytes, so its expanded copy
 * must be there first: re-made from the pinned original if it is gone, never replaced by the original.
 */
async function resend(
  deps: PipelineDeps,
  dataset: Dataset,
  file: FileRow,
  pinned: PinnedObject,
): Promise<SplitOutcome> {
  try {
    const source = await resendSource(deps, dataset, file, pinned);
    const resent = await sendChunks(deps, file, dataset, source, file.columns ?? undefined);
    if (source.expandedBytes !== undefined) {
      // The last chunk may have loaded (and deleted the copy) while this one re-made it.
      const now = await getFile(deps.db, file.id);
      if (now && FINAL_STATES.includes(now.state)) await discardExpanded(deps, source, file.id);
    }
    return outcome(file, 'resent', resent);
  } catch (err) {
    if (!(err instanceof FileRejectedError)) throw err;
    await failFile(deps.db, file.id, err.message, err.action, (now, chunks) =>
      partialFailure(dataset, now, chunks, err),
    );
    return outcome(file, 'failed', 0, err.message);
  }
}

/** What a loading file's chunks read: the pinned object, or a gzip file's (re-made if missing) expanded copy. */
async function resendSource(
  deps: PipelineDeps,
  dataset: Dataset,
  file: FileRow,
  pinned: PinnedObject,
): Promise<ChunkSource> {
  let expandedBytes = file.expanded_bytes;
  if (expandedBytes === null) {
    // Split before the ledger kept the expanded size: never read a gzip file's ranges from the original.
    if (dataset.format === 'parquet' || !(await isGzip(deps.s3, pinned, file.size))) return pinned;
    const end = await plannedEnd(deps.db, file.id);
    expandedBytes = await adoptExpanded(deps.s3, pinned, file.id, dataset, end);
    await recordExpandedBytes(deps.db, file.id, expandedBytes);
  }
  const source = { ...pinned, expandedBytes };
  if ((await pendingChunks(deps.db, file.id)).length > 0) await ensureExpanded(deps.s3, source, file.id);
  return source;
}

/** A gzip file's expanded copy is not needed once the file failed or has no chunk left to load. */
async function discardExpanded(
  deps: PipelineDeps,
  source: ChunkSource | undefined,
  fileId: number,
): Promise<void> {
  if (source?.expandedBytes === undefined) return;
  await deleteExpanded(deps.s3, source.bucket, fileId).catch((err: unknown) =>
    deps.logger.warn('could not delete the expanded copy (the lifecycle rule will)', {
      fileId,
      error: String(err),
    }),
  );
}

/** The file's chunk plan, and what the chunks' byte ranges are in (a gzip file's expanded bytes). */
async function planFile(
  deps: PipelineDeps,
  dataset: Dataset,
  pinned: PinnedObject,
  size: number,
  fileId: number,
  streamed?: StreamedChunks,
): Promise<{ source: ChunkSource; plan: FilePlan }> {
  if (dataset.format === 'parquet')
    return { source: pinned, plan: await planParquet(deps.s3, pinned, size, dataset) };
  if (await isGzip(deps.s3, pinned, size)) {
    const { expanded, plan } = await expandAndPlan(deps.s3, pinned, fileId, dataset);
    return { source: expanded, plan };
  }
  // A plain text file's chunks are sent while it is cut; a gzip or Parquet file's once it is planned.
  const options = { ...dataset, onChunks: streamed?.onChunks };
  return { source: pinned, plan: await planChunks(await streamObject(deps.s3, pinned), options) };
}

function identity(ref: ObjectRef, etag: string) {
  return { bucket: ref.bucket, key: ref.key, versionId: ref.versionId ?? '', etag };
}

/** Registers the announced version as finished without splitting it: failed or skipped, with the reason. */
async function finishUnsplit(
  deps: PipelineDeps,
  ref: ObjectRef,
  dataset: string | null,
  state: 'failed' | 'skipped',
  reason: string,
  action?: string,
): Promise<SplitOutcome> {
  const { file } = await registerFile(deps.db, {
    ...identity(ref, ref.etag ?? ''),
    size: ref.size ?? 0,
    dataset,
    state,
    error: reason,
    action,
  });
  return outcome(file, state, 0, reason);
}

/** What a person should know about a file that loads anyway: no rows, or columns nothing reads. */
function fileNote(dataset: Dataset, plan: FilePlan, columns: string[] | undefined): string | null {
  const notes: string[] = [];
  if (plan.records === 0)
    notes.push(dataset.format === 'parquet' ? 'file has no rows' : 'file has a header but no data rows');
  const ignored = (columns ?? []).filter((c) => !dataset.fields.includes(c));
  if (ignored.length > 0)
    notes.push(`columns not in the schema were ignored: ${ignored.map((c) => `"${c}"`).join(', ')}`);
  return notes.length > 0 ? notes.join('; ') : null;
}

/**
 * Sends the file's pending chunks (only the first, for datasets that load a file in order); of a file
 * whose chunks were sent while it was cut, those stored at its end.
 */
async function sendChunks(
  deps: PipelineDeps,
  file: FileRow,
  dataset: Dataset,
  source: ChunkSource,
  columns: string[] | undefined,
  streamed?: StreamedChunks,
): Promise<number> {
  const { chunk_count } = await deps.db
    .selectFrom('dropload.file')
    .select('chunk_count')
    .where('id', '=', file.id)
    .executeTakeFirstOrThrow();
  const count = chunk_count ?? 0;
  if (!streamed) return sendPendingChunks(deps, file.id, count, dataset, source, columns);
  const rest = await pendingChunks(deps.db, file.id, { from: streamed.stored, to: count });
  return sendChunkMessages(deps, { fileId: file.id, chunkCount: count, dataset, source, columns }, rest);
}
