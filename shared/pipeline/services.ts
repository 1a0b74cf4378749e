import type { Logger } from '@aws-lambda-powertools/logger';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Kysely } from 'kysely';
import type { ResolvedConfig } from '../config/config.ts';
import type { RetryPolicy } from '../core/backoff.ts';
import type { WaitRetryTimes } from '../core/topology.ts';
import type { Database } from '../ledger/schema.ts';

export type Log = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

/** What the split and load services run on; handed in so tests, the local runner and Lambda share the code. */
export interface PipelineDeps {
  s3: S3Client;
  sqs: SQSClient;
  db: Kysely<Database>;
  config: ResolvedConfig;
  chunkQueueUrl: string;
  /** Where split's messages come from; a delayed copy of one goes back there (see retries.ts). */
  ingestQueueUrl?: string;
  logger: Log;
  /** How long failures are retried; default RETRY_POLICY (fault tests shorten it). */
  retry?: RetryPolicy;
  /** Where per-file receipts go in the bucket; default `reports/`. */
  reportPrefix?: string;
  /** When a retry chain of waiting rows counts as broken; default WAIT_RETRY (tests shorten it). */
  waitRetry?: WaitRetryTimes;
}
