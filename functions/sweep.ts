import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, ScheduledEvent } from 'aws-lambda';
import config from '#dropload-config';
import { sweepWaiting } from '../shared/load/sweep.ts';
import type { PipelineDeps } from '../shared/pipeline/services.ts';
import { lazyDeps, logger, metrics } from '../shared/runtime/lambda-deps.ts';

/** The minute's schedule → the sweep of waiting rows: files whose retry chain broke get a retry now. */
export function createSweepHandler(deps: () => Promise<PipelineDeps>, log: Logger, meter: Metrics) {
  return middy(async (_event: ScheduledEvent, _context: Context): Promise<{ redriven: number }> => {
    const { redriven } = await sweepWaiting(await deps());
    // Published every run (0 mostly): a steady non-zero means messages keep getting lost.
    meter.addMetric('WaitingFilesRedriven', MetricUnit.Count, redriven.length);
    if (redriven.length > 0) log.info('sweep', { redriven: redriven.map((s) => s.fileId) });
    return { redriven: redriven.length };
  })
    .use(injectLambdaContext(log))
    .use(logMetrics(meter));
}

export const handler = createSweepHandler(lazyDeps(config), logger, metrics);
