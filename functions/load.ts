import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import config from '#dropload-config';
import { isOrphanMessage } from '../shared/aws/messages.ts';
import { handleLoadMessage, type LoadDelivery, parseLoadMessage } from '../shared/load/load-message.ts';
import type { PipelineDeps } from '../shared/pipeline/services.ts';
import { lazyDeps, logger, metrics } from '../shared/runtime/lambda-deps.ts';

/** Chunk queue → load: each record is one chunk; a failed chunk is retried alone (partial batch response). */
export function createLoadHandler(deps: () => Promise<PipelineDeps>, log: Logger, meter: Metrics) {
  const processor = new BatchProcessor(EventType.SQS);
  const recordHandler = async (record: SQSRecord) => {
    const d = await deps();
    // Counted before anything can fail, so every invocation publishes at least one metric.
    meter.addMetric('ChunkMessages', MetricUnit.Count, 1);
    const message = parseLoadMessage(record.body);
    const chunk = message instanceof Error || isOrphanMessage(message) ? undefined : message;
    if (chunk) log.appendKeys({ fileId: chunk.fileId, key: chunk.key, chunk: chunk.index });
    const started = performance.now();
    try {
      report(await handleLoadMessage(d, record, message), performance.now() - started);
    } finally {
      if (chunk) log.removeKeys(['fileId', 'key', 'chunk']);
    }
  };

  /** The stage's result as log lines and metrics; a failed delivery SQS must bring back is thrown. */
  const report = (delivery: LoadDelivery, ms: number) => {
    if (delivery.kind === 'failed') {
      if (delivery.settled === 'retry') throw delivery.error;
      return;
    }
    const { outcome } = delivery;
    const finishedFile = outcome.finishedFile?.state;
    if (delivery.kind === 'orphans') {
      log.info('orphans', { ...outcome, attempt: delivery.message.attempt, finishedFile });
      // Records that waited and are in the table now (inserted, updated or unchanged), as the file counts them.
      meter.addMetric('RowsLoaded', MetricUnit.Count, outcome.inserted + outcome.updated + outcome.unchanged);
      meter.addMetric('RowsRejected', MetricUnit.Count, outcome.rejected);
      if (outcome.finishedFile) meter.addMetric('FilesLoaded', MetricUnit.Count, 1);
      return;
    }
    log.info('chunk', { ...outcome, finishedFile });
    // The stored counters' sum: a record parked to wait for its parent is not loaded (RowsWaiting).
    meter.addMetric('RowsLoaded', MetricUnit.Count, outcome.inserted + outcome.updated + outcome.unchanged);
    meter.addMetric('RowsWaiting', MetricUnit.Count, outcome.waiting ?? 0);
    meter.addMetric('RowsRejected', MetricUnit.Count, outcome.rejected);
    meter.addMetric('ChunkLatencyMs', MetricUnit.Milliseconds, ms);
    if (outcome.finishedFile) meter.addMetric('FilesLoaded', MetricUnit.Count, 1);
    if (delivery.outcome.result === 'file-failed') meter.addMetric('FilesFailed', MetricUnit.Count, 1);
  };

  return middy(
    async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
      // One chunk at a time (Powertools would run the whole batch at once): an instance's memory is one
      // chunk's whatever the batch size, and its pool's connections are never waited on by fetched chunks.
      processPartialResponse(event, recordHandler, processor, {
        context,
        throwOnFullBatchFailure: false,
        processInParallel: false,
      }),
  )
    .use(injectLambdaContext(log))
    .use(logMetrics(meter));
}

export const handler = createLoadHandler(lazyDeps(config), logger, metrics);
