import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { Upload } from '@aws-sdk/lib-storage';
import { notificationFor, type ObjectRef, unquoteEtag } from '../shared/aws/s3-events.ts';
import type { ResolvedConfig } from '../shared/config/config.ts';
import { RETRY_POLICY, type RetryPolicy } from '../shared/core/backoff.ts';
import { isOwnKey } from '../shared/core/bucket-layout.ts';
import {
  LOCAL_BATCH_SIZES,
  LOCAL_FUNCTION_TIMEOUT_SECONDS,
  LOCAL_SWEEP_EVERY_SECONDS,
  type WaitRetryTimes,
} from '../shared/core/topology.ts';
import { backfill } from '../shared/ops/backfill.ts';
import type { PipelineDeps } from '../shared/pipeline/services.ts';
import { watchDatabase } from './database-watch.ts';
import { EventSource, type SourceFailure, type SqsHandler } from './event-source.ts';
import { errorText, type FailingQueue, sourceFailureText } from './failure-text.ts';
import type { LinkingEmulator } from './linking-emulator.ts';
import { defaultLoadConcurrency, loadThreadsWanted, startLoadThreads, threadPlan } from './load-threads.ts';
import { connectionBudget, type LocalStack, startLocalStack } from './local-stack.ts';
import { type FileEtag, PART_BYTES } from './object-etag.ts';
import { StderrLogger } from './stderr-logger.ts';
import { queueIsEmpty, startSweeper } from './sweeper.ts';

export interface PipelineOptions {
  config: ResolvedConfig;
  port?: number;
  databasePort?: number;
  /** Load workers running at once (the load mapping's maximum concurrency); default defaultLoadConcurrency. */
  workers?: number;
  /**
   * The module `config` was loaded from: needed for load threads, which load it again (see
   * load-threads.ts). Without it, or with `wrap`, the loads run on this thread.
   */
  configFile?: string;
  logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'SILENT';
  env?: Record<string, string | undefined>;
  visibilityTimeoutSeconds?: number;
  /** How long failures are retried before a message is parked (fault tests shorten it). */
  retry?: RetryPolicy;
  /** Keep the embedded emulator's and database's state in this folder across restarts (see LocalStackOptions). */
  stateDir?: string;
  /** The embedded emulator, already starting (see LocalStackOptions.emulator). */
  emulator?: Promise<LinkingEmulator>;
  /** Wraps a handler before its event source invokes it: how fault tests crash a worker at a chosen point. */
  wrap?: (fn: 'split' | 'load', handler: SqsHandler) => SqsHandler;
  /** When a retry chain of waiting rows counts as broken (tests shorten it); default WAIT_RETRY. */
  waitRetry?: WaitRetryTimes;
  /** How often the sweep of waiting rows runs (default LOCAL_SWEEP_EVERY_SECONDS); 0: never. */
  sweepEveryMs?: number;
  /**
   * Where the runner's own failures are told, a line each naming the file and chunk and what happens
   * next (`dev` prints them); default: the logger, as errors.
   */
  onFailure?: (line: string, err: unknown) => void;
}

export interface LocalPipeline {
  stack: LocalStack;
  deps: PipelineDeps;
  upload(path: string, key: string): Promise<ObjectRef>;
  /**
   * Puts a local file in the bucket as the cheapest way the endpoint has: linked where the stack can
   * (LocalStack.link: no copy, no upload; with its ETag when `known`, see LinkedObjects.link), else
   * uploaded; then announced, as `upload` does.
   */
  drop(path: string, key: string, known?: FileEtag): Promise<ObjectRef>;
  /** Sends the ingest queue the event S3 would have sent, where the endpoint does not. */
  announce(ref: ObjectRef): Promise<void>;
  /**
   * Announces every new object in the bucket but dropload's own, as its notification would. It starts
   * with a `backfill --resume`: on kept state (`dev` after a restart, even after kill -9) the files the
   * ledger has not finished (`resumed`), and objects it never saw, are announced once; finished ones are not.
   */
  watchBucket(onNew?: (ref: ObjectRef, resumed: boolean) => void): () => void;
  /** Handler invocations running now: a commit's follow-up (a wake, a receipt) may still be on its way. */
  busy(): number;
  /** Resolves when a handler invocation (a split or a load) next ends. */
  invocationEnded(): Promise<void>;
  /** Worker threads the loads run on; 0: on this thread (see PipelineOptions.configFile). */
  loadThreads: number;
  stop(): Promise<void>;
}

/** Uploads a local file, in parts when it is large (lib-storage decides), and says which version it made. */
export async function uploadFile(
  s3: S3Client,
  bucket: string,
  key: string,
  path: string,
): Promise<ObjectRef> {
  const { size } = await stat(path);
  const upload = new Upload({
    client: s3,
    params: { Bucket: bucket, Key: key, Body: createReadStream(path) },
    partSize: PART_BYTES,
    // One part in flight: the target is the embedded emulator or a local endpoint, where parallel parts
    // gain little and each holds another 8 MiB (lib-storage's default of 4 held 77-120 MB of Buffers on
    // `run`'s main thread during the upload of the 82 MB bench file, against 26-47 MB with one).
    queueSize: 1,
  });
  const res = await upload.done();
  return { bucket, key, etag: unquoteEtag(res.ETag ?? ''), versionId: res.VersionId, size };
}

/**
 * The handlers' modules (with the AWS SDK's and Powertools' parts only they use), loaded while the stack
 * starts: meanwhile this thread mostly waits for the migrations and the emulator's thread, and start-up
 * is mostly loading modules.
 */
function handlerModules() {
  return Promise.all([
    import('../functions/split.ts'),
    import('../functions/load.ts'),
    import('@aws-lambda-powertools/metrics'),
  ]);
}
/** How often `watchBucket` lists the bucket. */
const POLL_MS = 500;

/** The local stack plus the two event source mappings, invoking the real handlers in this process. */
export async function startPipeline(options: PipelineOptions): Promise<LocalPipeline> {
  const env = options.env ?? process.env;
  const budget = connectionBudget(env);
  const workers = Math.max(1, Math.min(options.workers ?? defaultLoadConcurrency(budget), budget));
  // A wrapped handler (fault tests) is a function of this thread: it cannot run on another.
  const plan = threadPlan(workers, budget, options.configFile && !options.wrap ? loadThreadsWanted(env) : 0);
  const loading = handlerModules();
  // Awaited below, once the stack is up; a stack that fails to start is the error to tell.
  loading.catch(() => {});
  const stack = await startLocalStack({
    ownConnections: plan.main,
    config: options.config,
    port: options.port,
    databasePort: options.databasePort,
    stateDir: options.stateDir,
    env: options.env,
    visibilityTimeoutSeconds: options.visibilityTimeoutSeconds,
    retry: options.retry,
    emulator: options.emulator,
  });
  const [{ createSplitHandler }, { createLoadHandler }, { Metrics }] = await loading.catch(async (err) => {
    await stack.stop();
    throw err;
  });
  const wrap = options.wrap ?? ((_fn, h) => h);
  const logger = new StderrLogger({ serviceName: 'dropload', logLevel: options.logLevel ?? 'WARN' });
  // EMF lines are for CloudWatch; locally they would only bury the report.
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  const metrics = new Metrics({ namespace: 'dropload', serviceName: 'dropload' });
  metrics.setThrowOnEmptyMetrics(false);
  const deps: PipelineDeps = {
    s3: stack.s3,
    sqs: stack.sqs,
    db: stack.db,
    config: options.config,
    chunkQueueUrl: stack.chunks.url,
    ingestQueueUrl: stack.ingest.url,
    logger,
    retry: options.retry,
    waitRetry: options.waitRetry,
  };
  const getDeps = async () => deps;
  const tell = options.onFailure ?? ((line, err) => logger.error(line, { error: String(err) }));
  const database = watchDatabase(tell, options.retry ?? RETRY_POLICY);
  const sourceError = (name: FailingQueue['name']) => (err: unknown, failure: SourceFailure) => {
    // A handler that threw because the database is away: said once for all of them (database-watch.ts).
    if (failure.stage === 'invoke' && database.failed(err)) return;
    for (const line of sourceFailureText(err, failure, { ...stack[name], name })) tell(line, err);
  };
  const failed = (what: string, next: string) => (err: unknown) => {
    tell(`${what} (${errorText(err)}): ${next}`, err);
  };
  const loadThreads =
    plan.threads > 0 && options.configFile
      ? startLoadThreads({
          count: plan.threads,
          setup: {
            configFile: options.configFile,
            endpoint: stack.endpoint,
            databaseUrl: stack.databaseUrl,
            poolMax: plan.perThread,
            chunkQueueUrl: stack.chunks.url,
            ingestQueueUrl: stack.ingest.url,
            logLevel: options.logLevel ?? 'WARN',
            env: { ...(options.env ?? process.env) },
            retry: options.retry,
            waitRetry: options.waitRetry,
          },
        })
      : undefined;
  const sources = [
    new EventSource({
      sqs: stack.sqs,
      queueUrl: stack.ingest.url,
      queueArn: stack.ingest.arn,
      functionName: 'dropload-split',
      handler: wrap('split', createSplitHandler(getDeps, logger, metrics)),
      // No batching window locally (see LOCAL_BATCH_SIZES).
      batchSize: LOCAL_BATCH_SIZES.ingest,
      batchingWindowMs: 0,
      concurrency: 1,
      timeoutMs: LOCAL_FUNCTION_TIMEOUT_SECONDS.ingest * 1000,
      onError: sourceError('ingest'),
    }),
    new EventSource({
      sqs: stack.sqs,
      queueUrl: stack.chunks.url,
      queueArn: stack.chunks.arn,
      functionName: 'dropload-load',
      handler: loadThreads?.handler ?? wrap('load', createLoadHandler(getDeps, logger, metrics)),
      batchSize: LOCAL_BATCH_SIZES.chunks,
      batchingWindowMs: 0,
      concurrency: workers,
      timeoutMs: LOCAL_FUNCTION_TIMEOUT_SECONDS.chunks * 1000,
      onError: sourceError('chunks'),
    }),
  ];
  for (const s of sources) s.start();
  const sweepEveryMs = options.sweepEveryMs ?? LOCAL_SWEEP_EVERY_SECONDS * 1000;
  const sweeper =
    sweepEveryMs > 0
      ? startSweeper(deps, {
          everyMs: sweepEveryMs,
          // An empty queue (an in-memory emulator, one that lost its state) holds no retry an earlier run sent.
          firstSweepsEverything: await queueIsEmpty(stack.sqs, stack.chunks.url),
          onError: (err) =>
            database.failed(err) ||
            failed('the sweep of waiting rows failed', `sweeping again in ${sweepEveryMs / 1000} s`)(err),
          onSuccess: () => database.succeeded(),
        })
      : undefined;

  const announce = async (ref: ObjectRef) => {
    if (stack.bucketNotifications) return;
    await stack.sqs.send(
      new SendMessageCommand({ QueueUrl: stack.ingest.url, MessageBody: notificationFor(ref) }),
    );
  };

  const upload = async (path: string, key: string): Promise<ObjectRef> => {
    const ref = await uploadFile(stack.s3, stack.bucket, key, path);
    await announce(ref);
    return ref;
  };

  const drop = async (path: string, key: string, known?: FileEtag): Promise<ObjectRef> => {
    if (!stack.link) return upload(path, key);
    const { etag, size } = await stack.link(key, path, known);
    const ref = { bucket: stack.bucket, key, etag, size };
    await announce(ref);
    return ref;
  };

  const watchBucket = (onNew?: (ref: ObjectRef, resumed: boolean) => void) => {
    const seen = new Map<string, string>();
    let stopped = false;
    const resume = async () => {
      const { items } = await backfill(
        { ...stack, logger },
        {
          bucket: stack.bucket,
          ingestQueueUrl: stack.ingest.url,
          chunkQueueUrl: stack.chunks.url,
          datasetPrefixes: options.config.datasets.map((d) => d.prefix),
          resume: true,
        },
      );
      for (const { ref, action, unfinished } of items) {
        seen.set(ref.key, ref.etag ?? '');
        // An object the ledger never saw is new, not resumed: it arrived while the stack was down.
        if (action === 'enqueued') onNew?.(ref, unfinished === true);
      }
    };
    // The whole bucket, as its notification covers it (a file outside every prefix is skipped, visibly).
    const poll = async () => {
      let token: string | undefined;
      do {
        const page = await stack.s3.send(
          new ListObjectsV2Command({ Bucket: stack.bucket, ContinuationToken: token }),
        );
        for (const obj of page.Contents ?? []) {
          const etag = unquoteEtag(obj.ETag ?? '');
          if (!obj.Key || isOwnKey(obj.Key) || seen.get(obj.Key) === etag) continue;
          seen.set(obj.Key, etag);
          const ref = { bucket: stack.bucket, key: obj.Key, etag, size: obj.Size };
          await announce(ref);
          onNew?.(ref, false);
        }
        token = page.NextContinuationToken;
      } while (token);
    };
    const tick = async () => {
      // Where the bucket notifies the queue itself, it did so for whatever arrived while the stack was down.
      if (!stack.bucketNotifications)
        await resume().catch(
          failed(
            'could not look for the files the last run left unfinished',
            'the bucket listing announces each object instead',
          ),
        );
      while (!stopped) {
        await poll().catch(
          failed(`could not list s3://${stack.bucket} for new files`, `listing again in ${POLL_MS / 1000} s`),
        );
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    };
    void tick();
    return () => {
      stopped = true;
    };
  };

  return {
    stack,
    deps,
    upload,
    drop,
    announce,
    watchBucket,
    busy: () => sources.reduce((n, s) => n + s.busy, 0),
    invocationEnded: () => Promise.race(sources.map((s) => s.ended())),
    loadThreads: loadThreads ? plan.threads : 0,
    stop: async () => {
      await sweeper?.stop();
      // An in-memory emulator's queues end with the stack: nothing a poll might take is kept.
      const abandonPolls = stack.embedded.emulator && !stack.stateDir;
      await Promise.all(sources.map((s) => s.stop({ abandonPolls })));
      await loadThreads?.stop();
      await stack.stop();
    },
  };
}
