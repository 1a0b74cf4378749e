import module from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { PipelineDeps } from '../shared/pipeline/services.ts';
import type { LoadThreadSetup } from './load-threads.ts';

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

// The main thread's compile cache (cli/bin.js) is not a worker's: enabled here, before the handler's
// modules are imported, a thread compiles them in about half the time from the second run on.
module.enableCompileCache?.();
const [
  { Metrics },
  { createLoadHandler },
  { loadConfig },
  { createDb, createPool },
  { awsClients },
  { lambdaContext },
  { StderrLogger },
] = await Promise.all([
  import('@aws-lambda-powertools/metrics'),
  import('../functions/load.ts'),
  import('../shared/config/config.ts'),
  import('../shared/ledger/connection.ts'),
  import('../shared/runtime/environment.ts'),
  import('./event-source.ts'),
  import('./stderr-logger.ts'),
]);
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
