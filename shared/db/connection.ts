import { Kysely, type KyselyConfig, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.ts';

export interface ConnectionSettings {
  connectionString: string;
  /** Connections this process may hold: part of the whole pipeline's connection budget. */
  poolMax: number;
  ssl?: boolean;
}

// int8 and numeric come back as strings by default; ledger counts fit a JS number, so parse them.
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export function createPool(settings: ConnectionSettings): pg.Pool {
  const pool = new pg.Pool({
    connectionString: settings.connectionString,
    max: settings.poolMax,
    // How operators (and the benchmark's connection count) tell dropload's sessions apart in pg_stat_activity.
    application_name: 'dropload',
    ssl: settings.ssl ? { rejectUnauthorized: true } : undefined,
    types,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // A client losing its connection (a database restart) emits 'error'; with no listener Node would crash
  // the process. The loss surfaces anyway as the failure of the query or transaction using the client,
  // which classifyError calls transient; the pool replaces the client on the next checkout.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

export function createDb(pool: pg.Pool, log?: KyselyConfig['log']): Kysely<Database> {
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log });
}
