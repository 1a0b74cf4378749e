import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import config from '#dropload-config';
import { type ObjectRef, objectRefsFromBody } from '../shared/aws/s3-events.ts';
import { ConfigError } from '../shared/core/errors.ts';
import { getFile, recordFileAttempt } from '../shared/ledger/ledger.ts';
import { writeReceipt } from '../shared/pipeline/receipts.ts';
import { settleFailure } from '../shared/pipeline/retries.ts';
import type { PipelineDeps } from '../shared/pipeline/services.ts';
import { lazyDeps, logger, metrics } from '../shared/runtime/lambda-deps.ts';
import { splitObject } from '../shared/split/split-service.ts';

/** Ingest queue → split: each record is an S3 event notification; each object in it is split into chunks. */
export function createSplitHandler(deps: () => Promise<PipelineDeps>, log: Logger, meter: Metrics) {
  const processor = new BatchProcessor(EventType.SQS);
  const splitRecord = async (record: SQSRecord) => {
    const d = await deps();
    // Counted before anything can fail, so every invocation publishes at least one metric.
    meter.addMetric('IngestMessages', MetricUnit.Count, 1);
    let refs: ObjectRef[] = [];
    try {
      refs = objectRefsFromBody(record.body);
      for (const ref of refs) await splitOne(d, ref);
    } catch (err) {
      // Noted on each announced file the ledger has (one that never registered has no row to note it on).
      const note = async (failure: { text: string; parked: boolean }) => {
        for (const { etag, ...ref } of refs)
          if (etag)
            await recordFileAttempt(d.db, { ...ref, etag }, { ...failure, text: `split ${failure.text}` });
      };
      if ((await settleFailure(d, ingestQueue(d), record, err, note)) === 'requeued') return;
      throw err;
    }
  };
  const splitOne = async (d: PipelineDeps, ref: ObjectRef) => {
    const outcome = await splitObject(d, ref);
    log.info('split', { ...outcome });
    meter.addMetric('FilesSplit', MetricUnit.Count, outcome.result === 'split' ? 1 : 0);
    meter.addMetric('FilesFailed', MetricUnit.Count, outcome.result === 'failed' ? 1 : 0);
    const final = outcome.result === 'failed' || outcome.result === 'skipped';
    const file = final ? await getFile(d.db, outcome.fileId) : undefined;
    if (file) await writeReceipt(d, file);
  };
  return middy(
    async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
      processPartialResponse(event, splitRecord, processor, { context, throwOnFullBatchFailure: false }),
  )
    .use(injectLambdaContext(log))
    .use(logMetrics(meter));
}

function ingestQueue(d: PipelineDeps): string {
  if (!d.ingestQueueUrl) throw new ConfigError('DROPLOAD_INGEST_QUEUE_URL is not set');
  return d.ingestQueueUrl;
}

export const handler = createSplitHandler(lazyDeps(config, { ingestQueue: true }), logger, metrics);
