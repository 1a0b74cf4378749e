import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  type BucketNotificationDestinationConfig,
  BucketNotificationDestinationType,
  EventType,
  type IBucket,
  type IBucketNotificationDestination,
  type IBucketRef,
  ObjectOwnership,
} from 'aws-cdk-lib/aws-s3';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { EXPANDED_PREFIX } from '../../shared/core/bucket-layout.ts';

export interface IngestBucketProps {
  readonly notificationQueue: IQueue;
  /** Per-file receipts, written by the split (files it fails) and load (files they finish) functions. */
  readonly reportPrefix: string;
}

/**
 * Where users drop files. Private, encrypted, TLS-only and versioned: a load pins the object
 * version it read, so an overwrite mid-load cannot mix two files' rows.
 */
export class IngestBucket extends Construct {
  readonly bucket: Bucket;
  readonly accessLogs: IBucket;

  constructor(scope: Construct, id: string, props: IngestBucketProps) {
    super(scope, id);

    const accessLogs = new Bucket(this, 'AccessLogs', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(365) }],
      // Audit evidence outlives the stack; `cdk destroy` leaves it (see docs/deploy.md, tear down).
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(accessLogs).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This is the server access log destination; logging it to itself would recurse.',
    });
    this.accessLogs = accessLogs;

    this.bucket = new Bucket(this, 'Bucket', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      versioned: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'ingest/',
      lifecycleRules: [
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
        // Old versions only matter while a load that pinned them can still be retried.
        { id: 'expire-noncurrent-versions', noncurrentVersionExpiration: Duration.days(30) },
        { id: 'expire-reports', prefix: props.reportPrefix, expiration: Duration.days(90) },
        // Decompressed copies of gzip files: deleted when their file finishes, re-made from the original
        // if a load still needs one; this rule only sweeps up after a crash. A deleted copy's bytes stay
        // as a noncurrent version in this versioned bucket: dropped after a day, not 30.
        {
          id: 'expire-expanded',
          prefix: EXPANDED_PREFIX,
          expiration: Duration.days(7),
          noncurrentVersionExpiration: Duration.days(1),
        },
      ],
      // Users' data: never deleted by a stack operation.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Every key, so that a file dropped outside every dataset prefix is recorded as skipped rather than
    // unseen. S3 filters can only include a prefix, not exclude one: dropload's own writes (reports/,
    // .dropload/) are announced too and the split ignores them (isOwnKey), so a receipt begets nothing.
    this.bucket.addEventNotification(
      EventType.OBJECT_CREATED,
      new AccountQueueDestination(props.notificationQueue),
    );
    acknowledgeNotificationsHandler(this);
  }
}

/**
 * aws-s3-notifications' SqsDestination, with `aws:SourceAccount` beside `aws:SourceArn` in the queue
 * policy: a bucket's name (and so its ARN) can be taken by another account after this one deletes it,
 * and only the account condition keeps that bucket's notifications out of the queue.
 */
class AccountQueueDestination implements IBucketNotificationDestination {
  readonly queue: IQueue;

  constructor(queue: IQueue) {
    this.queue = queue;
  }

  bind(_scope: Construct, bucket: IBucketRef): BucketNotificationDestinationConfig {
    this.queue.grantSendMessages(
      new ServicePrincipal('s3.amazonaws.com', {
        conditions: {
          ArnLike: { 'aws:SourceArn': bucket.bucketRef.bucketArn },
          StringEquals: { 'aws:SourceAccount': Stack.of(this.queue).account },
        },
      }),
    );
    return {
      arn: this.queue.queueArn,
      type: BucketNotificationDestinationType.QUEUE,
      dependencies: [this.queue],
    };
  }
}

// CDK implements bucket notifications with one stack-wide custom-resource Lambda it owns.
const NOTIFICATIONS_HANDLER_ID = 'BucketNotificationsHandler050a0587b7544547bf325f094a3db834';

function acknowledgeNotificationsHandler(scope: Construct): void {
  const handler = Stack.of(scope).node.tryFindChild(NOTIFICATIONS_HANDLER_ID);
  if (!handler) return;
  Validations.of(handler).acknowledge({
    id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    reason:
      'CDK-owned bucket-notifications handler (deploy time only); the managed policy only lets it write its logs.',
  });
}
