import { Duration, Validations } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface QueueWithDlqProps {
  /** Timeout of the Lambda that consumes the queue: the visibility timeout is derived from it. */
  readonly consumerTimeout: Duration;
  /** Longest batching window of the consumer's event source (counts against visibility too). */
  readonly consumerBatchingWindow?: Duration;
  /** Receives before a message is parked in the DLQ; callers must say why they chose it. */
  readonly maxReceiveCount: number;
}

/** Lambda's guidance: visibility ≥ 6 × function timeout, so retries after throttles don't duplicate work. */
export const VISIBILITY_FACTOR = 6;

/** A work queue and its dead-letter queue, both encrypted and TLS-only. */
export class QueueWithDlq extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: QueueWithDlqProps) {
    super(scope, id);

    this.deadLetterQueue = new Queue(this, 'Dlq', {
      // The longest SQS allows: operators get two weeks to inspect and redrive.
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    Validations.of(this.deadLetterQueue).acknowledge(
      { id: 'AwsSolutions-SQS3', reason: 'This queue is itself a dead-letter queue.' },
      { id: 'Serverless-SQSRedrivePolicy', reason: 'This queue is itself a dead-letter queue.' },
    );

    const window = props.consumerBatchingWindow ?? Duration.seconds(0);
    this.queue = new Queue(this, 'Queue', {
      visibilityTimeout: Duration.seconds(
        VISIBILITY_FACTOR * props.consumerTimeout.toSeconds() + window.toSeconds(),
      ),
      retentionPeriod: Duration.days(4),
      // SQS-managed SSE (not aws/sqs KMS): S3 event notifications cannot publish to a queue encrypted with an AWS-managed KMS key.
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
    });
  }
}
