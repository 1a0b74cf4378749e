import { GetQueueUrlCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Kysely } from 'kysely';
import { ConfigError } from '../shared/core/errors.ts';
import { LOCAL_BUCKET, QUEUES, type QueueName } from '../shared/core/topology.ts';
import { createDb, createPool } from '../shared/ledger/connection.ts';
import type { Database } from '../shared/ledger/schema.ts';

type Env = Record<string, string | undefined>;

export interface QueueUrls {
  url: string;
  dlqUrl: string;
}

async function queueUrlByName(sqs: SQSClient, name: string, setting: string, env: Env): Promise<string> {
  try {
    const res = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
    return res.QueueUrl as string;
  } catch (err) {
    const where = env.AWS_ENDPOINT_URL ?? 'AWS';
    throw new ConfigError(`no queue named ${name} on ${where} (${(err as Error).name}); set ${setting}`, {
      cause: err,
    });
  }
}

/** A queue and its DLQ: from the env the stack outputs, else by the local stack's queue names. */
export async function resolveQueues(
  sqs: SQSClient,
  queue: QueueName,
  env: Env = process.env,
): Promise<QueueUrls> {
  const q = QUEUES[queue];
  return {
    url: env[q.urlEnv] || (await queueUrlByName(sqs, q.name, q.urlEnv, env)),
    dlqUrl: env[q.dlqUrlEnv] || (await queueUrlByName(sqs, q.dlqName, q.dlqUrlEnv, env)),
  };
}

/** Whether a queue to send to is named: the stack's outputs, or an endpoint (`dev`'s, LocalStack) with the local names. */
export function queueConfigured(env: Env = process.env): boolean {
  return Boolean(env.AWS_ENDPOINT_URL || env[QUEUES.chunks.urlEnv]);
}

export function resolveBucket(env: Env = process.env): string {
  return env.DROPLOAD_BUCKET || LOCAL_BUCKET;
}

/** The ledger's connection pool for a command; names DATABASE_URL when it is missing. */
export function openLedger(command: string, env: Env = process.env): Kysely<Database> {
  const url = env.DATABASE_URL;
  if (!url)
    throw new ConfigError(`${command} reads the ledger: set DATABASE_URL (\`dropload dev\` prints one)`);
  return createDb(createPool({ connectionString: url, poolMax: 1 }));
}

/** Opens the ledger for one command and closes it afterwards. */
export async function withLedger<T>(
  command: string,
  use: (db: Kysely<Database>) => Promise<T>,
  env: Env = process.env,
): Promise<T> {
  const db = openLedger(command, env);
  try {
    return await use(db);
  } finally {
    await db.destroy();
  }
}
