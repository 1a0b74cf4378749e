import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { ChangeMessageVisibilityCommand } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import config from '#dropload-config';
import { backoffSeconds } from '../shared/backoff.ts';
import { continueInOrder } from '../shared/chunk-queue.ts';
import { classifyError } from '../shared/errors.ts';
import { lazyDeps, logger, metrics } from '../shared/lambda-deps.ts';
import { loadChunk } from '../shared/load-service.ts';
import { isOrphanMessage, LoadMessage } from '../shared/messages.ts';
import { retryOrphans } from '../shared/orphans.ts';
import { writeReceipt } from '../shared/receipts.ts';
import type { PipelineDeps } from '../shared/services.ts';

/** Chunk queue → load: each record is one chunk; a failed chunk is retried alone (partial batch response). */
export function createLoadHandler(deps: () => Promise<PipelineDeps>, log: Logger, meter: Metrics) {
  const processor = new BatchProcessor(EventType.SQS);
  const loadRecord = async (record: SQSRecord) => {
    const d = await deps();
    // Counted before anything can fail, so every invocation publishes at least one metric.
    meter.addMetric('ChunkMessages', MetricUnit.Count, 1);
    const message = LoadMessage.parse(JSON.parse(record.body));
    if (isOrphanMessage(message)) {
      // Rows waiting for their parents: retried (and, past their wait, rejected) in one transaction.
      try {
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
      } catch (err) {
        if (classifyError(err) === 'transient') await delayRetry(d, record);
        throw err;
      }
      return;
    }
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
    } catch (err) {
      if (classifyError(err) === 'transient') await delayRetry(d, record);
      throw err;
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

/** A transient failure comes back after an exponential backoff rather than the queue's fixed timeout. */
async function delayRetry(d: PipelineDeps, record: SQSRecord): Promise<void> {
  const receives = Number(record.attributes.ApproximateReceiveCount) || 1;
  await d.sqs
    .send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: d.chunkQueueUrl,
        ReceiptHandle: record.receiptHandle,
        VisibilityTimeout: backoffSeconds(receives),
      }),
    )
    .catch((err: unknown) => d.logger.warn('could not delay the retry', { error: String(err) }));
}

// The chunk queue's URL: retries of rows waiting for their parents are delayed messages on it.
export const handler = createLoadHandler(lazyDeps(config, true), logger, metrics);
