import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { type ChunkMessage, messageBody } from '../aws/messages.ts';
import type { Dataset } from '../config/dataset.ts';
import { TransientError } from '../core/errors.ts';
import type { ChunkSource } from '../formats/compressed.ts';
import { pendingChunks } from '../ledger/ledger.ts';
import type { ChunkRow } from '../ledger/schema.ts';
import type { PipelineDeps } from './services.ts';

/**
 * An upsert keeps the file's last line per key. Within a chunk the writer sees to that; across chunks
 * only their order can, so a dataset that upserts (and publishes chunk by chunk) loads a file's chunks
 * one after another: split sends the first, and each load sends the next once it has committed.
 * Files still load in parallel; insert datasets and `publish: 'file'` (which orders by line when it
 * publishes) load every chunk at once.
 */
export function loadsInOrder(dataset: Dataset): boolean {
  if (dataset.publish === 'file') return false;
  if (dataset.kind === 'targets') return dataset.targets.some((t) => t.mode === 'upsert');
  return dataset.mode === 'upsert';
}

const SQS_BATCH = 10;

/** Where a file's chunks are read from, and what each of its chunk messages carries besides its range. */
export interface ChunkTarget {
  fileId: number;
  /** The file's chunk count; undefined while the split still cuts it. */
  chunkCount: number | undefined;
  dataset: Dataset;
  source: ChunkSource;
  columns: string[] | undefined;
}

/** Sends a message for each pending chunk of the file (only the first one, for in-order datasets). */
export async function sendPendingChunks(
  deps: PipelineDeps,
  fileId: number,
  chunkCount: number | undefined,
  dataset: Dataset,
  source: ChunkSource,
  columns: string[] | undefined,
): Promise<number> {
  const pending = await pendingChunks(deps.db, fileId);
  const due = loadsInOrder(dataset) ? pending.slice(0, 1) : pending;
  return sendChunkMessages(deps, { fileId, chunkCount, dataset, source, columns }, due);
}

/** Sends one message for each of `chunks`, of the file `to` tells. */
export async function sendChunkMessages(
  deps: PipelineDeps,
  to: ChunkTarget,
  chunks: ChunkRow[],
): Promise<number> {
  const { fileId, dataset, source, columns } = to;
  const messages: ChunkMessage[] = chunks.map((c) => ({
    fileId,
    dataset: dataset.name,
    bucket: source.bucket,
    key: source.key,
    ...(source.versionId ? { versionId: source.versionId } : {}),
    etag: source.etag,
    index: c.idx,
    ...(to.chunkCount !== undefined ? { count: to.chunkCount } : {}),
    start: c.start_byte,
    end: c.end_byte,
    firstLine: c.first_line,
    ...(columns ? { columns } : {}),
    ...(c.oversized ? { oversized: true } : {}),
    ...(c.unterminated ? { unterminated: true } : {}),
    ...(source.expandedBytes !== undefined ? { expandedBytes: source.expandedBytes } : {}),
  }));
  for (let i = 0; i < messages.length; i += SQS_BATCH) {
    const batch = messages.slice(i, i + SQS_BATCH);
    const res = await deps.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: deps.chunkQueueUrl,
        Entries: batch.map((m) => ({ Id: String(m.index), MessageBody: messageBody(m) })),
      }),
    );
    if (res.Failed && res.Failed.length > 0) {
      throw new TransientError(
        `chunk queue refused ${res.Failed.length} message(s): ${res.Failed[0]?.Message}`,
      );
    }
  }
  return messages.length;
}

/**
 * After a chunk of an in-order dataset committed (or turned out to have been committed before: a
 * redelivery after a crash), send the next one. Sending it twice is harmless: loads are idempotent.
 */
export async function continueInOrder(deps: PipelineDeps, message: ChunkMessage): Promise<number> {
  const dataset = deps.config.datasets.find((d) => d.name === message.dataset);
  if (!dataset || !loadsInOrder(dataset)) return 0;
  const source = {
    bucket: message.bucket,
    key: message.key,
    etag: message.etag,
    versionId: message.versionId,
    expandedBytes: message.expandedBytes,
  };
  return sendPendingChunks(deps, message.fileId, message.count, dataset, source, message.columns);
}
