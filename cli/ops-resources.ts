import { GetQueueUrlCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Kysely } from 'kysely';
import type { QueueName } from '../shared/aws/messages.ts';
import { ConfigError } from '../shared/core/errors.ts';
import { createDb, createPool } from '../shared/ledger/connection.ts';
import type { Database } from '../shared/ledger/schema.ts';

type Env = Record<string, string | undefined>;

export interface QueueUrls {
  url: string;
  dlqUrl: string;
}

/** The env settings the CDK stack outputs, and the names `local/local-stack.ts` creates. */
const QUEUES: Record<QueueName, { url: string; dlqUrl: string; name: string }> = {
  ingest: { url: 'DROPLOAD_INGEST_QUEUE_URL', dlqUrl: 'DROPLOAD_INGEST_DLQ_URL', name: 'dropload-ingest' },
  chunks: { url: 'DROPLOAD_CHUNK_QUEUE_URL', dlqUrl: 'DROPLOAD_CHUNK_DLQ_URL', name: 'dropload-chunks' },
};

async function queueUrlByName(sqs: SQSClient, name: string, setting: string, env: Env): Promise<string> {
  try {
    const res = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
    return res.QueueUrl as string;
  } catch (err) {
    const where = env.AWS_ENDPOINT_URL ?? 'AWS';
    throw new ConfigError(`no queue named ${name} on ${where} (${(err as Error).name}); set ${setting}`);
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
    url: env[q.url] || (await queueUrlByName(sqs, q.name, q.url, env)),
    dlqUrl: env[q.dlqUrl] || (await queueUrlByName(sqs, `${q.name}-dlq`, q.dlqUrl, env)),
  };
}

export function resolveBucket(env: Env = process.env): string {
  return env.DROPLOAD_BUCKET || 'dropload-local';
}

/** Opens the ledger for one command and closes it afterwards; names DATABASE_URL when it is missing. */
export async function withLedger<T>(
  command: string,
  use: (db: Kysely<Database>) => Promise<T>,
  env: Env = process.env,
): Promise<T> {
  const url = env.DATABASE_URL;
  if (!url)
    throw new ConfigError(`${command} reads the ledger: set DATABASE_URL (\`dropload dev\` prints one)`);
  const db = createDb(createPool({ connectionString: url, poolMax: 1 }));
  try {
    return await use(db);
  } finally {
    await db.destroy();
  }
}
