import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  databaseSecrets,
  describeViolations,
  EXISTING_CONTEXT,
  functionEnvironments,
  functionRoleId,
  functionRoleIds,
  LOCAL_CONTEXT,
  resourcesOfType,
  SYNTH_TIMEOUT_MS,
  type Synthesized,
  secretsReadBy,
  statementsForRoles,
  synth,
  wildcardViolations,
} from './helpers.ts';

const LOADER_URL = 'postgres://dropload_loader:loader-pw@postgres:5432/postgres';

// One synthesis per variant; each bundles the handlers once.
const variants: Record<'local' | 'existing' | 'proxy' | 'altConfig', Synthesized | undefined> = {
  local: undefined,
  existing: undefined,
  proxy: undefined,
  altConfig: undefined,
};
const get = (name: keyof typeof variants): Synthesized => {
  const v = variants[name];
  if (!v) throw new Error(`${name} variant was not synthesized`);
  return v;
};
beforeAll(async () => {
  [variants.local, variants.existing, variants.proxy, variants.altConfig] = await Promise.all([
    synth(LOCAL_CONTEXT),
    synth(EXISTING_CONTEXT),
    synth({ rdsProxy: true, alarmEmail: 'ops@example.com' }),
    // Also the local variant with a loader user of its own (one synthesis fewer on a 2-core machine).
    synth({ ...LOCAL_CONTEXT, loaderDatabaseUrl: LOADER_URL, config: 'test/infra/fixtures/alt.config.ts' }),
  ]);
  // Four syntheses (twelve esbuild bundles) at once: on a shared 2-core machine they took over 60 s.
}, 2 * SYNTH_TIMEOUT_MS);
afterAll(() => {
  for (const v of Object.values(variants)) v?.cleanup();
});

describe('database=local (LocalStack)', () => {
  it('has no RDS, no VPC and no VPC-attached functions', () => {
    const types = Object.values(
      get('local').template.toJSON().Resources as Record<string, { Type: string }>,
    ).map((r) => r.Type);
    expect(types.filter((t) => t.startsWith('AWS::RDS::'))).toEqual([]);
    expect(types.filter((t) => t.startsWith('AWS::EC2::'))).toEqual([]);
    expect(types).not.toContain('AWS::SecretsManager::Secret');
    for (const [id, fn] of Object.entries(resourcesOfType(get('local').template, 'AWS::Lambda::Function'))) {
      expect((fn.Properties as Record<string, unknown>).VpcConfig, id).toBeUndefined();
    }
  });

  it('hands the compose Postgres URL to every handler, without TLS', () => {
    const env = functionEnvironments(get('local').template);
    for (const name of ['split', 'load', 'migrate']) {
      expect(env[name], name).toMatchObject({
        DATABASE_URL: LOCAL_CONTEXT.databaseUrl,
        DROPLOAD_DB_SSL: 'off',
      });
      expect(env[name], name).not.toHaveProperty('DROPLOAD_DB_SECRET_ARN');
    }
  });

  it('still runs migrations on deploy and keeps the queues and event sources', () => {
    const t = get('local').template;
    t.resourceCountIs('Custom::Trigger', 1);
    t.resourceCountIs('AWS::SQS::Queue', 4);
    t.resourceCountIs('AWS::Lambda::EventSourceMapping', 2);
  });

  it('is cdk-nag clean', () => {
    expect(describeViolations(get('local').nagViolations)).toEqual([]);
  });
});

describe('database=existing', () => {
  it('creates no database or VPC and attaches functions to the given subnets and security group', () => {
    const t = get('existing').template;
    t.resourceCountIs('AWS::RDS::DBInstance', 0);
    t.resourceCountIs('AWS::EC2::VPC', 0);
    const ours = Object.entries(resourcesOfType(t, 'AWS::Lambda::Function')).filter(([id]) =>
      /^(Split|Load|Migrate|Sweep)Handler/.test(id),
    );
    expect(ours).toHaveLength(4);
    for (const [id, fn] of ours) {
      expect((fn.Properties as Record<string, unknown>).VpcConfig, id).toEqual({
        SubnetIds: EXISTING_CONTEXT.subnetIds.split(','),
        SecurityGroupIds: [EXISTING_CONTEXT.securityGroupId],
      });
    }
  });

  it('split and load read only the loader secret; migrate the admin secret and the loader secret', () => {
    const t = get('existing').template;
    const env = functionEnvironments(t);
    const { existingDbSecretArn: admin, existingLoaderSecretArn: loader } = EXISTING_CONTEXT;
    for (const name of ['split', 'load'] as const) {
      expect(env[name]?.DROPLOAD_DB_SECRET_ARN, name).toBe(loader);
      expect(JSON.stringify(env[name]), name).not.toContain(admin);
      expect(secretsReadBy(t, [functionRoleId(t, name)]), name).toEqual([loader]);
    }
    expect(env.migrate).toMatchObject({ DROPLOAD_DB_SECRET_ARN: admin, DROPLOAD_LOADER_SECRET_ARN: loader });
    expect(secretsReadBy(t, [functionRoleId(t, 'migrate')]).sort()).toEqual([admin, loader].sort());
    expect(wildcardViolations(statementsForRoles(t, functionRoleIds(t)))).toEqual([]);
  });

  it("creates no secret and no rotation: both secrets are the operator's", () => {
    const t = get('existing').template;
    t.resourceCountIs('AWS::SecretsManager::Secret', 0);
    t.resourceCountIs('AWS::SecretsManager::RotationSchedule', 0);
  });

  it('is cdk-nag clean', () => {
    expect(describeViolations(get('existing').nagViolations)).toEqual([]);
  });
});

describe('database=rds with rdsProxy=true and an alarm email', () => {
  it('the proxy authenticates the loader only, and may read only its secret', () => {
    const t = get('proxy').template;
    const { loader } = databaseSecrets(t);
    const [[, proxy] = ['', {}]] = Object.entries(resourcesOfType(t, 'AWS::RDS::DBProxy'));
    const auth = (proxy.Properties as { Auth: { SecretArn: unknown }[] }).Auth;
    expect(auth.map((a) => a.SecretArn)).toEqual([{ Ref: loader }]);
    const proxyRole = (proxy.Properties as { RoleArn: { 'Fn::GetAtt': [string, string] } }).RoleArn[
      'Fn::GetAtt'
    ][0];
    expect(secretsReadBy(t, [proxyRole])).toEqual([{ Ref: loader }]);
  });

  it('creates an RDS Proxy that requires TLS and points split/load (not migrate) at it', () => {
    const t = get('proxy').template;
    t.hasResourceProperties('AWS::RDS::DBProxy', { RequireTLS: true, EngineFamily: 'POSTGRESQL' });
    const env = functionEnvironments(t);
    expect(env.split).toHaveProperty('DROPLOAD_DB_HOST');
    expect(env.load).toHaveProperty('DROPLOAD_DB_HOST');
    expect(env.migrate).not.toHaveProperty('DROPLOAD_DB_HOST');
  });

  it('subscribes the email to the alarm topic', () => {
    get('proxy').template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
  });

  it('is cdk-nag clean', () => {
    expect(describeViolations(get('proxy').nagViolations)).toEqual([]);
  });
});

describe('database=local with a loaderDatabaseUrl', () => {
  it('split and load connect with the loader URL; migrate with the admin URL, and is told the loader URL', () => {
    const env = functionEnvironments(get('altConfig').template);
    for (const name of ['split', 'load'] as const) {
      expect(env[name]?.DATABASE_URL, name).toBe(LOADER_URL);
      expect(JSON.stringify(env[name]), name).not.toContain(LOCAL_CONTEXT.databaseUrl);
    }
    expect(env.migrate).toMatchObject({
      DATABASE_URL: LOCAL_CONTEXT.databaseUrl,
      DROPLOAD_LOADER_DATABASE_URL: LOADER_URL,
    });
  });

  it('without one, every handler uses databaseUrl and migrate manages no loader role', () => {
    const env = functionEnvironments(get('local').template);
    expect(env.migrate).not.toHaveProperty('DROPLOAD_LOADER_DATABASE_URL');
  });
});

describe('config=<other module>', () => {
  it("reads that module's prefixes: the functions may read objects under them only", () => {
    const t = get('altConfig').template;
    const policies = JSON.stringify(Object.values(resourcesOfType(t, 'AWS::IAM::Policy')));
    expect(policies).toContain('/drop/alias-marker/*');
    expect(policies).not.toContain('incoming/');
  });

  it('bundles that module as #dropload-config (esbuild alias)', () => {
    const outdir = get('altConfig').app.outdir;
    const bundles = readdirSync(outdir)
      .filter((d) => d.startsWith('asset.') && existsSync(join(outdir, d, 'index.mjs')))
      .map((d) => readFileSync(join(outdir, d, 'index.mjs'), 'utf8'));
    const handlers = bundles.filter((b) => b.includes('alias_marker_dataset'));
    expect(handlers.length).toBeGreaterThanOrEqual(2); // split and load read the dataset config
    for (const b of bundles) expect(b).not.toContain('signed_up'); // a field of the default config's customers
  });
});
