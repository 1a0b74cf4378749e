import { CfnOutput } from 'aws-cdk-lib';
import { ManagedPolicy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { QueueWithDlq } from './queue-with-dlq.ts';

export interface ReplayProps {
  readonly ingest: QueueWithDlq;
  readonly chunk: QueueWithDlq;
  readonly bucket: IBucket;
}

/**
 * What an operator needs to put dead-lettered work back into the pipeline once the cause is fixed:
 * a managed policy to attach to their role, and the queue URLs as stack outputs.
 */
export class Replay extends Construct {
  readonly policy: ManagedPolicy;

  constructor(scope: Construct, id: string, props: ReplayProps) {
    super(scope, id);
    const pairs = [props.ingest, props.chunk];

    this.policy = new ManagedPolicy(this, 'RedrivePolicy', {
      description: 'dropload: inspect and redrive the ingest and chunk dead-letter queues',
      statements: [
        new PolicyStatement({
          sid: 'RedriveFromDlqs',
          actions: [
            // The one-call redrive (`aws sqs start-message-move-task`) …
            'sqs:StartMessageMoveTask',
            'sqs:ListMessageMoveTasks',
            'sqs:CancelMessageMoveTask',
            // … which needs these on the source too, as does the manual receive → send → delete fallback.
            'sqs:ReceiveMessage',
            'sqs:DeleteMessage',
            'sqs:GetQueueAttributes',
          ],
          resources: pairs.map((p) => p.deadLetterQueue.queueArn),
        }),
        new PolicyStatement({
          sid: 'SendBackToSourceQueues',
          actions: ['sqs:SendMessage', 'sqs:GetQueueAttributes'],
          resources: pairs.map((p) => p.queue.queueArn),
        }),
      ],
    });

    const outputs: Record<string, [string, string]> = {
      RedrivePolicyArn: [this.policy.managedPolicyArn, 'Attach to an operator role to redrive the DLQs'],
      IngestQueueUrl: [props.ingest.queue.queueUrl, 'S3 notifications → split'],
      IngestDlqUrl: [props.ingest.deadLetterQueue.queueUrl, 'Files split gave up on'],
      ChunkQueueUrl: [props.chunk.queue.queueUrl, 'split → load'],
      ChunkDlqUrl: [props.chunk.deadLetterQueue.queueUrl, 'Chunks load gave up on'],
      BucketName: [props.bucket.bucketName, 'Drop files here under a dataset prefix'],
    };
    for (const [name, [value, description]] of Object.entries(outputs)) {
      // Logical ids at stack level so `--outputs-file` keys stay short and stable.
      new CfnOutput(scope, name, { value, description });
    }
  }
}
