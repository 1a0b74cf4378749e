import { S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import type { ConnectionSettings } from './db/connection.ts';
import { ConfigError } from './errors.ts';

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

/** DATABASE_URL, else the RDS-style secret named by DROPLOAD_DB_SECRET_ARN (read once, at cold start). */
export async function databaseSettings(env: Env = process.env): Promise<ConnectionSettings> {
  const poolMax = positiveInt(env, 'DROPLOAD_DB_POOL_MAX', 2);
  const sslSetting = env.DROPLOAD_DB_SSL;
  if (sslSetting && sslSetting !== 'require' && sslSetting !== 'off') {
    throw new ConfigError(`DROPLOAD_DB_SSL must be "require" or "off", got "${sslSetting}"`);
  }
  if (env.DATABASE_URL) {
    return { connectionString: env.DATABASE_URL, poolMax, ssl: sslSetting === 'require' };
  }
  const arn = env.DROPLOAD_DB_SECRET_ARN;
  if (!arn) throw new ConfigError('DATABASE_URL or DROPLOAD_DB_SECRET_ARN must be set');
  const client = new SecretsManagerClient({});
  const { SecretString } = await client.send(new GetSecretValueCommand({ SecretId: arn }));
  const parsed = RdsSecret.safeParse(JSON.parse(SecretString ?? '{}'));
  if (!parsed.success) {
    throw new ConfigError(
      `DROPLOAD_DB_SECRET_ARN: secret lacks ${parsed.error.issues.map((i) => i.path.join('.')).join(', ')}`,
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
