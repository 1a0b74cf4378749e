import type { Logger } from '@aws-lambda-powertools/logger';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Kysely } from 'kysely';
import type { ResolvedConfig } from './config.ts';
import type { Database } from './db/schema.ts';

export type Log = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

/** What the split and load services run on; handed in so tests, the local runner and Lambda share the code. */
export interface PipelineDeps {
  s3: S3Client;
  sqs: SQSClient;
  db: Kysely<Database>;
  config: ResolvedConfig;
  chunkQueueUrl: string;
  logger: Log;
  /** Where per-file receipts go in the bucket; default `reports/`. */
  reportPrefix?: string;
}
