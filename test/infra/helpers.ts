import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App, PolicyViolation } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../infra/build.ts';
import { nagPacks } from '../../infra/nag.ts';
import type { DroploadStack } from '../../infra/stack.ts';

/** Synthesis bundles three handlers with esbuild: give beforeAll room. */
export const SYNTH_TIMEOUT_MS = 60_000;

const cdkJson = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
  context: Record<string, unknown>;
};

export interface Synthesized {
  app: App;
  stack: DroploadStack;
  template: Template;
  /** Unacknowledged AwsSolutions + Serverless findings (errors and warnings). */
  nagViolations: PolicyViolation[];
  cleanup: () => void;
}

/** Builds the app exactly as `cdk synth` does (cdk.json context + overrides) into a temp outdir. */
export async function synth(context: Record<string, unknown> = {}): Promise<Synthesized> {
  const outdir = mkdtempSync(join(tmpdir(), 'dropload-cdk-'));
  // nag: false — the packs are run directly below, so findings come back as data instead of a synth failure.
  const { app, stack } = await buildApp({ nag: false, outdir, context: { ...cdkJson.context, ...context } });
  const template = Template.fromStack(stack);
  const nagViolations = nagPacks().flatMap((pack) => pack.validateScope(app).violations);
  return {
    app,
    stack,
    template,
    nagViolations,
    cleanup: () => rmSync(outdir, { recursive: true, force: true }),
  };
}

export const LOCAL_CONTEXT = {
  database: 'local',
  databaseUrl: 'postgres://postgres:postgres@postgres:5432/postgres',
};

export const EXISTING_CONTEXT = {
  database: 'existing',
  existingDbSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:dropload/db-AbC123',
  existingLoaderSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:dropload/loader-XyZ789',
  vpcId: 'vpc-0123456789abcdef0',
  subnetIds: 'subnet-0123456789abcdef0,subnet-0123456789abcdef1',
  securityGroupId: 'sg-0123456789abcdef0',
};

/** Human-readable nag findings, for assertion messages. */
export function describeViolations(violations: PolicyViolation[]): string[] {
  return violations.map(
    (v) => `${v.ruleName} @ ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
  );
}

type Json = Record<string, unknown>;
export interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

const asArray = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

export function resourcesOfType(template: Template, type: string): Record<string, Json> {
  return template.findResources(type) as Record<string, Json>;
}

/** Logical ids of the roles of dropload's own functions (split, load, migrate, sweep) — not CDK's helper Lambdas. */
export function functionRoleIds(template: Template): string[] {
  const fns = resourcesOfType(template, 'AWS::Lambda::Function');
  return Object.entries(fns)
    .filter(([id]) => /^(Split|Load|Migrate|Sweep)Handler/.test(id))
    .map(([, r]) => {
      const role = (r.Properties as { Role: { 'Fn::GetAtt': [string, string] } }).Role;
      return role['Fn::GetAtt'][0];
    });
}

/** Every statement of every AWS::IAM::Policy attached to one of the given roles. */
export function statementsForRoles(template: Template, roleIds: string[]): Statement[] {
  const policies = resourcesOfType(template, 'AWS::IAM::Policy');
  return Object.values(policies).flatMap((p) => {
    const props = p.Properties as { Roles?: { Ref: string }[]; PolicyDocument: { Statement: Statement[] } };
    const attached = (props.Roles ?? []).some((r) => roleIds.includes(r.Ref));
    return attached ? props.PolicyDocument.Statement : [];
  });
}

/** Actions that AWS only authorises on Resource "*" and that touch no dropload data. */
const RESOURCELESS_ACTIONS = new Set(['xray:PutTraceSegments', 'xray:PutTelemetryRecords']);

/** Statements that grant `*` actions, or `*` resources for anything but resource-less actions. */
export function wildcardViolations(statements: Statement[]): Statement[] {
  return statements.filter((s) => {
    if (s.Effect !== 'Allow') return false;
    const actions = asArray(s.Action);
    if (actions.some((a) => a === '*' || a.endsWith(':*'))) return true;
    const starResource = asArray(s.Resource).some((r) => r === '*');
    return starResource && !actions.every((a) => RESOURCELESS_ACTIONS.has(a));
  });
}

export function functionEnvironments(template: Template): Record<string, Record<string, unknown>> {
  const fns = resourcesOfType(template, 'AWS::Lambda::Function');
  const out: Record<string, Record<string, unknown>> = {};
  for (const [id, r] of Object.entries(fns)) {
    const match = /^(Split|Load|Migrate|Sweep)Handler/.exec(id);
    if (!match?.[1]) continue;
    const env = (r.Properties as { Environment?: { Variables?: Record<string, unknown> } }).Environment;
    out[match[1].toLowerCase()] = env?.Variables ?? {};
  }
  return out;
}

/** The role of one of dropload's functions ('split', 'load', 'migrate'). */
export function functionRoleId(template: Template, name: 'split' | 'load' | 'migrate' | 'sweep'): string {
  const prefix = `${name[0]?.toUpperCase()}${name.slice(1)}Handler`;
  const id = functionRoleIds(template).find((r) => r.startsWith(prefix));
  if (!id) throw new Error(`no role for ${name}`);
  return id;
}

/** The Resource of every statement of the given roles that allows secretsmanager:GetSecretValue. */
export function secretsReadBy(template: Template, roleIds: string[]): unknown[] {
  return statementsForRoles(template, roleIds)
    .filter((s) => asArray(s.Action).includes('secretsmanager:GetSecretValue'))
    .flatMap((s) => asArray(s.Resource));
}

/**
 * The logical ids of the database secrets as the functions see them (the target attachment, which
 * adds host and port): `master` holds the RDS master user, `loader` the user split and load log in as.
 */
export function databaseSecrets(template: Template): { master: string; loader: string } {
  const secrets = resourcesOfType(template, 'AWS::SecretsManager::Secret');
  const userOf = (secretId: string) => {
    const props = secrets[secretId]?.Properties as
      | { GenerateSecretString?: { SecretStringTemplate?: string } }
      | undefined;
    const generate = props?.GenerateSecretString;
    return (JSON.parse(generate?.SecretStringTemplate ?? '{}') as { username?: string }).username;
  };
  const out: Record<string, string> = {};
  for (const [id, a] of Object.entries(
    resourcesOfType(template, 'AWS::SecretsManager::SecretTargetAttachment'),
  )) {
    const secretId = (a.Properties as { SecretId: { Ref: string } }).SecretId.Ref;
    out[userOf(secretId) === 'dropload_loader' ? 'loader' : 'master'] = id;
  }
  if (!out.master || !out.loader)
    throw new Error(`expected a master and a loader secret, found ${JSON.stringify(out)}`);
  return { master: out.master, loader: out.loader };
}
