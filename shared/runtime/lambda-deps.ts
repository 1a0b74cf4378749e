import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { type DroploadConfig, resolveConfig } from '../config/config.ts';
import { QUEUES } from '../core/topology.ts';
import { createDb, RenewingPool } from '../ledger/connection.ts';
import type { PipelineDeps } from '../pipeline/services.ts';
import { awsClients, databaseSettingsSource, required } from './environment.ts';

export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'dropload' });
export const metrics = new Metrics({ namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'dropload' });

/**
 * Builds a Lambda's dependencies once per container, on first use: configuration errors surface on the
 * first invocation with the setting named. The database secret is read at cold start, and again when the
 * database refuses its credentials (the secret rotates).
 */
export function lazyDeps(
  config: DroploadConfig,
  needs: { ingestQueue?: boolean } = {},
): () => Promise<PipelineDeps> {
  let deps: Promise<PipelineDeps> | undefined;
  return () => {
    deps ??= (async () => {
      const resolved = resolveConfig(config, 'bundled config');
      // Both stages send to the chunk queue; split also re-queues its own messages (shared/pipeline/retries.ts).
      const chunkQueueUrl = required(process.env, QUEUES.chunks.urlEnv);
      const ingestQueueUrl = needs.ingestQueue ? required(process.env, QUEUES.ingest.urlEnv) : undefined;
      const db = createDb(await RenewingPool.open(databaseSettingsSource()));
      return {
        ...awsClients(),
        db,
        config: resolved,
        chunkQueueUrl,
        ingestQueueUrl,
        logger,
        reportPrefix: process.env.DROPLOAD_REPORT_PREFIX,
      };
    })();
    deps.catch(() => {
      deps = undefined;
    });
    return deps;
  };
}
