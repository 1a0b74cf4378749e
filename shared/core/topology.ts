/**
 * The pipeline's topology, stated once: the queues (names, the env settings that carry their URLs),
 * the functions that consume them (timeouts, batch sizes, batching windows) and how a queue's
 * visibility timeout follows from its consumer. The CDK stack, the local runner and the CLI read these;
 * plain data (no CDK), so Lambdas and the CLI can import it. How long a message is retried (and so
 * every queue's `maxReceiveCount`) is derived from RETRY_POLICY in backoff.ts; bucket prefixes are in bucket-layout.ts.
 */
export type QueueName = 'ingest' | 'chunks';

export interface QueueTopology {
  /** The queue's name where dropload names it (the local runner); the CDK stack lets CloudFormation name it. */
  readonly name: string;
  /** The dead-letter queue's name, likewise. */
  readonly dlqName: string;
  /** The env setting that carries the queue's URL (the stack sets it on the functions; the CLI reads it). */
  readonly urlEnv: string;
  /** The env setting that carries the dead-letter queue's URL (CLI). */
  readonly dlqUrlEnv: string;
}

const queue = (name: string, urlEnv: string, dlqUrlEnv: string): QueueTopology => ({
  name,
  dlqName: `${name}-dlq`,
  urlEnv,
  dlqUrlEnv,
});

export const QUEUES: Readonly<Record<QueueName, QueueTopology>> = {
  ingest: queue('dropload-ingest', 'DROPLOAD_INGEST_QUEUE_URL', 'DROPLOAD_INGEST_DLQ_URL'),
  chunks: queue('dropload-chunks', 'DROPLOAD_CHUNK_QUEUE_URL', 'DROPLOAD_CHUNK_DLQ_URL'),
};

export interface ConsumerTopology {
  /** The consuming function's timeout on AWS. */
  readonly timeoutSeconds: number;
  /** Records per invocation (the event source mapping's batch size). */
  readonly batchSize: number;
  /** How long the event source waits to fill a batch (counts against the visibility timeout). */
  readonly batchingWindowSeconds: number;
  /**
   * The consuming function's memory. The measured peaks (README, "Performance", Memory) need far less:
   * split ~137 MB, a CSV load worker 205–211 MB and a Parquet one ~310 MB on the 1 GB file, so memory
   * alone would allow 256 MB for split and 512 MB for load. The rest buys CPU, which Lambda gives in
   * proportion to memory (a full vCPU at 1,769 MB): 0.58 of one at 1024 MB.
   */
  readonly memoryMB: number;
}

/**
 * The functions that consume each queue on AWS. These are the right numbers for Lambda, where each
 * invocation costs; the local runner takes its batch sizes from LOCAL_BATCH_SIZES and uses no window.
 */
export const CONSUMERS: Readonly<Record<QueueName, ConsumerTopology>> = {
  // split streams a whole file and fans it out into chunk messages: minutes for large files. One file
  // per invocation: one slow file must not hold others hostage.
  ingest: { timeoutSeconds: 5 * 60, batchSize: 1, batchingWindowSeconds: 0, memoryMB: 1024 },
  // load takes its chunks one at a time (its memory is one chunk's, whatever the batch); a batch of 10,
  // gathered for up to 5 s, means fewer invocations at a small latency cost.
  chunks: { timeoutSeconds: 3 * 60, batchSize: 10, batchingWindowSeconds: 5, memoryMB: 1024 },
};

/**
 * The local runner's batch sizes. split: the stack's. load: one chunk per invocation, where the stack
 * gathers 10. In-process invocations cost nothing, and one chunk each spreads a file's chunks over the
 * runner's `workers` loops (with 10, one loop would take a small file whole while the others idle), as
 * Lambda spreads batches over instances; the fault tests crash a worker per invocation on this basis.
 * Correctness does not depend on it: load takes a batch's chunks one at a time, each acknowledged alone.
 */
export const LOCAL_BATCH_SIZES: Readonly<Record<QueueName, number>> = {
  ingest: CONSUMERS.ingest.batchSize,
  chunks: 1,
};

/** The bucket the local runner creates, and the CLI's default where DROPLOAD_BUCKET is not set. */
export const LOCAL_BUCKET = 'dropload-local';

/** The migrate function runs the migrations during a deploy. */
export const MIGRATE_TIMEOUT_SECONDS = 5 * 60;

/** Lambda's guidance: visibility ≥ 6 × function timeout, so retries after throttles don't duplicate work. */
export const VISIBILITY_FACTOR = 6;

/** A queue's visibility timeout: the factor × its consumer's timeout, plus the batching window. */
export const visibilityTimeoutSeconds = (c: {
  timeoutSeconds: number;
  batchingWindowSeconds: number;
}): number => VISIBILITY_FACTOR * c.timeoutSeconds + c.batchingWindowSeconds;

/**
 * The local runner's time budget per invocation: the deployed function's, so that a local run does not
 * give up on work the deployed function would finish (a large gzip file's split on a busy machine takes
 * minutes; a budget of 30 s once brought its message back mid-split, to start again from zero).
 */
export const LOCAL_FUNCTION_TIMEOUT_SECONDS: Readonly<Record<QueueName, number>> = {
  ingest: CONSUMERS.ingest.timeoutSeconds,
  chunks: CONSUMERS.chunks.timeoutSeconds,
};
/**
 * The local queues' visibility: the function's timeout, without Lambda's factor (which covers retries
 * after throttles, which the in-process runner has none of), so a message a crashed local handler held
 * comes back after minutes, not half an hour, and never while its handler may still be running.
 */
export const LOCAL_VISIBILITY_TIMEOUT_SECONDS: Readonly<Record<QueueName, number>> =
  LOCAL_FUNCTION_TIMEOUT_SECONDS;

/** How long a dead-letter queue keeps a message: the longest SQS allows, two weeks to inspect and redrive. */
export const DLQ_RETENTION_SECONDS = 14 * 24 * 60 * 60;

/**
 * Rows waiting for their parents are retried by one chain of messages per file, which the ledger names
 * (shared/load/retry-chain.ts). These say when the ledger takes a chain for broken, so that the sweep
 * starts another: a pending retry this long past its due time was lost (a purged queue, an emulator
 * that keeps nothing, a dead-lettered message), and a handler that took its message this long ago and
 * never finished died (the load function's timeout). Being early costs one extra retry, which is idempotent.
 */
export interface WaitRetryTimes {
  readonly lostAfterSeconds: number;
  readonly runningForSeconds: number;
}
export const WAIT_RETRY: WaitRetryTimes = {
  lostAfterSeconds: 60,
  runningForSeconds: CONSUMERS.chunks.timeoutSeconds,
};

/** The sweep of waiting rows: on AWS a scheduled function once a minute; the local runner's timer. */
export const SWEEP_EVERY_SECONDS = 60;
export const LOCAL_SWEEP_EVERY_SECONDS = 5;
/** The sweep function's timeout: it sends at most one message per waiting file. */
export const SWEEP_TIMEOUT_SECONDS = 60;
