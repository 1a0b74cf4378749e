import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Node } from 'constructs';
import { z } from 'zod';
import { resolveConfig } from '../shared/config/config.ts';
import { resolveDroploadToThisCopy } from '../shared/config/self-reference.ts';
import { reservedPrefixProblem } from '../shared/core/bucket-layout.ts';
import { ConfigError } from '../shared/core/errors.ts';
import { defaultConfigModule, projectRoot } from './paths.ts';

/**
 * Deploy-time configuration, read from CDK context (`cdk.json` "context" or `-c key=value`).
 * Values from the command line are strings, values from cdk.json may be typed: both are accepted.
 */

// `-c alarmEmail=` means "not set", not "set to the empty string".
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (v === '' || v === null ? undefined : v), schema.optional());

const bool = z.union([z.boolean(), z.stringbool()]);
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const secretArn = z
  .string()
  .regex(
    /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/,
    'must be the complete secret ARN, including the 6-character suffix AWS appends (…:secret:name-AbC123)',
  );

const subnetIds = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter((s) => s.length > 0))
  .pipe(
    z
      .array(
        z
          .string()
          .regex(/^subnet-([0-9a-f]{8}|[0-9a-f]{17})$/, 'each id must look like subnet-0123456789abcdef0'),
      )
      .min(1),
  );

const common = z.object({
  stackName: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/)
    .default('Dropload'),
  /** Dataset config module bundled as `#dropload-config`; relative paths are from the repository root. */
  config: optional(z.string()),
  alarmEmail: optional(z.email()),
  logLevel: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
  logRetentionDays: z.coerce
    .number()
    .int()
    .refine((d) => [7, 14, 30, 60, 90, 180, 365].includes(d), 'must be one of 7, 14, 30, 60, 90, 180, 365')
    .default(30),
  /** Postgres connections each Lambda instance may open (DROPLOAD_DB_POOL_MAX). */
  dbPoolMax: int(1, 20).default(2),
  /** Upper bound on concurrent split / load invocations from their SQS event sources (2 is the SQS minimum). */
  splitMaxConcurrency: int(2, 1000).default(2),
  loadMaxConcurrency: int(2, 1000).default(10),
  /** Connections the database can give to dropload's Lambdas, leaving headroom for humans and migrations. */
  dbConnectionBudget: int(4, 5000).default(40),
});

const rds = z.object({
  database: z.literal('rds'),
  rdsProxy: bool.default(false),
  dbInstanceType: z
    .string()
    .regex(/^[a-z0-9]+\.[a-z0-9]+$/, 'must be an instance class.size such as t4g.micro')
    .default('t4g.micro'),
  dbMultiAz: bool.default(false),
  dbDeletionProtection: bool.default(true),
});

const existing = z.object({
  database: z.literal('existing'),
  /** Admin user (owns the schema, may create roles): only the migrate function reads it. */
  existingDbSecretArn: secretArn,
  /** The loader user split and load log in as; migrate creates it (or updates it) and grants it the datasets' tables. */
  existingLoaderSecretArn: secretArn,
  vpcId: z.string().regex(/^vpc-([0-9a-f]{8}|[0-9a-f]{17})$/, 'must look like vpc-0123456789abcdef0'),
  subnetIds,
  securityGroupId: z.string().regex(/^sg-([0-9a-f]{8}|[0-9a-f]{17})$/, 'must look like sg-0123456789abcdef0'),
});

const postgresUrl = z.url({
  protocol: /^postgres(ql)?$/,
  error: 'must be a postgres://user:pass@host:port/db URL',
});

const local = z.object({
  database: z.literal('local'),
  databaseUrl: postgresUrl,
  /** Optional: split and load log in as this user, which migrate creates with the datasets' grants. */
  loaderDatabaseUrl: optional(postgresUrl),
});

const schema = z
  .intersection(common, z.discriminatedUnion('database', [rds, existing, local]))
  .superRefine((c, ctx) => {
    // The database must never be asked for more connections than it can give: every concurrent
    // invocation holds up to dbPoolMax connections for its lifetime.
    const worstCase = (c.splitMaxConcurrency + c.loadMaxConcurrency) * c.dbPoolMax;
    if (worstCase > c.dbConnectionBudget) {
      ctx.addIssue({
        code: 'custom',
        path: ['loadMaxConcurrency'],
        message: `(splitMaxConcurrency + loadMaxConcurrency) × dbPoolMax = ${worstCase} exceeds dbConnectionBudget = ${c.dbConnectionBudget}`,
      });
    }
  });

export type DeployConfig = z.output<typeof schema>;
export type DatabaseMode = DeployConfig['database'];

/** Every context key the app reads; anything else in context is CDK's business. */
export const CONTEXT_KEYS = [
  'stackName',
  'config',
  'alarmEmail',
  'logLevel',
  'logRetentionDays',
  'dbPoolMax',
  'splitMaxConcurrency',
  'loadMaxConcurrency',
  'dbConnectionBudget',
  'database',
  'rdsProxy',
  'dbInstanceType',
  'dbMultiAz',
  'dbDeletionProtection',
  'existingDbSecretArn',
  'existingLoaderSecretArn',
  'vpcId',
  'subnetIds',
  'securityGroupId',
  'databaseUrl',
  'loaderDatabaseUrl',
] as const;

/** Parse and validate the app's context; the error names each bad or missing key. */
export function readDeployConfig(node: Node): DeployConfig {
  const raw: Record<string, unknown> = {};
  for (const key of CONTEXT_KEYS) raw[key] = node.tryGetContext(key);
  return parseDeployConfig(raw, 'context');
}

/** The deploy settings, as CDK context or as an object an app of your own passes (the same keys). */
export type DeployInput = Partial<Record<(typeof CONTEXT_KEYS)[number], unknown>>;

/** Validates deploy settings and applies their defaults (database defaults to rds); the error names each bad key. */
export function parseDeployConfig(
  input: DeployInput,
  source: 'context' | 'setting' = 'setting',
): DeployConfig {
  const raw: Record<string, unknown> = { ...input, database: input.database ?? 'rds' };
  const result = schema.safeParse(raw);
  if (result.success) return result.data;

  const lines = result.error.issues.map((issue) => {
    const key = String(issue.path[0] ?? '(root)');
    const what = raw[key] === undefined ? 'is missing' : `is invalid (${JSON.stringify(raw[key])})`;
    return `  - ${source} "${key}" ${what}: ${issue.message}`;
  });
  throw new Error(
    `Invalid dropload deploy configuration (database=${String(raw.database)}):\n${lines.join('\n')}\n` +
      'Set values with `npx cdk synth -c key=value` or in cdk.json "context"; see docs/deploy.md.',
  );
}

/** Absolute path of the dataset config module to bundle (context `config`, else env DROPLOAD_CONFIG). */
export function resolveConfigModule(config: DeployConfig): string {
  const chosen = config.config ?? process.env.DROPLOAD_CONFIG;
  if (chosen === undefined || chosen === '') return defaultConfigModule;
  const abs = isAbsolute(chosen) ? chosen : resolve(projectRoot ?? '.', chosen);
  if (!existsSync(abs))
    throw new Error(`Dataset config module "${chosen}" (context "config") not found at ${abs}`);
  return abs;
}

/** Where notifications go when the config module cannot be read at synth time. */
export const FALLBACK_PREFIX = 'incoming/';

/**
 * Reads the datasets' S3 key prefixes from the config module (Node runs the TypeScript directly),
 * so the bucket only notifies the ingest queue for keys a dataset will claim.
 * Without a config module yet (fresh scaffold) it falls back to `incoming/`.
 */
export async function loadDatasetPrefixes(configModule: string): Promise<string[]> {
  if (!existsSync(configModule)) {
    if (configModule === defaultConfigModule) return [FALLBACK_PREFIX];
    throw new Error(`Dataset config module not found: ${configModule}`);
  }
  let loaded: unknown;
  resolveDroploadToThisCopy();
  try {
    loaded = ((await import(pathToFileURL(configModule).href)) as { default?: unknown }).default;
  } catch (err) {
    throw new Error(`Could not import dataset config module ${configModule}: ${String(err)}`, { cause: err });
  }
  // The application's own resolver: same validation and the same default prefix (incoming/<name>/) as the handlers.
  const { datasets } = resolveConfig(loaded, configModule);
  return normalizePrefixes(datasets.map((d) => d.prefix));
}

/**
 * S3 rejects notification configurations whose prefix filters overlap for the same event,
 * so keep only the shortest prefix of any nested pair (it already covers the longer one).
 * A prefix where dropload writes (see RESERVED_PREFIXES) is refused: notifying on it would loop.
 */
export function normalizePrefixes(prefixes: readonly string[]): string[] {
  for (const p of prefixes) {
    const problem = reservedPrefixProblem(p);
    if (problem) throw new ConfigError(`dataset ${problem}`);
  }
  const sorted = [...new Set(prefixes)].sort((a, b) => a.length - b.length);
  const kept: string[] = [];
  for (const p of sorted) if (!kept.some((k) => p.startsWith(k))) kept.push(p);
  return kept.sort();
}
