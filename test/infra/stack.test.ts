import { Match, type Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxReceiveCount, RETRY_POLICY } from '../../shared/core/backoff.ts';
import { CONSUMERS, DLQ_RETENTION_SECONDS, visibilityTimeoutSeconds } from '../../shared/core/topology.ts';
import {
  databaseSecrets,
  describeViolations,
  functionEnvironments,
  functionRoleId,
  functionRoleIds,
  resourcesOfType,
  type Statement,
  SYNTH_TIMEOUT_MS,
  type Synthesized,
  secretsReadBy,
  statementsForRoles,
  synth,
  wildcardViolations,
} from './helpers.ts';

// The default deployment (database=rds), synthesized once with real esbuild bundling.
let s: Synthesized;
let template: Template;
beforeAll(async () => {
  s = await synth();
  template = s.template;
}, SYNTH_TIMEOUT_MS);
afterAll(() => s?.cleanup());

type Props = Record<string, unknown>;
const props = (type: string): [string, Props][] =>
  Object.entries(resourcesOfType(template, type)).map(([id, r]) => [id, (r.Properties ?? {}) as Props]);

describe('queues', () => {
  const isDlq = (id: string) => /Dlq/.test(id);

  it('every work queue redrives to a DLQ of this stack', () => {
    const queues = props('AWS::SQS::Queue');
    const work = queues.filter(([id]) => !isDlq(id));
    const dlqIds = queues.filter(([id]) => isDlq(id)).map(([id]) => id);
    expect(work).toHaveLength(2);
    for (const [id, p] of work) {
      const redrive = p.RedrivePolicy as {
        deadLetterTargetArn: { 'Fn::GetAtt': [string, string] };
        maxReceiveCount: number;
      };
      expect(redrive, id).toBeDefined();
      expect(dlqIds).toContain(redrive.deadLetterTargetArn['Fn::GetAtt'][0]);
      // The retry budget, in deliveries: the same number the local runner's queues get.
      expect(redrive.maxReceiveCount).toBe(maxReceiveCount(RETRY_POLICY));
    }
    expect(maxReceiveCount(RETRY_POLICY)).toBe(35);
  });

  it('DLQs keep messages for 14 days', () => {
    const dlqs = props('AWS::SQS::Queue').filter(([id]) => isDlq(id));
    expect(dlqs).toHaveLength(2);
    for (const [, p] of dlqs) expect(p.MessageRetentionPeriod).toBe(1209600);
  });

  it('all queues are encrypted and deny non-TLS access', () => {
    for (const [, p] of props('AWS::SQS::Queue')) expect(p.SqsManagedSseEnabled).toBe(true);
    const policies = props('AWS::SQS::QueuePolicy');
    expect(policies.length).toBe(4);
    for (const [, p] of policies) {
      expect(JSON.stringify(p.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
    }
  });

  it('visibility timeout is at least 6 × the consuming function timeout', () => {
    const fns = Object.fromEntries(props('AWS::Lambda::Function'));
    const queues = Object.fromEntries(props('AWS::SQS::Queue'));
    for (const [, m] of props('AWS::Lambda::EventSourceMapping')) {
      const queueId = (m.EventSourceArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      const fnId = (m.FunctionName as { Ref: string }).Ref;
      const timeout = fns[fnId]?.Timeout as number;
      expect(queues[queueId]?.VisibilityTimeout as number).toBeGreaterThanOrEqual(6 * timeout);
    }
  });
});

describe('topology (shared/core/topology.ts)', () => {
  /** Each mapping with its function and queue, named by the consumer in CONSUMERS. */
  const consumers = () => {
    const fns = Object.fromEntries(props('AWS::Lambda::Function'));
    const queues = Object.fromEntries(props('AWS::SQS::Queue'));
    return props('AWS::Lambda::EventSourceMapping').map(([, m]) => {
      const fnId = (m.FunctionName as { Ref: string }).Ref;
      const queueId = (m.EventSourceArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      const topology = /^SplitHandler/.test(fnId) ? CONSUMERS.ingest : CONSUMERS.chunks;
      return { mapping: m, fn: fns[fnId] ?? {}, queue: queues[queueId] ?? {}, topology };
    });
  };

  it("each mapping has its consumer's batch size and window, each function its timeout", () => {
    const all = consumers();
    expect(all).toHaveLength(2);
    for (const { mapping, fn, topology } of all) {
      expect(mapping.BatchSize).toBe(topology.batchSize);
      expect(mapping.MaximumBatchingWindowInSeconds ?? 0).toBe(topology.batchingWindowSeconds);
      expect(fn.Timeout).toBe(topology.timeoutSeconds);
    }
    expect([CONSUMERS.ingest.batchSize, CONSUMERS.chunks.batchSize]).toEqual([1, 10]);
  });

  it("each queue's visibility timeout is the factor × its consumer's timeout + its window", () => {
    for (const { queue, topology } of consumers()) {
      expect(queue.VisibilityTimeout).toBe(visibilityTimeoutSeconds(topology));
      expect(queue.RedrivePolicy).toMatchObject({ maxReceiveCount: maxReceiveCount(RETRY_POLICY) });
    }
    expect(visibilityTimeoutSeconds(CONSUMERS.ingest)).toBe(6 * 300);
    expect(visibilityTimeoutSeconds(CONSUMERS.chunks)).toBe(6 * 180 + 5);
    expect(DLQ_RETENTION_SECONDS).toBe(1209600);
  });
});

describe('event sources', () => {
  it('both mappings report batch item failures and set batch size', () => {
    const mappings = props('AWS::Lambda::EventSourceMapping');
    expect(mappings).toHaveLength(2);
    for (const [, m] of mappings) {
      expect(m.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
      expect(m.BatchSize).toBeTypeOf('number');
    }
  });

  it('the load mapping caps concurrency and batches with a window', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: Match.stringLikeRegexp('^LoadHandler') },
      ScalingConfig: { MaximumConcurrency: 10 },
      MaximumBatchingWindowInSeconds: 5,
    });
  });
});

describe('functions', () => {
  it('dropload functions run nodejs24.x on arm64 with explicit memory, timeout, tracing and a log group', () => {
    const ours = props('AWS::Lambda::Function').filter(([id]) =>
      /^(Split|Load|Migrate|Sweep)Handler/.test(id),
    );
    expect(ours).toHaveLength(4);
    for (const [id, p] of ours) {
      expect(p.Runtime, id).toBe('nodejs24.x');
      expect(p.Architectures, id).toEqual(['arm64']);
      expect(p.MemorySize, id).toBeTypeOf('number');
      expect(p.Timeout, id).toBeGreaterThan(3);
      expect(p.TracingConfig, id).toEqual({ Mode: 'Active' });
      expect(p.LoggingConfig, id).toHaveProperty('LogGroup');
      expect(p.VpcConfig, id).toBeDefined();
    }
  });

  it('every Lambda in the stack (CDK helpers included) uses the newest Node runtime if it is Node', () => {
    for (const [id, p] of props('AWS::Lambda::Function')) {
      if (String(p.Runtime).startsWith('nodejs')) expect(p.Runtime, id).toBe('nodejs24.x');
    }
  });

  it('log groups have a retention', () => {
    for (const [id, p] of props('AWS::Logs::LogGroup')) expect(p.RetentionInDays, id).toBe(30);
  });

  it('handlers get the contract environment', () => {
    const env = functionEnvironments(template);
    for (const name of ['split', 'load', 'migrate', 'sweep']) {
      expect(env[name], name).toMatchObject({
        DROPLOAD_DB_SECRET_ARN: { Ref: expect.stringMatching(/Secret/) },
        DROPLOAD_DB_SSL: 'require',
        DROPLOAD_DB_POOL_MAX: '2',
        POWERTOOLS_SERVICE_NAME: `dropload-${name}`,
        POWERTOOLS_METRICS_NAMESPACE: 'dropload',
        POWERTOOLS_LOG_LEVEL: 'INFO',
      });
    }
    // Lambda's runtime sets neither heap flag once NODE_OPTIONS names one: both follow each function's memory.
    expect(env.split?.NODE_OPTIONS).toBe(
      '--enable-source-maps --max-semi-space-size=8 --max-old-space-size=922',
    );
    expect(env.load?.NODE_OPTIONS).toBe(
      '--enable-source-maps --max-semi-space-size=8 --max-old-space-size=922',
    );
    expect(env.sweep?.NODE_OPTIONS).toBe(
      '--enable-source-maps --max-semi-space-size=8 --max-old-space-size=231',
    );
    expect(env.migrate?.NODE_OPTIONS).toBe(
      '--enable-source-maps --max-semi-space-size=8 --max-old-space-size=461',
    );
    // split sends chunks; load and the sweep send the retries of rows waiting for their parents
    expect(env.split).toHaveProperty('DROPLOAD_CHUNK_QUEUE_URL');
    expect(env.load).toHaveProperty('DROPLOAD_CHUNK_QUEUE_URL');
    expect(env.sweep).toHaveProperty('DROPLOAD_CHUNK_QUEUE_URL');
    expect(env.migrate).not.toHaveProperty('DROPLOAD_CHUNK_QUEUE_URL');
    // The sweep never touches the bucket.
    expect(env.sweep).not.toHaveProperty('DROPLOAD_BUCKET');
    expect(env.sweep).not.toHaveProperty('DROPLOAD_INGEST_QUEUE_URL');
    // split sends a delayed copy of its message back to its own queue when the ledger is unreachable.
    expect(env.split).toHaveProperty('DROPLOAD_INGEST_QUEUE_URL');
    expect(env.load).not.toHaveProperty('DROPLOAD_INGEST_QUEUE_URL');
    for (const name of ['split', 'load']) {
      expect(env[name]).toHaveProperty('DROPLOAD_BUCKET');
      expect(env[name]?.DROPLOAD_REPORT_PREFIX).toBe('reports/');
    }
  });
});

describe('ingest bucket', () => {
  const ingest = () => {
    const found = props('AWS::S3::Bucket').find(([id]) => /^IngestBucket(?!AccessLogs)/.test(id));
    if (!found) throw new Error('ingest bucket not found');
    return found[1];
  };

  it('is encrypted, versioned, private, logged and retained', () => {
    const b = ingest();
    expect(b.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
    });
    expect(b.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(b.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(b.LoggingConfiguration).toMatchObject({ DestinationBucketName: { Ref: expect.any(String) } });
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: { VersioningConfiguration: {} },
    });
  });

  it('has a lifecycle rule for reports/, and none for rejected/ (nothing is written there)', () => {
    const rules = (ingest().LifecycleConfiguration as { Rules: { Prefix?: string }[] }).Rules;
    expect(rules.map((r) => r.Prefix)).toEqual(expect.arrayContaining(['reports/']));
    expect(rules.map((r) => r.Prefix)).not.toContain('rejected/');
  });

  it('aborts incomplete multipart uploads after 7 days, bucket-wide (a split killed mid-expansion leaves its parts)', () => {
    const rules = (ingest().LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;
    expect(rules.filter((r) => r.AbortIncompleteMultipartUpload)).toEqual([
      {
        Id: 'abort-incomplete-uploads',
        Status: 'Enabled',
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
      },
    ]);
  });

  it('both buckets deny non-TLS requests', () => {
    const policies = props('AWS::S3::BucketPolicy');
    expect(policies).toHaveLength(2);
    for (const [, p] of policies)
      expect(JSON.stringify(p.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
  });

  it('notifies the ingest queue of every ObjectCreated in the bucket: one configuration, no filter', () => {
    const notifications = props('Custom::S3BucketNotifications');
    expect(notifications).toHaveLength(1);
    const [[, n] = ['', {}]] = notifications;
    // A file outside every dataset prefix is announced too, and skipped visibly (the split ignores
    // dropload's own reports/ and .dropload/ keys: no receipt of a receipt).
    expect(n.NotificationConfiguration).toEqual({
      QueueConfigurations: [
        {
          Events: ['s3:ObjectCreated:*'],
          QueueArn: { 'Fn::GetAtt': [expect.stringMatching(/^IngestQueue(?!Dlq)/), 'Arn'] },
        },
      ],
    });
  });
});

describe('least privilege', () => {
  it('no function role statement has a * action or a * resource on data', () => {
    const roles = functionRoleIds(template);
    expect(roles).toHaveLength(4);
    const statements = statementsForRoles(template, roles);
    expect(statements.length).toBeGreaterThan(0);
    expect(wildcardViolations(statements)).toEqual([]);
  });

  it('S3 access is scoped: reads on dataset prefixes, writes only to reports/* and .dropload/expanded/*', () => {
    const statements = statementsForRoles(template, functionRoleIds(template));
    const s3 = statements.filter((st) => [st.Action].flat().some((a) => a.startsWith('s3:')));
    const writes = s3.filter((st) => [st.Action].flat().includes('s3:PutObject'));
    // split and load write receipts, and the decompressed copies of gzip files (load re-makes a lost one)
    expect(
      writes.map((w) => JSON.stringify(w.Resource).match(/\/(reports|\.dropload\/expanded)\/\*/)?.[1]).sort(),
    ).toEqual(['.dropload/expanded', '.dropload/expanded', 'reports', 'reports']);
    const allowed = new Set([
      's3:GetObject',
      's3:GetObjectVersion',
      's3:PutObject',
      's3:AbortMultipartUpload',
      's3:DeleteObject',
    ]);
    for (const st of s3) expect([st.Action].flat().every((a) => allowed.has(a))).toBe(true);
    // Deletes only the expanded copies: never a dataset's objects or a receipt.
    const deletes = s3.filter((st) => [st.Action].flat().includes('s3:DeleteObject'));
    expect(deletes.map((d) => JSON.stringify(d.Resource).match(/\/\.dropload\/expanded\/\*/)?.[0])).toEqual([
      '/.dropload/expanded/*',
      '/.dropload/expanded/*',
    ]);
  });

  it('only split (chunks), load and the sweep (retries of waiting rows) may send to the chunk queue', () => {
    const [splitRole, loadRole, migrateRole, sweepRole] = ['Split', 'Load', 'Migrate', 'Sweep'].map((n) =>
      functionRoleIds(template).find((id) => id.startsWith(`${n}Handler`)),
    );
    const sends = (role: string | undefined) =>
      statementsForRoles(template, role ? [role] : []).filter((st: Statement) =>
        [st.Action].flat().includes('sqs:SendMessage'),
      );
    expect(sends(splitRole)).toHaveLength(1);
    expect(sends(loadRole)).toHaveLength(1);
    expect(sends(sweepRole)).toHaveLength(1);
    expect(sends(migrateRole)).toHaveLength(0);
  });

  it('the sweep may read the loader secret and send to the chunk queue, and nothing else', () => {
    const { loader } = databaseSecrets(template);
    const [chunkQueue] = props('AWS::SQS::Queue')
      .map(([id]) => id)
      .filter((id) => /^ChunkQueue(?!Dlq)/.test(id));
    const statements = statementsForRoles(template, [functionRoleId(template, 'sweep')]);
    expect(statements.map((st) => [[st.Action].flat().sort(), st.Resource])).toEqual([
      [['xray:PutTelemetryRecords', 'xray:PutTraceSegments'], '*'],
      [['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'], { Ref: loader }],
      [
        ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'],
        { 'Fn::GetAtt': [chunkQueue, 'Arn'] },
      ],
    ]);
  });

  it('the replay policy has no wildcards and covers the redrive actions', () => {
    const [[, policy] = ['', {}]] = props('AWS::IAM::ManagedPolicy');
    const statements = (policy.PolicyDocument as { Statement: Statement[] }).Statement;
    expect(wildcardViolations(statements)).toEqual([]);
    const actions = statements.flatMap((st) => [st.Action].flat());
    expect(actions).toEqual(
      expect.arrayContaining([
        'sqs:StartMessageMoveTask',
        'sqs:ListMessageMoveTasks',
        'sqs:CancelMessageMoveTask',
        'sqs:ReceiveMessage',
        'sqs:DeleteMessage',
        'sqs:GetQueueAttributes',
        'sqs:SendMessage',
      ]),
    );
  });
});

describe('database (rds)', () => {
  it('is encrypted, private, and forces TLS', () => {
    template.hasResourceProperties('AWS::RDS::DBInstance', {
      Engine: 'postgres',
      StorageEncrypted: true,
      PubliclyAccessible: false,
      DeletionProtection: true,
    });
    template.hasResourceProperties('AWS::RDS::DBParameterGroup', { Parameters: { 'rds.force_ssl': '1' } });
    // the master's and the loader's
    template.resourceCountIs('AWS::SecretsManager::Secret', 2);
  });

  it('lives in isolated subnets with endpoints and no NAT', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::InternetGateway', 0);
    const services = props('AWS::EC2::VPCEndpoint').map(([, p]) => JSON.stringify(p.ServiceName));
    for (const svc of ['.s3', '.sqs', '.secretsmanager']) {
      expect(
        services.some((n) => n.includes(svc)),
        svc,
      ).toBe(true);
    }
  });

  it('runs migrations with a Trigger after the database exists', () => {
    const triggers = resourcesOfType(template, 'Custom::Trigger');
    const [trigger] = Object.values(triggers);
    expect(trigger).toBeDefined();
    expect(JSON.stringify(trigger?.Properties)).toMatch(/MigrateHandler/);
    const deps = [trigger?.DependsOn ?? []].flat() as string[];
    expect(deps.some((d) => d.startsWith('DatabaseInstance'))).toBe(true);
  });
});

const instanceId = () => props('AWS::RDS::DBInstance')[0]?.[0] as string;

describe('database credentials (least privilege)', () => {
  it('split and load get only the loader secret, in their environment and their IAM', () => {
    const { master, loader } = databaseSecrets(template);
    const env = functionEnvironments(template);
    for (const name of ['split', 'load', 'sweep'] as const) {
      expect(env[name]?.DROPLOAD_DB_SECRET_ARN, name).toEqual({ Ref: loader });
      expect(JSON.stringify(env[name]), name).not.toContain(master);
      expect(secretsReadBy(template, [functionRoleId(template, name)]), name).toEqual([{ Ref: loader }]);
    }
  });

  it('migrate runs as the master and reads the loader secret only to manage that role', () => {
    const { master, loader } = databaseSecrets(template);
    const env = functionEnvironments(template);
    expect(env.migrate?.DROPLOAD_DB_SECRET_ARN).toEqual({ Ref: master });
    expect(env.migrate?.DROPLOAD_LOADER_SECRET_ARN).toEqual({ Ref: loader });
    const read = secretsReadBy(template, [functionRoleId(template, 'migrate')]);
    expect(read).toHaveLength(2);
    expect(read).toEqual(expect.arrayContaining([{ Ref: master }, { Ref: loader }]));
  });

  it('split, load and the sweep (and their event sources) wait for the migrate run that creates the loader role', () => {
    const all = template.toJSON().Resources as Record<string, { DependsOn?: string | string[] }>;
    const ids = Object.keys(all).filter((id) => /^(Split|Load|Sweep)Handler/.test(id));
    expect(ids.length).toBeGreaterThanOrEqual(6);
    for (const id of ids) {
      expect(
        [all[id]?.DependsOn ?? []].flat().some((d) => /^MigrationsRun/.test(d)),
        id,
      ).toBe(true);
    }
  });

  it('the loader secret names user dropload_loader and database dropload, and is attached to the instance', () => {
    const { loader } = databaseSecrets(template);
    const attachment = resourcesOfType(template, 'AWS::SecretsManager::SecretTargetAttachment')[loader];
    expect(attachment?.Properties).toMatchObject({
      TargetType: 'AWS::RDS::DBInstance',
      TargetId: { Ref: expect.stringMatching(/^DatabaseInstance/) },
    });
    const secretId = (attachment?.Properties as { SecretId: { Ref: string } } | undefined)?.SecretId.Ref;
    const secret = resourcesOfType(template, 'AWS::SecretsManager::Secret')[secretId ?? ''];
    const generate = (
      secret?.Properties as { GenerateSecretString: { SecretStringTemplate: string } } | undefined
    )?.GenerateSecretString;
    expect(JSON.parse(generate?.SecretStringTemplate ?? '{}')).toEqual({
      username: 'dropload_loader',
      dbname: 'dropload',
    });
  });

  it('both secrets rotate (hosted single-user rotation in the isolated subnets) once migrations have run', () => {
    const { master, loader } = databaseSecrets(template);
    const schedules = props('AWS::SecretsManager::RotationSchedule');
    expect(
      schedules.map(([, p]) => p.SecretId).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    ).toEqual(
      [{ Ref: loader }, { Ref: master }].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    );
    for (const [id, p] of schedules) {
      expect(p.HostedRotationLambda, id).toMatchObject({
        RotationType: 'PostgreSQLSingleUser',
        VpcSubnetIds: expect.anything(),
        VpcSecurityGroupIds: expect.anything(),
      });
      expect(p.RotationRules, id).toMatchObject({ ScheduleExpression: 'rate(30 days)' });
      // The loader role must exist before its password is rotated: the migrate trigger creates it.
      const deps = [
        resourcesOfType(template, 'AWS::SecretsManager::RotationSchedule')[id]?.DependsOn ?? [],
      ].flat();
      expect(
        deps.some((d) => /^MigrationsRun/.test(String(d))),
        id,
      ).toBe(true);
    }
  });

  it('the rotation functions may reach the database port', () => {
    const rotationSgs = props('AWS::SecretsManager::RotationSchedule').flatMap(
      ([, p]) => (p.HostedRotationLambda as { VpcSecurityGroupIds: unknown }).VpcSecurityGroupIds,
    );
    expect(rotationSgs).toHaveLength(2);
    // Into the instance's security group, on the instance's port.
    const ingress = props('AWS::EC2::SecurityGroupIngress').filter(
      ([, p]) =>
        JSON.stringify(p.GroupId).includes('DatabaseInstanceSecurityGroup') &&
        JSON.stringify(p.FromPort) === JSON.stringify({ 'Fn::GetAtt': [instanceId(), 'Endpoint.Port'] }),
    );
    for (const sg of rotationSgs) {
      expect(ingress.some(([, p]) => JSON.stringify(p.SourceSecurityGroupId) === JSON.stringify(sg))).toBe(
        true,
      );
    }
  });
});

describe('vpc endpoints', () => {
  type EndpointStatement = Statement & {
    Principal?: unknown;
    Condition?: Record<string, Record<string, unknown>>;
  };
  const endpoint = (service: string) => {
    const found = props('AWS::EC2::VPCEndpoint').find(([, p]) =>
      JSON.stringify(p.ServiceName).includes(service),
    );
    if (!found) throw new Error(`no ${service} endpoint`);
    return (found[1].PolicyDocument as { Statement: EndpointStatement[] } | undefined)?.Statement ?? [];
  };
  const bucketId = () => {
    const found = props('AWS::S3::Bucket').find(([id]) => /^IngestBucket(?!AccessLogs)/.test(id));
    return found?.[0] as string;
  };
  const workQueues = () =>
    props('AWS::SQS::Queue')
      .filter(([id]) => !/Dlq/.test(id))
      .map(([id]) => ({ 'Fn::GetAtt': [id, 'Arn'] }));

  it('every endpoint has a policy, and it only allows this account', () => {
    for (const service of ['.s3', '.sqs', '.secretsmanager']) {
      const statements = endpoint(service);
      expect(statements.length, service).toBeGreaterThan(0);
      for (const st of statements) {
        expect(st.Effect).toBe('Allow');
        expect(st.Condition?.StringEquals?.['aws:PrincipalAccount'], service).toEqual({
          Ref: 'AWS::AccountId',
        });
      }
    }
  });

  it('the S3 endpoint reaches only the ingest bucket', () => {
    const resources = endpoint('.s3').flatMap((st) => [st.Resource].flat());
    expect(resources.length).toBeGreaterThan(0);
    for (const r of resources) expect(JSON.stringify(r)).toContain(`"${bucketId()}"`);
    const actions = endpoint('.s3').flatMap((st) => [st.Action].flat());
    expect(
      actions.every((a) =>
        ['s3:GetObject', 's3:GetObjectVersion', 's3:PutObject', 's3:AbortMultipartUpload'].includes(a),
      ),
    ).toBe(true);
  });

  it("the SQS endpoint reaches only the stack's work queues", () => {
    const resources = endpoint('.sqs').flatMap((st) => [st.Resource].flat());
    expect(resources).toHaveLength(2);
    expect(resources).toEqual(expect.arrayContaining(workQueues()));
  });

  it("the Secrets Manager endpoint reaches only the stack's two secrets (and random passwords for rotation)", () => {
    const { master, loader } = databaseSecrets(template);
    const statements = endpoint('.secretsmanager');
    const scoped = statements.filter((st) => [st.Resource].flat().some((r) => r !== '*'));
    expect(scoped.flatMap((st) => [st.Resource].flat())).toEqual(
      expect.arrayContaining([{ Ref: master }, { Ref: loader }]),
    );
    expect(scoped.flatMap((st) => [st.Resource].flat())).toHaveLength(2);
    // GetRandomPassword has no resource: the only action allowed on "*".
    const unscoped = statements.filter((st) => [st.Resource].flat().includes('*'));
    expect(unscoped.flatMap((st) => [st.Action].flat())).toEqual(['secretsmanager:GetRandomPassword']);
  });
});

describe('ingest queue policy', () => {
  it('lets S3 send notifications only from the ingest bucket of this account', () => {
    const statements = props('AWS::SQS::QueuePolicy').flatMap(
      ([, p]) =>
        (
          p.PolicyDocument as {
            Statement: (Statement & { Principal?: { Service?: string }; Condition?: unknown })[];
          }
        ).Statement,
    );
    const fromS3 = statements.filter((st) => st.Principal?.Service === 's3.amazonaws.com');
    expect(fromS3).toHaveLength(1);
    expect(fromS3[0]?.Condition).toEqual({
      ArnLike: {
        'aws:SourceArn': { 'Fn::GetAtt': [expect.stringMatching(/^IngestBucket(?!AccessLogs)/), 'Arn'] },
      },
      StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
    });
  });
});

describe('the sweep of waiting rows', () => {
  it('runs once a minute on a schedule, which invokes the sweep function and does not retry it', () => {
    const rules = props('AWS::Events::Rule');
    expect(rules).toHaveLength(1);
    const [[, rule] = ['', {}]] = rules;
    expect(rule.ScheduleExpression).toBe('rate(1 minute)');
    expect(rule.State).toBe('ENABLED');
    const targets = rule.Targets as { Arn: { 'Fn::GetAtt': [string, string] }; RetryPolicy: unknown }[];
    expect(targets).toHaveLength(1);
    expect(targets[0]?.Arn['Fn::GetAtt'][0]).toMatch(/^SweepHandler/);
    expect(targets[0]?.RetryPolicy).toEqual({ MaximumRetryAttempts: 0 });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SweepHandler'), 'Arn'] },
    });
  });

  it('is a small function with a short timeout, in the database network', () => {
    const [[, fn] = ['', {}]] = props('AWS::Lambda::Function').filter(([id]) => /^SweepHandler/.test(id));
    expect(fn.MemorySize).toBe(256);
    expect(fn.Timeout).toBe(60);
    expect(fn.VpcConfig).toBeDefined();
  });
});

describe('monitoring and outputs', () => {
  it('alarms on every DLQ, on queue age, and on function errors and throttles, all to SNS', () => {
    const alarms = props('AWS::CloudWatch::Alarm');
    const dlqIds = props('AWS::SQS::Queue')
      .filter(([id]) => /Dlq/.test(id))
      .map(([id]) => id);
    for (const dlq of dlqIds) {
      const found = alarms.some(
        ([, a]) =>
          a.MetricName === 'ApproximateNumberOfMessagesVisible' &&
          a.Threshold === 0 &&
          JSON.stringify(a.Dimensions).includes(dlq),
      );
      expect(found, dlq).toBe(true);
    }
    const metrics = alarms.map(([, a]) => a.MetricName);
    expect(metrics.filter((m) => m === 'ApproximateAgeOfOldestMessage')).toHaveLength(2);
    expect(metrics.filter((m) => m === 'Errors')).toHaveLength(3);
    expect(metrics.filter((m) => m === 'Throttles')).toHaveLength(3);
    // The sweep has its errors alarm like split and load.
    const errorAlarms = alarms.filter(([, a]) => a.MetricName === 'Errors');
    expect(errorAlarms.some(([, a]) => JSON.stringify(a.Dimensions).includes('SweepHandler'))).toBe(true);
    for (const [, a] of alarms) expect(JSON.stringify(a.AlarmActions)).toMatch(/Monitoring.*Alarms/);
  });

  it('has a dashboard with the Powertools metrics', () => {
    const [[, d] = ['', {}]] = props('AWS::CloudWatch::Dashboard');
    const body = JSON.stringify(d.DashboardBody);
    for (const m of ['FilesLoaded', 'RowsLoaded', 'RowsRejected', 'ChunkLatencyMs'])
      expect(body).toContain(m);
  });

  it('exports the replay policy, the four queue URLs and the bucket name', () => {
    const outputs = Object.keys(template.findOutputs('*'));
    expect(outputs).toEqual(
      expect.arrayContaining([
        'RedrivePolicyArn',
        'IngestQueueUrl',
        'IngestDlqUrl',
        'ChunkQueueUrl',
        'ChunkDlqUrl',
        'BucketName',
      ]),
    );
  });
});

describe('cdk-nag', () => {
  it('AwsSolutions and Serverless report no unacknowledged findings', () => {
    expect(describeViolations(s.nagViolations)).toEqual([]);
  });
});
