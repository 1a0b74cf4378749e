import { CfnOutput, Duration, Stack, Tags, Validations } from 'aws-cdk-lib';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { CfnBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { maxReceiveCount, RETRY_POLICY } from '../shared/core/backoff.ts';
import { EXPANDED_PREFIX, REPORT_PREFIX } from '../shared/core/bucket-layout.ts';
import {
  CONSUMERS,
  MIGRATE_TIMEOUT_SECONDS,
  QUEUES,
  SWEEP_EVERY_SECONDS,
  SWEEP_TIMEOUT_SECONDS,
} from '../shared/core/topology.ts';
import type { DeployConfig } from './config.ts';
import { Database } from './constructs/database.ts';
import { DroploadFunction } from './constructs/dropload-function.ts';
import { scopeEndpoints } from './constructs/endpoint-policies.ts';
import { IngestBucket } from './constructs/ingest-bucket.ts';
import { Migrations } from './constructs/migrations.ts';
import { Monitoring } from './constructs/monitoring.ts';
import { QueueWithDlq } from './constructs/queue-with-dlq.ts';
import { Replay } from './constructs/replay.ts';
import { CredentialRotation } from './constructs/rotation.ts';

export interface DroploadProps {
  readonly config: DeployConfig;
  /** Absolute path of the dataset config module bundled as `#dropload-config`. */
  readonly configModule: string;
  /** Dataset S3 key prefixes (from the config module), already de-overlapped. */
  readonly datasetPrefixes: readonly string[];
}

// Timeouts, batch sizes and windows (and the queues' visibility timeouts derived from them) are in CONSUMERS.
const SPLIT = CONSUMERS.ingest;
const LOAD = CONSUMERS.chunks;

/**
 * The whole pipeline as one construct: S3 → ingest queue → split → chunk queue → load → PostgreSQL, with
 * its database, alarms and replay policy. `import { Dropload } from 'dropload/cdk'` adds it to any stack;
 * this repository's DroploadStack is one user of it.
 */
export class Dropload extends Construct {
  readonly ingest: QueueWithDlq;
  readonly chunk: QueueWithDlq;
  readonly bucket: IngestBucket;
  readonly database: Database;
  readonly split: DroploadFunction;
  readonly load: DroploadFunction;
  readonly migrate: DroploadFunction;
  readonly sweep: DroploadFunction;
  readonly sweepSchedule: Rule;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: DroploadProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const { config } = props;
    Tags.of(this).add('project', 'dropload');
    // RetentionDays' values are the day counts; the config schema only admits valid ones.
    const logRetention = config.logRetentionDays as RetentionDays;

    // Both handlers back off a failed message (ChangeMessageVisibility) by RETRY_POLICY, and a file
    // they can refuse is failed with its reason rather than retried: a message is parked only after
    // failing for the whole retry budget, so a database outage shorter than it needs no replay.
    const receives = maxReceiveCount(RETRY_POLICY);
    this.ingest = new QueueWithDlq(this, 'IngestQueue', {
      consumer: SPLIT,
      maxReceiveCount: receives,
    });
    this.chunk = new QueueWithDlq(this, 'ChunkQueue', {
      consumer: LOAD,
      maxReceiveCount: receives,
    });

    this.bucket = new IngestBucket(this, 'IngestBucket', {
      notificationQueue: this.ingest.queue,
      reportPrefix: REPORT_PREFIX,
    });
    const bucket = this.bucket.bucket;

    this.database = new Database(this, 'Database', { config, logRetention });

    const shared = {
      configModule: props.configModule,
      logLevel: config.logLevel,
      logRetention,
      network: this.database.network,
    };
    const bucketEnvironment = { DROPLOAD_BUCKET: bucket.bucketName, DROPLOAD_REPORT_PREFIX: REPORT_PREFIX };

    this.split = new DroploadFunction(this, 'Split', {
      ...shared,
      name: 'split',
      description: 'dropload: registers a dropped file and splits it into chunk messages',
      memorySize: SPLIT.memoryMB,
      timeout: Duration.seconds(SPLIT.timeoutSeconds),
      environment: {
        ...this.database.environment,
        ...bucketEnvironment,
        [QUEUES.chunks.urlEnv]: this.chunk.queue.queueUrl,
        // A message split could not handle while the ledger was unreachable goes back here, delayed.
        [QUEUES.ingest.urlEnv]: this.ingest.queue.queueUrl,
      },
    });
    this.load = new DroploadFunction(this, 'Load', {
      ...shared,
      name: 'load',
      description: 'dropload: validates chunks and loads their rows into PostgreSQL',
      memorySize: LOAD.memoryMB,
      timeout: Duration.seconds(LOAD.timeoutSeconds),
      environment: {
        ...this.database.environment,
        ...bucketEnvironment,
        // Retries of rows waiting for their parents are delayed messages on the chunk queue.
        [QUEUES.chunks.urlEnv]: this.chunk.queue.queueUrl,
      },
    });
    this.sweep = new DroploadFunction(this, 'Sweep', {
      ...shared,
      name: 'sweep',
      description: 'dropload: re-drives rows waiting for their parents whose retry message was lost',
      memorySize: 256,
      timeout: Duration.seconds(SWEEP_TIMEOUT_SECONDS),
      environment: {
        ...this.database.environment,
        // It sends the retries of waiting rows, on the chunk queue like load's.
        [QUEUES.chunks.urlEnv]: this.chunk.queue.queueUrl,
      },
      noDlqReason:
        'Invoked by its schedule; a failed run loses nothing: the ledger still says what waits, and the next run a minute later sees it.',
    });
    this.migrate = new DroploadFunction(this, 'Migrate', {
      ...shared,
      name: 'migrate',
      description: 'dropload: applies database migrations during cdk deploy',
      memorySize: 512,
      timeout: Duration.seconds(MIGRATE_TIMEOUT_SECONDS),
      environment: this.database.migrationEnvironment,
    });

    // --- Least-privilege grants: each function gets exactly what its handler calls. ---
    const datasetObjects = props.datasetPrefixes.map((prefix) => bucket.arnForObjects(`${prefix}*`));
    // gzip files are expanded by split into .dropload/expanded/, and loaded from there.
    const expandedObjects = bucket.arnForObjects(`${EXPANDED_PREFIX}*`);
    for (const fn of [this.split, this.load]) {
      // Only dataset objects, and only reads (HeadObject is authorised by s3:GetObject).
      fn.handler.addToRolePolicy(
        new PolicyStatement({
          actions: ['s3:GetObject', 's3:GetObjectVersion'],
          resources: [...datasetObjects, expandedObjects],
        }),
      );
      this.database.grantConnect(fn.handler);
    }
    this.database.grantMigrate(this.migrate.handler);
    // The sweep reads and updates the ledger and sends retries: nothing in the bucket.
    this.database.grantConnect(this.sweep.handler);
    this.chunk.queue.grantSendMessages(this.split.handler);
    this.chunk.queue.grantSendMessages(this.load.handler);
    this.chunk.queue.grantSendMessages(this.sweep.handler);
    this.ingest.queue.grantSendMessages(this.split.handler);
    // Split writes the expanded copies; a load worker re-makes one that went missing; whichever finishes
    // or fails the file deletes its copy (a delete marker: the prefix's lifecycle rule drops the bytes).
    for (const fn of [this.split, this.load]) {
      fn.handler.addToRolePolicy(
        new PolicyStatement({
          actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:DeleteObject'],
          resources: [expandedObjects],
        }),
      );
    }
    // Per-file receipts (load writes them for finished files, split for files it fails); nothing else is writable.
    for (const fn of [this.split, this.load]) {
      fn.handler.addToRolePolicy(
        new PolicyStatement({
          actions: ['s3:PutObject'],
          resources: [bucket.arnForObjects(`${REPORT_PREFIX}*`)],
        }),
      );
    }

    // Object-level S3 permissions are inherently prefix/* patterns: acknowledge exactly those.
    const objectFinding = (prefix: string) =>
      `AwsSolutions-IAM5[Resource::<${stack.resolve(stack.getLogicalId(bucket.node.defaultChild as CfnBucket))}.Arn>/${prefix}*]`;
    for (const fn of [this.split, this.load]) {
      for (const prefix of props.datasetPrefixes) {
        Validations.of(fn.handler).acknowledge({
          id: objectFinding(prefix),
          reason: `Reads the objects of the dataset prefix ${prefix} (object ARNs need the trailing wildcard).`,
        });
      }
    }
    for (const fn of [this.split, this.load]) {
      Validations.of(fn.handler).acknowledge({
        id: objectFinding(EXPANDED_PREFIX),
        reason:
          'Split and load write, read and delete the decompressed copies of gzip files, only under .dropload/expanded/.',
      });
      Validations.of(fn.handler).acknowledge({
        id: objectFinding(REPORT_PREFIX),
        reason: 'Writes per-file receipts, and only under the reports/ prefix.',
      });
    }

    // --- Event sources (they also grant receive/delete/change-visibility on their queue). ---
    const noEsmDestination = {
      id: 'Serverless-LambdaEventSourceMappingDestination',
      reason:
        "SQS event sources take no on-failure destination; the queue's redrive policy sends failures to its DLQ.",
    };
    Validations.of(this.split.handler).acknowledge(noEsmDestination);
    Validations.of(this.load.handler).acknowledge(noEsmDestination);
    this.split.handler.addEventSource(
      new SqsEventSource(this.ingest.queue, {
        batchSize: SPLIT.batchSize,
        reportBatchItemFailures: true,
        maxConcurrency: config.splitMaxConcurrency,
      }),
    );
    this.load.handler.addEventSource(
      new SqsEventSource(this.chunk.queue, {
        batchSize: LOAD.batchSize,
        maxBatchingWindow: Duration.seconds(LOAD.batchingWindowSeconds),
        reportBatchItemFailures: true,
        // The database guard: at most loadMaxConcurrency instances × dbPoolMax connections each.
        // Defaults 10 × 2 = 20, plus split's 2 × 2 = 4, stay inside the 40-connection budget a
        // db.t4g.micro (≈80 max_connections) can give while leaving room for migrations and humans.
        // readDeployConfig() rejects combinations that exceed dbConnectionBudget.
        maxConcurrency: config.loadMaxConcurrency,
      }),
    );

    // The sweep: once a minute, files whose rows wait with no live retry (its message lost) get one.
    this.sweepSchedule = new Rule(this, 'SweepSchedule', {
      description: 'dropload: runs the sweep of rows waiting for their parents',
      schedule: Schedule.rate(Duration.seconds(SWEEP_EVERY_SECONDS)),
      // A failed run is not retried: the next one, a minute later, does the same work.
      targets: [new LambdaFunction(this.sweep.handler, { retryAttempts: 0 })],
    });
    Validations.of(this.sweepSchedule).acknowledge({
      id: 'Serverless-EventBusDLQ',
      reason:
        'A missed sweep loses nothing: the ledger still says what waits, and the next run a minute later sees it.',
    });

    const migrations = new Migrations(this, 'Migrations', { migrate: this.migrate, after: [this.database] });
    // Split, load and the sweep log in as the loader role, which migrate creates: on a first deploy, and on
    // the update that moves a stack to its own loader role, they must not start (nor switch) before it exists.
    for (const fn of [this.split, this.load, this.sweep]) fn.node.addDependency(migrations.trigger);
    if (this.database.rotation) {
      new CredentialRotation(this, 'Rotation', { target: this.database.rotation, after: migrations.trigger });
    }
    if (this.database.endpoints) {
      scopeEndpoints(this.database.endpoints, {
        bucket,
        queues: [this.ingest.queue, this.chunk.queue],
        secrets: this.database.secrets,
      });
    }

    this.monitoring = new Monitoring(this, 'Monitoring', {
      queues: [
        // split should pick a file up within seconds; a quarter hour means it is stuck or failing.
        { label: 'ingest', queues: this.ingest, maxAge: Duration.minutes(15) },
        // A big file fans out into many chunks; half an hour of backlog means load cannot keep up.
        { label: 'chunk', queues: this.chunk, maxAge: Duration.minutes(30) },
      ],
      functions: [this.split, this.load, this.sweep],
      alarmEmail: config.alarmEmail,
    });

    new Replay(this, 'Replay', { ingest: this.ingest, chunk: this.chunk, bucket });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.monitoring.topic.topicArn });
    new CfnOutput(this, 'DashboardName', { value: this.monitoring.dashboard.dashboardName });
    new CfnOutput(this, 'DatasetPrefixes', { value: props.datasetPrefixes.join(',') });
  }
}
