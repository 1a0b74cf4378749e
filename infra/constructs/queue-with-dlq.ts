import { Duration, Validations } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  type ConsumerTopology,
  DLQ_RETENTION_SECONDS,
  visibilityTimeoutSeconds,
} from '../../shared/core/topology.ts';

export interface QueueWithDlqProps {
  /** The Lambda that consumes the queue (its timeout and batching window): the visibility timeout is derived from it. */
  readonly consumer: ConsumerTopology;
  /** Receives before a message is parked in the DLQ; callers must say why they chose it. */
  readonly maxReceiveCount: number;
}

/** A work queue and its dead-letter queue, both encrypted and TLS-only. */
export class QueueWithDlq extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: QueueWithDlqProps) {
    super(scope, id);

    this.deadLetterQueue = new Queue(this, 'Dlq', {
      retentionPeriod: Duration.seconds(DLQ_RETENTION_SECONDS),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    Validations.of(this.deadLetterQueue).acknowledge(
      { id: 'AwsSolutions-SQS3', reason: 'This queue is itself a dead-letter queue.' },
      { id: 'Serverless-SQSRedrivePolicy', reason: 'This queue is itself a dead-letter queue.' },
    );

    this.queue = new Queue(this, 'Queue', {
      visibilityTimeout: Duration.seconds(visibilityTimeoutSeconds(props.consumer)),
      retentionPeriod: Duration.days(4),
      // SQS-managed SSE (not aws/sqs KMS): S3 event notifications cannot publish to a queue encrypted with an AWS-managed KMS key.
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
    });
  }
}
