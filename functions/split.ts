import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import config from '#dropload-config';
import { lazyDeps, logger, metrics } from '../shared/lambda-deps.ts';
import { getFile } from '../shared/ledger.ts';
import { writeReceipt } from '../shared/receipts.ts';
import { objectRefsFromBody } from '../shared/s3-events.ts';
import type { PipelineDeps } from '../shared/services.ts';
import { splitObject } from '../shared/split-service.ts';

/** Ingest queue → split: each record is an S3 event notification; each object in it is split into chunks. */
export function createSplitHandler(deps: () => Promise<PipelineDeps>, log: Logger, meter: Metrics) {
  const processor = new BatchProcessor(EventType.SQS);
  const splitRecord = async (record: SQSRecord) => {
    const d = await deps();
    // Counted before anything can fail, so every invocation publishes at least one metric.
    meter.addMetric('IngestMessages', MetricUnit.Count, 1);
    for (const ref of objectRefsFromBody(record.body)) {
      const outcome = await splitObject(d, ref);
      log.info('split', { ...outcome });
      meter.addMetric('FilesSplit', MetricUnit.Count, outcome.result === 'split' ? 1 : 0);
      meter.addMetric('FilesFailed', MetricUnit.Count, outcome.result === 'failed' ? 1 : 0);
      const final = outcome.result === 'failed' || outcome.result === 'skipped';
      const file = final ? await getFile(d.db, outcome.fileId) : undefined;
      if (file) await writeReceipt(d, file);
    }
  };
  return middy(
    async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
      processPartialResponse(event, splitRecord, processor, { context, throwOnFullBatchFailure: false }),
  )
    .use(injectLambdaContext(log))
    .use(logMetrics(meter));
}

export const handler = createSplitHandler(lazyDeps(config, true), logger, metrics);
