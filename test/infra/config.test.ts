import { App, Stack } from 'aws-cdk-lib';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../infra/build.ts';
import { normalizePrefixes, readDeployConfig } from '../../infra/config.ts';
import { nagPacks } from '../../infra/nag.ts';
import { ConfigError } from '../../shared/core/errors.ts';
import { EXISTING_CONTEXT, LOCAL_CONTEXT } from './helpers.ts';

const read = (context: Record<string, unknown>) => readDeployConfig(new App({ context }).node);

describe('deploy configuration (CDK context)', () => {
  it('defaults to a new RDS database with safe settings', () => {
    expect(read({})).toMatchObject({
      database: 'rds',
      rdsProxy: false,
      dbDeletionProtection: true,
      dbPoolMax: 2,
      loadMaxConcurrency: 10,
      stackName: 'Dropload',
    });
  });

  it('accepts command-line strings for typed values', () => {
    expect(read({ rdsProxy: 'true', dbPoolMax: '3', loadMaxConcurrency: '8' })).toMatchObject({
      rdsProxy: true,
      dbPoolMax: 3,
      loadMaxConcurrency: 8,
    });
  });

  it('names every missing key for database=existing', () => {
    expect(() => read({ database: 'existing' })).toThrow(
      /"existingDbSecretArn" is missing[\s\S]*"existingLoaderSecretArn" is missing[\s\S]*"vpcId" is missing[\s\S]*"subnetIds" is missing[\s\S]*"securityGroupId" is missing/,
    );
  });

  it('splits comma-separated subnet ids', () => {
    expect(read(EXISTING_CONTEXT)).toMatchObject({
      subnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
    });
  });

  it('rejects a partial secret ARN with a reason', () => {
    expect(() =>
      read({
        ...EXISTING_CONTEXT,
        existingDbSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:db',
      }),
    ).toThrow(/"existingDbSecretArn" is invalid .*complete secret ARN/);
  });

  it('requires a postgres URL for database=local', () => {
    expect(() => read({ database: 'local' })).toThrow(/"databaseUrl" is missing/);
    expect(() => read({ database: 'local', databaseUrl: 'mysql://x@y/z' })).toThrow(
      /"databaseUrl" is invalid/,
    );
  });

  it('takes an optional loader URL for database=local, and checks it', () => {
    const local = { database: 'local', databaseUrl: 'postgres://postgres:pw@postgres:5432/postgres' };
    expect(read(local)).not.toHaveProperty('loaderDatabaseUrl', expect.anything());
    expect(read({ ...local, loaderDatabaseUrl: '' })).not.toHaveProperty(
      'loaderDatabaseUrl',
      expect.anything(),
    );
    expect(() => read({ ...local, loaderDatabaseUrl: 'http://x' })).toThrow(/"loaderDatabaseUrl" is invalid/);
  });

  it('rejects a partial loader secret ARN for database=existing', () => {
    expect(() =>
      read({
        ...EXISTING_CONTEXT,
        existingLoaderSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:loader',
      }),
    ).toThrow(/"existingLoaderSecretArn" is invalid .*complete secret ARN/);
  });

  it('rejects an unknown database mode', () => {
    expect(() => read({ database: 'aurora' })).toThrow(/"database" is invalid/);
  });

  it('refuses concurrency that could exceed the database connection budget', () => {
    expect(() => read({ loadMaxConcurrency: 30 })).toThrow(/exceeds dbConnectionBudget = 40/);
    expect(read({ loadMaxConcurrency: 30, dbConnectionBudget: 100 }).loadMaxConcurrency).toBe(30);
  });
});

describe('dataset prefixes', () => {
  it('takes rejected/, where dropload writes nothing, as a dataset prefix', () => {
    expect(normalizePrefixes(['rejected/', 'incoming/'])).toEqual(['incoming/', 'rejected/']);
  });

  it('drops prefixes nested in another (S3 rejects overlapping filters)', () => {
    expect(normalizePrefixes(['incoming/orders/', 'incoming/', 'other/'])).toEqual(['incoming/', 'other/']);
  });

  it('refuses prefixes that overlap the areas the pipeline writes', () => {
    expect(() => normalizePrefixes(['reports/x/'])).toThrow(/overlaps "reports\/"/);
    expect(() => normalizePrefixes(['rep'])).toThrow(/overlaps "reports\/"/);
    expect(() => normalizePrefixes(['.dropload/expanded/'])).toThrow(/overlaps "\.dropload\/"/);
  });

  it('synth refuses a config module whose dataset prefix is where dropload writes, naming the dataset', async () => {
    const attempt = buildApp({
      nag: false,
      context: { ...LOCAL_CONTEXT, config: 'test/infra/fixtures/reserved-prefix.config.ts' },
    });
    await expect(attempt).rejects.toThrow(ConfigError);
    await expect(attempt).rejects.toThrow(
      'dataset "inside_dropload": prefix ".dropload/" overlaps ".dropload/", where dropload writes (reserved: reports/, .dropload/); choose another prefix',
    );
  });
});

describe('nag packs', () => {
  it('do report findings (the clean results elsewhere are not vacuous)', () => {
    const app = new App();
    new Queue(new Stack(app, 'Bad'), 'Unencrypted');
    const rules = nagPacks().flatMap((p) => p.validateScope(app).violations.map((v) => v.ruleName));
    expect(rules).toEqual(
      expect.arrayContaining(['AwsSolutions-SQS3', 'AwsSolutions-SQS4', 'Serverless-SQSRedrivePolicy']),
    );
  });
});
