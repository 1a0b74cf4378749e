import { parentPort, workerData } from 'node:worker_threads';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createLoadHandler } from '../functions/load.ts';
import { loadConfig } from '../shared/config/config.ts';
import { createDb, createPool } from '../shared/ledger/connection.ts';
import type { PipelineDeps } from '../shared/pipeline/services.ts';
import { awsClients } from '../shared/runtime/environment.ts';
import { lambdaContext } from './event-source.ts';
import type { LoadThreadSetup } from './load-threads.ts';
import { StderrLogger } from './stderr-logger.ts';

// A load worker thread (see load-threads.ts): like a Lambda container, it builds its dependencies once
// (config, clients, its share of the connection budget) and runs the load handler on each invocation.

/** An invocation as the main thread hands it over: the context's functions do not cross threads. */
export interface Invocation {
  id: number;
  event: SQSEvent;
  functionName: string;
  remainingMs: number;
}

export type LoadThreadMessage =
  | { id: number; response: SQSBatchResponse | undefined }
  | { id: number; error: string }
  | { stopped: true };

const port = parentPort;
if (!port) throw new Error('local/load-worker.ts runs as a worker thread (startLoadThreads)');
const setup = workerData as LoadThreadSetup;
const logger = new StderrLogger({ serviceName: 'dropload', logLevel: setup.logLevel });
const metrics = new Metrics({ namespace: 'dropload', serviceName: 'dropload' });
metrics.setThrowOnEmptyMetrics(false);

let deps: Promise<PipelineDeps> | undefined;
/** Built on the first invocation, and again after a failed build (the next one retries it). */
const getDeps = () => {
  deps ??= buildDeps();
  deps.catch(() => {
    deps = undefined;
  });
  return deps;
};

async function buildDeps(): Promise<PipelineDeps> {
  const config = await loadConfig(setup.configFile);
  const db = createDb(createPool({ connectionString: setup.databaseUrl, poolMax: setup.poolMax }));
  return {
    ...awsClients({ ...setup.env, AWS_ENDPOINT_URL: setup.endpoint }),
    db,
    config,
    chunkQueueUrl: setup.chunkQueueUrl,
    ingestQueueUrl: setup.ingestQueueUrl,
    logger,
    retry: setup.retry,
    waitRetry: setup.waitRetry,
  };
}

const handler = createLoadHandler(getDeps, logger, metrics);
// Started now: the modules and the config load while the file uploads.
getDeps().catch(() => {});

const post = (m: LoadThreadMessage) => port.postMessage(m);

port.on('message', async (m: Invocation | 'stop') => {
  if (m === 'stop') {
    await (await deps?.catch(() => undefined))?.db.destroy();
    post({ stopped: true });
    port.close();
    return;
  }
  const region = m.event.Records[0]?.awsRegion ?? 'us-east-1';
  try {
    const response = await handler(m.event, lambdaContext(m.functionName, m.remainingMs, region));
    post({ id: m.id, response: response ?? undefined });
  } catch (err) {
    post({ id: m.id, error: err instanceof Error ? err.message : String(err) });
  }
});
