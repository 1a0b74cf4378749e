import { Kysely, type KyselyConfig, PostgresDialect, type PostgresPool } from 'kysely';
import pg from 'pg';
import { sqlState, TransientError } from '../core/errors.ts';
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

export function createDb(pool: PostgresPool, log?: KyselyConfig['log']): Kysely<Database> {
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log });
}

/** Where a process gets its connection settings; `fresh` reads them again (a secret that may have been rotated). */
export type SettingsSource = (options?: { fresh?: boolean }) => Promise<ConnectionSettings>;

/** invalid_password, invalid_authorization_specification (no such role, or pg_hba refuses it). */
const AUTH_FAILURES = new Set(['28P01', '28000']);

export function isAuthFailure(err: unknown): boolean {
  return AUTH_FAILURES.has(sqlState(err) ?? '');
}

/**
 * A pool whose credentials can change under it: when the server refuses a new connection's credentials
 * (a rotated password, a secret edited by an operator), it reads its settings again, replaces the pool
 * if they changed and tries once more. Sessions already open are not affected by a password change in
 * PostgreSQL, so only new connections need the fresh settings; the old pool closes its clients as
 * they are released.
 */
export class RenewingPool implements PostgresPool {
  readonly #source: SettingsSource;
  #settings: ConnectionSettings;
  #pool: pg.Pool;
  #renewal: Promise<void> | undefined;
  /** Replaced pools, ended once no request waits in them (pg-pool never serves the queue of an ended pool). */
  readonly #retired = new Set<pg.Pool>();

  private constructor(source: SettingsSource, settings: ConnectionSettings) {
    this.#source = source;
    this.#settings = settings;
    this.#pool = createPool(settings);
  }

  static async open(source: SettingsSource): Promise<RenewingPool> {
    return new RenewingPool(source, await source());
  }

  /** Read by Kysely for the connections it opens to cancel queries: the current pool's. */
  get options(): object {
    return this.#pool.options;
  }

  readonly Client = pg.Client;

  async connect(): Promise<pg.PoolClient> {
    const pool = this.#pool;
    try {
      return await pool.connect();
    } catch (err) {
      if (!isAuthFailure(err)) throw err;
      await this.#renew(pool);
    } finally {
      this.#endRetired();
    }
    try {
      return await this.#pool.connect();
    } catch (err) {
      if (!isAuthFailure(err)) throw err;
      // Retried later: a rotation may be between setting the new password and publishing it.
      throw new TransientError(
        `the database refused the credentials, also after reading them again (SQLSTATE ${sqlState(err)}): ` +
          'a rotation in progress, or a secret that does not match the database role',
        { cause: err },
      );
    }
  }

  async end(): Promise<void> {
    await this.#renewal?.catch(() => {});
    const pools = [...this.#retired, this.#pool];
    this.#retired.clear();
    await Promise.all(pools.map((p) => p.end()));
  }

  /** One re-read for all the connections that failed on the same pool; a newer pool is simply retried. */
  #renew(failed: pg.Pool): Promise<void> {
    if (this.#pool !== failed) return Promise.resolve();
    this.#renewal ??= this.#reread().finally(() => {
      this.#renewal = undefined;
    });
    return this.#renewal;
  }

  async #reread(): Promise<void> {
    const settings = await this.#source({ fresh: true });
    const same =
      settings.connectionString === this.#settings.connectionString &&
      settings.ssl === this.#settings.ssl &&
      settings.poolMax === this.#settings.poolMax;
    if (same) return;
    this.#retired.add(this.#pool);
    this.#settings = settings;
    this.#pool = createPool(settings);
  }

  /**
   * Ends the replaced pools nothing waits in: clients checked out of them finish their transactions and
   * are closed as they come back. A request still queued in one gets a connection with the old
   * credentials, is refused, and comes to the new pool.
   */
  #endRetired(): void {
    for (const pool of this.#retired) {
      if (pool.waitingCount > 0) continue;
      this.#retired.delete(pool);
      pool.end().catch(() => {});
    }
  }
}

/** Whether these settings log in: false when the server refuses the credentials; other failures throw. */
export async function logsIn(settings: ConnectionSettings): Promise<boolean> {
  const client = new pg.Client({
    connectionString: settings.connectionString,
    ssl: settings.ssl ? { rejectUnauthorized: true } : undefined,
    application_name: 'dropload',
    connectionTimeoutMillis: 10_000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return true;
  } catch (err) {
    if (isAuthFailure(err)) return false;
    throw err;
  } finally {
    await client.end().catch(() => {});
  }
}
