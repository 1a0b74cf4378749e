import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import config from '#dropload-config';
import {
  type ChunkMessage,
  isOrphanMessage,
  LoadMessage,
  type OrphanMessage,
} from '../shared/aws/messages.ts';
import { getFile, recordChunkAttempt, recordFileAttempt } from '../shared/ledger/ledger.ts';
import { loadChunk } from '../shared/load/load-service.ts';
import { retryOrphans } from '../shared/load/orphans.ts';
import { continueInOrder } from '../shared/pipeline/chunk-queue.ts';
import { writeReceipt } from '../shared/pipeline/receipts.ts';
import { type FailedDelivery, settleFailure } from '../shared/pipeline/retries.ts';
import type { PipelineDeps } from '../shared/pipeline/services.ts';
import { lazyDeps, logger, metrics } from '../shared/runtime/lambda-deps.ts';

/** Chunk queue → load: each record is one chunk; a failed chunk is retried alone (partial batch response). */
export function createLoadHandler(deps: () => Promise<PipelineDeps>, log: Logger, meter: Metrics) {
  const processor = new BatchProcessor(EventType.SQS);
  const loadRecord = async (record: SQSRecord) => {
    const d = await deps();
    // Counted before anything can fail, so every invocation publishes at least one metric.
    meter.addMetric('ChunkMessages', MetricUnit.Count, 1);
    const parsed = LoadMessage.safeParse(safeJson(record.body));
    // A body that is no chunk: nothing to note it on; retried, then parked for a person to look at.
    const message = parsed.success ? parsed.data : undefined;
    try {
      if (!parsed.success) throw new Error(`not a dropload message: ${parsed.error.message}`);
      await (isOrphanMessage(parsed.data) ? retryWaiting(d, parsed.data) : loadOne(d, parsed.data));
    } catch (err) {
      const note = async (failure: FailedDelivery) => {
        if (!message) return;
        // Waiting rows are the file's, not a chunk's; the file keeps loading while they wait.
        if (isOrphanMessage(message))
          return recordFileAttempt(
            d.db,
            { id: message.fileId },
            { text: `retrying its waiting rows: ${failure.text}`, parked: false },
          );
        await recordChunkAttempt(d.db, { fileId: message.fileId, index: message.index }, failure);
        // A stalled file's receipt says so, with the reason, while it waits for a replay.
        const file = failure.parked ? await getFile(d.db, message.fileId) : undefined;
        if (file?.state === 'stalled') await writeReceipt(d, file);
      };
      if ((await settleFailure(d, d.chunkQueueUrl, record, err, note)) === 'requeued') return;
      throw err;
    }
  };

  /** Rows waiting for their parents: retried (and, past their wait, rejected) in one transaction. */
  const retryWaiting = async (d: PipelineDeps, message: OrphanMessage) => {
    const outcome = await retryOrphans(d, message);
    if (outcome.finishedFile) await writeReceipt(d, outcome.finishedFile);
    log.info('orphans', {
      ...outcome,
      attempt: message.attempt,
      finishedFile: outcome.finishedFile?.state,
    });
    meter.addMetric('RowsLoaded', MetricUnit.Count, outcome.resolved);
    meter.addMetric('RowsRejected', MetricUnit.Count, outcome.rejected);
    if (outcome.finishedFile) meter.addMetric('FilesLoaded', MetricUnit.Count, 1);
  };

  const loadOne = async (d: PipelineDeps, message: ChunkMessage) => {
    log.appendKeys({ fileId: message.fileId, key: message.key, chunk: message.index });
    const started = performance.now();
    try {
      const outcome = await loadChunk(d, message);
      if (outcome.result !== 'file-failed') await continueInOrder(d, message);
      if (outcome.finishedFile) await writeReceipt(d, outcome.finishedFile);
      log.info('chunk', { ...outcome, finishedFile: outcome.finishedFile?.state });
      meter.addMetric('RowsLoaded', MetricUnit.Count, outcome.inserted + outcome.updated);
      meter.addMetric('RowsRejected', MetricUnit.Count, outcome.rejected);
      meter.addMetric('ChunkLatencyMs', MetricUnit.Milliseconds, performance.now() - started);
      if (outcome.finishedFile) meter.addMetric('FilesLoaded', MetricUnit.Count, 1);
      if (outcome.result === 'file-failed') meter.addMetric('FilesFailed', MetricUnit.Count, 1);
    } finally {
      log.removeKeys(['fileId', 'key', 'chunk']);
    }
  };
  return middy(
    async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
      // One chunk at a time (Powertools would run the whole batch at once): an instance's memory is one
      // chunk's whatever the batch size, and its pool's connections are never waited on by fetched chunks.
      processPartialResponse(event, loadRecord, processor, {
        context,
        throwOnFullBatchFailure: false,
        processInParallel: false,
      }),
  )
    .use(injectLambdaContext(log))
    .use(logMetrics(meter));
}

function safeJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

// The chunk queue's URL: retries of rows waiting for their parents are delayed messages on it.
export const handler = createLoadHandler(lazyDeps(config), logger, metrics);
