import { Aws } from 'aws-cdk-lib';
import { AnyPrincipal, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { DatabaseEndpoints } from './database.ts';

export interface EndpointScope {
  readonly bucket: IBucket;
  /** The queues the functions send to or change visibility on (the event sources poll outside the VPC). */
  readonly queues: IQueue[];
  readonly secrets: ISecret[];
}

/**
 * Endpoint policies: traffic through the VPC's endpoints may only reach this stack's bucket, queues and
 * secrets, and only for principals of this account. A function role that is ever given more (or stolen
 * credentials used from inside the VPC) still cannot move data to another bucket, queue or account.
 * The actions are those the functions (and the secret rotation) call.
 */
export function scopeEndpoints(endpoints: DatabaseEndpoints, scope: EndpointScope): void {
  const fromThisAccount = { StringEquals: { 'aws:PrincipalAccount': Aws.ACCOUNT_ID } };
  const allow = (actions: string[], resources: string[]) =>
    new PolicyStatement({
      principals: [new AnyPrincipal()],
      actions,
      resources,
      conditions: fromThisAccount,
    });

  endpoints.s3.addToPolicy(
    allow(
      ['s3:GetObject', 's3:GetObjectVersion', 's3:PutObject', 's3:AbortMultipartUpload'],
      [scope.bucket.arnForObjects('*')],
    ),
  );
  endpoints.sqs.addToPolicy(
    allow(
      ['sqs:SendMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
      scope.queues.map((q) => q.queueArn),
    ),
  );
  endpoints.secretsManager.addToPolicy(
    allow(
      [
        'secretsmanager:GetSecretValue',
        'secretsmanager:DescribeSecret',
        // The rotation functions': stage a new version, then make it current.
        'secretsmanager:PutSecretValue',
        'secretsmanager:UpdateSecretVersionStage',
      ],
      scope.secrets.map((s) => s.secretArn),
    ),
  );
  // The rotation functions generate the new password; the action has no resource to scope it to.
  endpoints.secretsManager.addToPolicy(allow(['secretsmanager:GetRandomPassword'], ['*']));
}
