import type { Transaction } from 'kysely';
import type { Dataset } from './dataset.ts';
import type { Database, FileRow } from './db/schema.ts';
import { classifyError, errorMessage, FileRejectedError } from './errors.ts';
import {
  claimChunk,
  completeChunk,
  failFile,
  insertRejects,
  isChunkLoaded,
  recordChunkError,
} from './ledger.ts';
import type { ChunkMessage } from './messages.ts';
import { type PinnedObject, readRange } from './object-store.ts';
import { parseChunk } from './parsing.ts';
import type { PipelineDeps } from './services.ts';
import { type Reject, type ValidRow, validateRecords } from './validation.ts';
import { writeRows } from './writing.ts';

export interface LoadOutcome {
  fileId: number;
  index: number;
  /** `loaded`: this delivery committed the chunk; `duplicate`: an earlier one had; `file-failed`: the object is gone or changed. */
  result: 'loaded' | 'duplicate' | 'file-failed';
  read: number;
  inserted: number;
  updated: number;
  rejected: number;
  /** The file, when this chunk was its last. */
  finishedFile?: FileRow;
  reason?: string;
}

const PREVIEW_BYTES = 1024;

/** Loads one chunk exactly once: its rows, rejects and ledger entry commit together or not at all. */
export async function loadChunk(deps: PipelineDeps, message: ChunkMessage): Promise<LoadOutcome> {
  const base = {
    fileId: message.fileId,
    index: message.index,
    read: 0,
    inserted: 0,
    updated: 0,
    rejected: 0,
  };
  const dataset = deps.config.datasets.find((d) => d.name === message.dataset);
  if (!dataset) throw new Error(`dataset "${message.dataset}" is not in this deployment's config`);
  if (await isChunkLoaded(deps.db, message.fileId, message.index)) return { ...base, result: 'duplicate' };

  const pinned: PinnedObject = {
    bucket: message.bucket,
    key: message.key,
    etag: message.etag,
    versionId: message.versionId,
  };
  let rows: ValidRow[];
  let rejects: Reject[];
  try {
    ({ rows, rejects } = await readChunk(deps, dataset, pinned, message));
  } catch (err) {
    if (!(err instanceof FileRejectedError)) throw err;
    await failFile(deps.db, message.fileId, err.message);
    return { ...base, result: 'file-failed', reason: err.message };
  }

  try {
    return await deps.db.transaction().execute(async (trx: Transaction<Database>) => {
      if (!(await claimChunk(trx, message.fileId, message.index)))
        return { ...base, result: 'duplicate' as const };
      const written = await writeRows(trx, dataset, rows);
      const allRejects = [...rejects, ...written.rejects].sort((a, b) => a.line - b.line);
      await insertRejects(trx, message.fileId, message.index, allRejects);
      const counts = {
        read: rows.length + rejects.length,
        inserted: written.inserted,
        updated: written.updated,
        rejected: allRejects.length,
      };
      const file = await completeChunk(trx, message.fileId, message.index, counts);
      const finished = file.chunks_done === file.chunk_count ? file : undefined;
      return { ...base, ...counts, result: 'loaded' as const, finishedFile: finished };
    });
  } catch (err) {
    if (classifyError(err) !== 'transient') {
      await recordChunkError(deps.db, message.fileId, message.index, errorMessage(err)).catch(() => {});
    }
    throw err;
  }
}

async function readChunk(deps: PipelineDeps, dataset: Dataset, pinned: PinnedObject, message: ChunkMessage) {
  if (message.oversized) {
    const preview = await readRange(
      deps.s3,
      pinned,
      message.start,
      Math.min(message.end, message.start + PREVIEW_BYTES),
    );
    const size = message.end - message.start;
    const reason = message.unterminated
      ? `a quoted field opened on this line is never closed: the rest of the file (${size} bytes) reads as one record`
      : `record is ${size} bytes, over the limit of ${dataset.maxRecordBytes} bytes (maxRecordBytes)`;
    const raw = `${new TextDecoder().decode(preview)}${size > PREVIEW_BYTES ? '…' : ''}`;
    return { rows: [], rejects: [{ line: message.firstLine, column: null, reason, raw }] };
  }
  const bytes = await readRange(deps.s3, pinned, message.start, message.end);
  const records = parseChunk(bytes, {
    format: dataset.format,
    delimiter: dataset.delimiter,
    columns: message.columns,
    firstLine: message.firstLine,
  });
  return validateRecords(dataset, records);
}
