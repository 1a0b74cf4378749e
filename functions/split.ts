import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import config from '#dropload-config';
import type { PipelineDeps } from '../shared/pipeline/services.ts';
import { lazyDeps, logger, metrics } from '../shared/runtime/lambda-deps.ts';
import {
  handleIngestMessage,
  type IngestDelivery,
  parseIngestMessage,
} from '../shared/split/ingest-message.ts';

/** Ingest queue → split: each record is an S3 event notification; each object in it is split into chunks. */
export function createSplitHandler(deps: () => Promise<PipelineDeps>, log: Logger, meter: Metrics) {
  const processor = new BatchProcessor(EventType.SQS);
  const recordHandler = async (record: SQSRecord) => {
    const d = await deps();
    // Counted before anything can fail, so every invocation publishes at least one metric.
    meter.addMetric('IngestMessages', MetricUnit.Count, 1);
    report(await handleIngestMessage(d, record, parseIngestMessage(record.body)));
  };

  /** The stage's result as log lines and metrics; a failed delivery SQS must bring back is thrown. */
  const report = ({ splits, failed }: IngestDelivery) => {
    for (const outcome of splits) {
      log.info('split', { ...outcome });
      meter.addMetric('FilesSplit', MetricUnit.Count, outcome.result === 'split' ? 1 : 0);
      meter.addMetric('FilesFailed', MetricUnit.Count, outcome.result === 'failed' ? 1 : 0);
    }
    if (failed?.settled === 'retry') throw failed.error;
  };

  return middy(
    async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
      processPartialResponse(event, recordHandler, processor, { context, throwOnFullBatchFailure: false }),
  )
    .use(injectLambdaContext(log))
    .use(logMetrics(meter));
}

export const handler = createSplitHandler(lazyDeps(config, { ingestQueue: true }), logger, metrics);
