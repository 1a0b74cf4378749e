import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  BucketAlreadyOwnedByYou,
  CreateBucketCommand,
  GetBucketNotificationConfigurationCommand,
  PutBucketNotificationConfigurationCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Kysely } from 'kysely';
import type pg from 'pg';
import type { ResolvedConfig } from '../shared/config/config.ts';
import { maxReceiveCount, RETRY_POLICY, type RetryPolicy } from '../shared/core/backoff.ts';
import { ConfigError } from '../shared/core/errors.ts';
import {
  DLQ_RETENTION_SECONDS,
  LOCAL_BUCKET,
  LOCAL_VISIBILITY_TIMEOUT_SECONDS,
  QUEUES,
  type QueueName,
  type QueueTopology,
} from '../shared/core/topology.ts';
import { createDb, createPool } from '../shared/ledger/connection.ts';
import { migrateToLatest } from '../shared/ledger/migrate.ts';
import type { Database } from '../shared/ledger/schema.ts';
import { awsClients } from '../shared/runtime/environment.ts';
import { LOOPBACK } from './embedded-emulator.ts';
import { startEmulatorThread } from './emulator-thread.ts';
import type { LinkedRef } from './linked-objects.ts';
import type { LinkingEmulator } from './linking-emulator.ts';
import type { FileEtag } from './object-etag.ts';

export interface QueuePair {
  url: string;
  arn: string;
  dlqUrl: string;
  dlqArn: string;
  /** Seconds a message taken and not deleted stays invisible: when a failed one comes back. */
  visibilityTimeoutSeconds: number;
  /** Deliveries before a message is parked in the dead-letter queue (its redrive policy). */
  maxReceiveCount: number;
}

export interface LocalStack {
  endpoint: string;
  bucket: string;
  ingest: QueuePair;
  chunks: QueuePair;
  databaseUrl: string;
  /** Whether the endpoint delivers the bucket's ObjectCreated events itself; if not, the runner forwards them. */
  bucketNotifications: boolean;
  embedded: { emulator: boolean; database: boolean };
  /** Where the embedded emulator and database keep their state; undefined: in memory, gone at stop. */
  stateDir?: string;
  /** The whole pipeline's connection budget (see connectionBudget). */
  poolMax: number;
  /**
   * Makes a local file the object `key` of the bucket without copying it (see linked-objects.ts): only
   * in the embedded emulator that keeps nothing (`run`, tests); undefined where files are uploaded.
   */
  link?: (key: string, file: string, known?: FileEtag) => Promise<LinkedRef>;
  s3: S3Client;
  sqs: SQSClient;
  db: Kysely<Database>;
  stop(): Promise<void>;
}

export interface LocalStackOptions {
  config: ResolvedConfig;
  /** Port for the embedded emulator; 0 picks a free one. */
  port?: number;
  /** Port for the embedded Postgres; 0 picks a free one. */
  databasePort?: number;
  bucket?: string;
  env?: Record<string, string | undefined>;
  /** Seconds before an unacknowledged message comes back (fault tests shorten it). */
  visibilityTimeoutSeconds?: number;
  /** How long failures are retried before a message is parked (fault tests shorten it). */
  retry?: RetryPolicy;
  /**
   * A folder for the embedded emulator's queues and objects and the embedded database's data, kept
   * across restarts (`dev`); unset: they live in memory and end with the stack (`run`, tests).
   */
  stateDir?: string;
  /** The stack's own pool's size, when other pools (the load threads') hold the rest of the budget. */
  ownConnections?: number;
  /**
   * The embedded emulator, started by the caller (`run`: on its own thread, before it loaded its
   * modules) instead of on a thread of the stack's; the stack then stops it, as its own. Only without
   * AWS_ENDPOINT_URL.
   */
  emulator?: Promise<LinkingEmulator>;
}

/**
 * The embedded database runs one backend. Its socket server can multiplex clients, but concurrent
 * extended-protocol traffic from several connections gets interleaved ("bind message supplies 2
 * parameters, but prepared statement requires 12"), so the pool and the server stay at one connection.
 */
const PGLITE_CONNECTIONS = 1;
/** Room for other processes (`dropload status`, psql) next to the pipeline's own connection. */
const PGLITE_OUTSIDE_CONNECTIONS = 2;

type Stopper = () => Promise<void>;

/** Connections the whole local pipeline may hold: DROPLOAD_DB_POOL_MAX (8) against DATABASE_URL, else the embedded one. */
export function connectionBudget(env: Record<string, string | undefined>): number {
  return env.DATABASE_URL ? Number(env.DROPLOAD_DB_POOL_MAX ?? 8) : PGLITE_CONNECTIONS;
}

/**
 * PGlite behind a Postgres socket on loopback. It has no password check (any user and password are
 * accepted, as superuser): loopback keeps it off the network, and `dev` says so. With a `stateDir` its
 * data directory is kept there, so a restart (even after kill -9: each commit is on disk) finds the
 * ledger and the tables as they were.
 */
async function startEmbeddedPostgres(
  port: number,
  stateDir?: string,
): Promise<{ url: string; stop: Stopper }> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const pglite = await PGlite.create(stateDir ? path.join(stateDir, 'postgres') : undefined);
  const server = new PGLiteSocketServer({
    db: pglite,
    port,
    host: LOOPBACK,
    maxConnections: PGLITE_CONNECTIONS + PGLITE_OUTSIDE_CONNECTIONS,
  });
  await server.start();
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    stop: async () => {
      await server.stop();
      await pglite.close();
    },
  };
}

/** The state folder's file naming the process that holds it (`dev` tells users to kill that one). */
export const PID_FILE = 'dropload.pid';

/**
 * Takes the state folder for this process: two stacks on one PGlite data directory would corrupt it.
 * A pid file left by a process that is gone (killed with -9, say) is taken over.
 */
async function claimStateDir(stateDir: string): Promise<Stopper> {
  await mkdir(stateDir, { recursive: true });
  const pidFile = path.join(stateDir, PID_FILE);
  const holder = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (holder > 0 && holder !== process.pid && processAlive(holder)) {
    throw new ConfigError(
      `the state folder ${stateDir} is in use by another dropload process (pid ${holder}): stop it, or give another --state-dir`,
    );
  }
  await writeFile(pidFile, `${process.pid}\n`);
  return () => rm(pidFile, { force: true });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function createQueuePair(
  sqs: SQSClient,
  names: QueueTopology,
  visibilityTimeout: number,
  retry: RetryPolicy,
): Promise<QueuePair> {
  const arnOf = async (url: string) => {
    const res = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
    );
    return res.Attributes?.QueueArn as string;
  };
  const dlq = await sqs.send(
    new CreateQueueCommand({
      QueueName: names.dlqName,
      Attributes: { MessageRetentionPeriod: String(DLQ_RETENTION_SECONDS) },
    }),
  );
  const dlqUrl = dlq.QueueUrl as string;
  const dlqArn = await arnOf(dlqUrl);
  // Derived from the retry budget, as the CDK stack's queues are.
  const receives = maxReceiveCount(retry);
  const url = await createOrUpdateQueue(sqs, names.name, {
    VisibilityTimeout: String(visibilityTimeout),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: String(receives) }),
  });
  return {
    url,
    arn: await arnOf(url),
    dlqUrl,
    dlqArn,
    visibilityTimeoutSeconds: visibilityTimeout,
    maxReceiveCount: receives,
  };
}

/**
 * Creates the queue, or gives a kept one (a `dev` state folder) these attributes: SQS refuses to create
 * a queue again with other values (QueueNameExists), as after a release that changed its visibility.
 */
async function createOrUpdateQueue(
  sqs: SQSClient,
  name: string,
  attributes: Record<string, string>,
): Promise<string> {
  try {
    const created = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    return created.QueueUrl as string;
  } catch (err) {
    // SQS says `QueueNameExists`; fauxqs, with the JSON protocol's prefix, `AWS.SimpleQueueService.QueueNameExists`.
    if (!(err as Error).name.endsWith('QueueNameExists')) throw err;
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
    await sqs.send(new SetQueueAttributesCommand({ QueueUrl, Attributes: attributes }));
    return QueueUrl as string;
  }
}

async function createBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if (!(err instanceof BucketAlreadyOwnedByYou) && (err as Error).name !== 'BucketAlreadyExists') throw err;
  }
}

/**
 * Requests that leave their body out of the signature (`UNSIGNED-PAYLOAD`, which S3 accepts too). Over
 * plain HTTP the SDK otherwise hashes every uploaded byte with SHA-256 for a signature the embedded
 * emulator never checks: a sixth of the upload's CPU on the main thread.
 */
export function unsignedPayloads(s3: S3Client): void {
  s3.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: 'droploadUnsignedPayload' },
  );
}

/**
 * Points the bucket's ObjectCreated events at the ingest queue where the endpoint can (LocalStack,
 * AWS): every key, as the stack does (the split ignores dropload's own and skips those of no dataset).
 */
async function configureNotifications(s3: S3Client, bucket: string, queueArn: string) {
  try {
    await s3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: bucket,
        NotificationConfiguration: {
          QueueConfigurations: [{ Id: 'dropload', QueueArn: queueArn, Events: ['s3:ObjectCreated:*'] }],
        },
      }),
    );
    // Some emulators accept the call and store nothing; only a configuration that reads back counts.
    const back = await s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: bucket }));
    return (back.QueueConfigurations?.length ?? 0) === 1;
  } catch {
    return false;
  }
}

/**
 * The whole pipeline's infrastructure on this machine: the S3/SQS endpoint named by AWS_ENDPOINT_URL
 * (else an embedded fauxqs), the database named by DATABASE_URL (else an embedded PGlite), the bucket,
 * both queues with their dead-letter queues, and migrated tables.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const env = options.env ?? process.env;
  const stoppers: Stopper[] = [];
  const stopAll = async () => {
    for (const stop of stoppers.reverse()) await stop().catch(() => {});
  };
  // An emulator the caller started is the stack's to stop from here on, whatever fails first.
  const given = options.emulator;
  given?.catch(() => {});
  if (given) stoppers.push(async () => (await given).stop());
  try {
    const embeds = !env.AWS_ENDPOINT_URL || !env.DATABASE_URL;
    const stateDir = embeds && options.stateDir ? path.resolve(options.stateDir) : undefined;
    if (stateDir) stoppers.push(await claimStateDir(stateDir));
    // The emulator's thread starts (loads its modules, listens) while the database is started and migrated.
    const starting =
      env.AWS_ENDPOINT_URL || given ? undefined : startEmulatorThread({ port: options.port ?? 0, stateDir });
    // Its failure is awaited below, or by this stopper if the database fails first.
    starting?.catch(() => {});
    if (starting) stoppers.push(async () => (await starting).stop());
    const emulator = env.AWS_ENDPOINT_URL ? undefined : (given ?? starting);
    let databaseUrl = env.DATABASE_URL;
    if (!databaseUrl) {
      const embedded = await startEmbeddedPostgres(options.databasePort ?? 0, stateDir);
      databaseUrl = embedded.url;
      stoppers.push(embedded.stop);
    }
    const poolMax = connectionBudget(env);
    const own = Math.min(poolMax, options.ownConnections ?? poolMax);
    const pool: pg.Pool = createPool({ connectionString: databaseUrl, poolMax: own });
    const db = createDb(pool);
    stoppers.push(() => db.destroy());
    await migrateToLatest(db, options.config.migrations);
    const started = await emulator;
    const endpoint = started ? started.endpoint : (env.AWS_ENDPOINT_URL as string);

    const { s3, sqs } = awsClients({ ...env, AWS_ENDPOINT_URL: endpoint });
    if (emulator) unsignedPayloads(s3);
    const bucket = options.bucket ?? env.DROPLOAD_BUCKET ?? LOCAL_BUCKET;
    await createBucket(s3, bucket);
    const visibility = (q: QueueName) =>
      options.visibilityTimeoutSeconds ?? LOCAL_VISIBILITY_TIMEOUT_SECONDS[q];
    const retry = options.retry ?? RETRY_POLICY;
    const ingest = await createQueuePair(sqs, QUEUES.ingest, visibility('ingest'), retry);
    const chunks = await createQueuePair(sqs, QUEUES.chunks, visibility('chunks'), retry);
    // The registry's fauxqs has no S3 event notifications: the runner forwards uploads itself.
    const bucketNotifications =
      env.AWS_ENDPOINT_URL !== undefined && (await configureNotifications(s3, bucket, ingest.arn));
    return {
      endpoint,
      bucket,
      ingest,
      chunks,
      databaseUrl,
      bucketNotifications,
      embedded: { emulator: !env.AWS_ENDPOINT_URL, database: !env.DATABASE_URL },
      stateDir,
      poolMax,
      // Kept state (`dev`) outlives the file it would point at: there, files are uploaded.
      link: started && !stateDir ? (key, file, known) => started.link(bucket, key, file, known) : undefined,
      s3,
      sqs,
      db,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
