import { S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';
import type { ConnectionSettings, SettingsSource } from '../ledger/connection.ts';

type Env = Record<string, string | undefined>;

function positiveInt(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new ConfigError(`${name} must be a positive whole number, got "${raw}"`);
  return n;
}

export function required(env: Env, name: string): string {
  const value = env[name];
  if (!value) throw new ConfigError(`${name} is not set`);
  return value;
}

const RdsSecret = z.object({
  host: z.string(),
  port: z.coerce.number().int(),
  username: z.string(),
  password: z.string(),
  dbname: z.string().optional(),
});

/** Which variables name a connection: the handlers' own, or (for migrate) the loader role's. */
interface ConnectionVariables {
  url: string;
  secret: string;
}
const OWN: ConnectionVariables = { url: 'DATABASE_URL', secret: 'DROPLOAD_DB_SECRET_ARN' };
const LOADER: ConnectionVariables = {
  url: 'DROPLOAD_LOADER_DATABASE_URL',
  secret: 'DROPLOAD_LOADER_SECRET_ARN',
};

/** DATABASE_URL, else the RDS-style secret named by DROPLOAD_DB_SECRET_ARN (read now: call again to re-read it). */
export async function databaseSettings(
  env: Env = process.env,
  names: ConnectionVariables = OWN,
): Promise<ConnectionSettings> {
  const poolMax = positiveInt(env, 'DROPLOAD_DB_POOL_MAX', 2);
  const sslSetting = env.DROPLOAD_DB_SSL;
  if (sslSetting && sslSetting !== 'require' && sslSetting !== 'off') {
    throw new ConfigError(`DROPLOAD_DB_SSL must be "require" or "off", got "${sslSetting}"`);
  }
  const given = env[names.url];
  if (given) return { connectionString: given, poolMax, ssl: sslSetting === 'require' };
  const arn = env[names.secret];
  if (!arn) throw new ConfigError(`${names.url} or ${names.secret} must be set`);
  const client = new SecretsManagerClient({});
  const { SecretString } = await client.send(new GetSecretValueCommand({ SecretId: arn }));
  const parsed = RdsSecret.safeParse(JSON.parse(SecretString ?? '{}'));
  if (!parsed.success) {
    throw new ConfigError(
      `${names.secret}: secret lacks ${parsed.error.issues.map((i) => i.path.join('.')).join(', ')}`,
    );
  }
  const s = parsed.data;
  // Behind RDS Proxy the secret still names the instance; the stack passes the proxy's endpoint.
  const host = env.DROPLOAD_DB_HOST || s.host;
  const url = new URL(`postgres://${host}:${s.port}/${s.dbname ?? 'postgres'}`);
  url.username = s.username;
  url.password = s.password;
  return { connectionString: url.toString(), poolMax, ssl: sslSetting !== 'off' };
}

/**
 * `databaseSettings`, read once and kept; `{ fresh: true }` reads them again (the pool asks when the
 * server refuses the credentials, e.g. after the secret was rotated).
 */
export function databaseSettingsSource(env: Env = process.env): SettingsSource {
  let current: Promise<ConnectionSettings> | undefined;
  return ({ fresh = false } = {}) => {
    if (fresh || !current) {
      const read = databaseSettings(env);
      read.catch(() => {
        if (current === read) current = undefined;
      });
      current = read;
    }
    return current;
  };
}

/**
 * The loader role's connection (what split and load log in with), given to the migrate step so it can
 * create that role and grant it what the datasets need: DROPLOAD_LOADER_DATABASE_URL or the secret named
 * by DROPLOAD_LOADER_SECRET_ARN. Undefined when neither is set: there is no loader role to manage.
 */
export async function loaderSettings(env: Env = process.env): Promise<ConnectionSettings | undefined> {
  if (!env[LOADER.url] && !env[LOADER.secret]) return undefined;
  // Never the proxy (DROPLOAD_DB_HOST): migrate checks the role against the database itself.
  return databaseSettings({ ...env, DROPLOAD_DB_HOST: undefined, DROPLOAD_DB_POOL_MAX: '1' }, LOADER);
}

/** S3 and SQS clients for AWS, or for the emulator/LocalStack named by AWS_ENDPOINT_URL. */
export function awsClients(env: Env = process.env): { s3: S3Client; sqs: SQSClient } {
  const endpoint = env.AWS_ENDPOINT_URL;
  const local = endpoint
    ? {
        endpoint,
        region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
        // Emulators accept any key; a developer machine may have none configured.
        ...(env.AWS_ACCESS_KEY_ID ? {} : { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }),
      }
    : {};
  return { s3: new S3Client({ ...local, forcePathStyle: Boolean(endpoint) }), sqs: new SQSClient(local) };
}
