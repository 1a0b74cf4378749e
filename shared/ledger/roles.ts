import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { type Kysely, sql, type Transaction } from 'kysely';
import type { Dataset } from '../config/dataset.ts';
import { ConfigError, sqlState } from '../core/errors.ts';
import { type ConnectionSettings, logsIn } from './connection.ts';
import { foreignKeys, waitsForParents } from './foreign-keys.ts';
import { LEDGER_SCHEMA, MIGRATION_TABLES } from './migrate.ts';
import type { Database } from './schema.ts';

/**
 * The loader role: what split and load log in as. It may read and write the ledger and the datasets'
 * tables as the config declares them, create its own staging tables, and nothing else: it owns none of
 * the tables it loads into, so it cannot drop or alter them, and it cannot create roles or databases.
 * The migrate step (run as the database's admin user) creates it and keeps its grants in step with the
 * config on every run.
 */

export type TablePrivilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';
const TABLE_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'];
/** Attributes no role that parses untrusted files should have. */
const POWERS = ['rolsuper', 'rolcreaterole', 'rolcreatedb', 'rolreplication', 'rolbypassrls'] as const;

/**
 * What the datasets need on their tables, as the config names them (the one source of truth): rows are
 * written (inserted, upserted: SELECT, INSERT, UPDATE) into each table or target; `onNewVersion: 'replace'`
 * deletes a previous version's rows; a target's references only read their parent tables.
 */
export function loaderTablePrivileges(datasets: readonly Dataset[]): Map<string, Set<TablePrivilege>> {
  const plan = new Map<string, Set<TablePrivilege>>();
  const add = (table: string, ...privileges: TablePrivilege[]) => {
    const set = plan.get(table) ?? new Set<TablePrivilege>();
    for (const p of privileges) set.add(p);
    plan.set(table, set);
  };
  for (const d of datasets) {
    if (d.kind === 'table') {
      add(d.table, 'SELECT', 'INSERT', 'UPDATE');
      if (d.onNewVersion === 'replace') add(d.table, 'DELETE');
      continue;
    }
    for (const t of d.targets) add(t.table, 'SELECT', 'INSERT', 'UPDATE');
    for (const r of d.targets.flatMap((t) => t.references)) add(r.table, 'SELECT');
  }
  return plan;
}

/**
 * A single-table dataset that waits for parents reads the parent tables of its table's foreign keys
 * (to find the rows whose parent is missing): SELECT on them, as the catalog has them after the migrations.
 */
async function addWaitedParents(
  trx: Transaction<Database>,
  plan: Map<string, Set<TablePrivilege>>,
  datasets: readonly Dataset[],
): Promise<void> {
  for (const d of datasets) {
    if (d.kind !== 'table' || !waitsForParents(d)) continue;
    for (const fk of await foreignKeys(trx, d.table)) {
      const set = plan.get(fk.parent) ?? new Set<TablePrivilege>();
      set.add('SELECT');
      plan.set(fk.parent, set);
    }
  }
}

/**
 * The SCRAM-SHA-256 verifier of a password (RFC 5803), the form PostgreSQL stores: the server is sent
 * the verifier, so the password itself never appears in a statement (nor in a server log of one).
 * The password is used as given, as node-postgres does when it logs in (SASLprep changes only non-ASCII).
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const hmac = (text: string) => createHmac('sha256', salted).update(text).digest();
  const storedKey = createHash('sha256').update(hmac('Client Key')).digest('base64');
  const serverKey = hmac('Server Key').toString('base64');
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey}:${serverKey}`;
}

export interface LoaderRole {
  name: string;
  password: string;
}

/** The user and password of a connection string (what the loader's secret or URL holds). */
export function credentialsOf(settings: ConnectionSettings): LoaderRole {
  const url = new URL(settings.connectionString);
  const name = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  if (!name || !password) throw new ConfigError('the loader connection must name a user and a password');
  return { name, password };
}

export interface LoaderRoleOutcome {
  role: string;
  created: boolean;
  /** The password was (re)set: a new role, or one whose password no longer matched its secret. */
  passwordSet: boolean;
  /** The datasets' tables granted, schema-qualified. */
  tables: string[];
}

/**
 * Creates or updates the loader role and its grants, idempotently. The password is only changed when
 * the role cannot log in with it: a rotation of the secret (which changes the password itself) is not
 * undone by the next deploy. Afterwards the role must log in, or the deploy fails here rather than
 * every load after it.
 */
export async function applyLoaderRole(
  db: Kysely<Database>,
  role: LoaderRole,
  datasets: readonly Dataset[],
  canLogIn: () => Promise<boolean>,
): Promise<LoaderRoleOutcome> {
  const existed = await roleExists(db, role.name);
  const setPassword = !existed || !(await canLogIn());
  const tables = await db.transaction().execute(async (trx) => {
    // Two migrate runs at once (a deploy and an operator's) must not race on CREATE ROLE or the grants.
    await sql`select pg_advisory_xact_lock(hashtext('dropload loader role'))`.execute(trx);
    await ensureRole(trx, role, setPassword);
    await grantLedger(trx, role.name);
    const plan = loaderTablePrivileges(datasets);
    await addWaitedParents(trx, plan, datasets);
    return grantDatasets(trx, role.name, plan);
  });
  if (!(await canLogIn())) {
    throw new ConfigError(
      `the loader role "${role.name}" cannot log in with the credentials of its secret (host, port, database ` +
        'and password as the secret has them) after they were set: check the secret and pg_hba',
    );
  }
  return { role: role.name, created: !existed, passwordSet: setPassword, tables };
}

/** `applyLoaderRole` for the loader's connection settings: its login is checked with exactly those. */
export function prepareLoaderRole(
  db: Kysely<Database>,
  loader: ConnectionSettings,
  datasets: readonly Dataset[],
): Promise<LoaderRoleOutcome> {
  return applyLoaderRole(db, credentialsOf(loader), datasets, () => logsIn(loader));
}

async function roleExists(db: Kysely<Database>, name: string): Promise<boolean> {
  const { rows } = await sql<{
    n: number;
  }>`select count(*)::int as n from pg_roles where rolname = ${name}`.execute(db);
  return (rows[0]?.n ?? 0) > 0;
}

async function ensureRole(trx: Transaction<Database>, role: LoaderRole, setPassword: boolean): Promise<void> {
  const verifier = sql.lit(scramVerifier(role.password));
  if (!(await roleExists(trx, role.name))) {
    await asAdmin(
      `create the loader role "${role.name}": give it CREATEROLE, or create that role yourself (LOGIN, with the password of its secret)`,
      () =>
        sql`create role ${sql.id(role.name)} login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password ${verifier}`.execute(
          trx,
        ),
    );
    return;
  }
  if (setPassword) {
    await asAdmin(
      `set the password of the loader role "${role.name}", which does not match its secret: set it yourself, or let the admin manage that role (ADMIN OPTION)`,
      () => sql`alter role ${sql.id(role.name)} password ${verifier}`.execute(trx),
    );
  }
  const { rows } = await sql<Record<(typeof POWERS)[number], boolean>>`
    select ${sql.join(POWERS.map((p) => sql.ref(p)))} from pg_roles where rolname = ${role.name}`.execute(
    trx,
  );
  const powers = POWERS.filter((p) => rows[0]?.[p]);
  if (powers.length > 0) {
    throw new ConfigError(
      `the loader role "${role.name}" has ${powers.map((p) => p.slice(3).toUpperCase()).join(', ')}: ` +
        'split and load parse untrusted files with it, so it must be a plain login role',
    );
  }
}

/** Runs what the admin user may not be allowed to do, turning "permission denied" into what to do about it. */
async function asAdmin<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (sqlState(err) !== '42501') throw err;
    throw new ConfigError(`the database's admin user may not ${what} (${(err as Error).message})`, {
      cause: err,
    });
  }
}

/**
 * The ledger: read and write its tables and sequences (also those of later ledger migrations, by default
 * privileges); only read the migrations' bookkeeping. CREATE on the schema because `publish: 'file'`
 * creates its staging tables at load time (named after the target's current shape), and CREATE TABLE /
 * CREATE INDEX IF NOT EXISTS demand CREATE on the schema and ownership even when the table exists.
 */
async function grantLedger(trx: Transaction<Database>, loader: string): Promise<void> {
  const role = sql.id(loader);
  const schema = sql.id(LEDGER_SCHEMA);
  await sql`grant usage, create on schema ${schema} to ${role}`.execute(trx);
  await adoptStageTables(trx, loader);
  // Table by table, not ON ALL TABLES: the loader's own staging tables are not the admin's to grant on.
  const { rows } = await sql<{ name: string; kind: string }>`
    select c.relname as name, c.relkind::text as kind from pg_class c
    where c.relnamespace = ${LEDGER_SCHEMA}::regnamespace and c.relkind in ('r', 'p', 'S')
      and c.relowner <> (select oid from pg_roles where rolname = ${loader})
    order by 1`.execute(trx);
  const bookkeeping: readonly string[] = MIGRATION_TABLES;
  for (const { name, kind } of rows) {
    const object = sql.id(LEDGER_SCHEMA, name);
    if (kind === 'S') await sql`grant usage, select on sequence ${object} to ${role}`.execute(trx);
    else if (bookkeeping.includes(name)) {
      await sql`grant select on ${object} to ${role}`.execute(trx);
      await sql`revoke insert, update, delete, truncate on ${object} from ${role}`.execute(trx);
    } else await sql`grant select, insert, update, delete on ${object} to ${role}`.execute(trx);
  }
  await sql`alter default privileges in schema ${schema} grant select, insert, update, delete on tables to ${role}`.execute(
    trx,
  );
  await sql`alter default privileges in schema ${schema} grant usage, select on sequences to ${role}`.execute(
    trx,
  );
}

/**
 * Staging tables created before the loader role existed (by the admin user) must become the loader's:
 * it re-runs CREATE INDEX IF NOT EXISTS on them, which needs ownership. Giving a table away needs
 * membership in the new owner (SET on it, from PostgreSQL 16), which the role's creator may grant itself.
 */
async function adoptStageTables(trx: Transaction<Database>, loader: string): Promise<void> {
  // Named `stage_<dataset>_<hash>` by publish.ts stageTable().
  const { rows } = await sql<{ name: string }>`
    select c.relname as name from pg_class c
    where c.relnamespace = ${LEDGER_SCHEMA}::regnamespace and c.relkind = 'r' and c.relname like 'stage\\_%'
      and c.relowner <> (select oid from pg_roles where rolname = ${loader})
    order by 1`.execute(trx);
  if (rows.length === 0) return;
  const { rows: me } = await sql<{ superuser: boolean }>`
    select rolsuper as superuser from pg_roles where rolname = current_user`.execute(trx);
  if (!me[0]?.superuser) await sql`grant ${sql.id(loader)} to current_user`.execute(trx);
  for (const { name } of rows) {
    await sql`alter table ${sql.id(LEDGER_SCHEMA, name)} owner to ${sql.id(loader)}`.execute(trx);
  }
}

interface ResolvedTable {
  oid: number;
  schema: string;
  name: string;
}

async function resolveTable(trx: Transaction<Database>, configName: string): Promise<ResolvedTable> {
  const { rows } = await sql<ResolvedTable>`
    select c.oid::int8 as oid, n.nspname as schema, c.relname as name
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.oid = to_regclass(${configName})`.execute(trx);
  const found = rows[0];
  if (!found) {
    throw new ConfigError(
      `table ${configName} (named by the config) does not exist after the migrations, so the loader role ` +
        'cannot be granted on it: add its migration',
    );
  }
  return found;
}

/**
 * Makes the loader's privileges on tables outside the ledger exactly what the config needs: granted
 * where it needs them, revoked where it no longer does (a dataset removed, or no longer `replace`).
 */
async function grantDatasets(
  trx: Transaction<Database>,
  loader: string,
  plan: Map<string, Set<TablePrivilege>>,
): Promise<string[]> {
  const role = sql.id(loader);
  const wanted = new Map<string, { table: ResolvedTable; privileges: Set<string> }>();
  for (const [configName, privileges] of plan) {
    const table = await resolveTable(trx, configName);
    const key = `${table.schema}.${table.name}`;
    const entry = wanted.get(key) ?? { table, privileges: new Set<string>() };
    for (const p of privileges) entry.privileges.add(p);
    wanted.set(key, entry);
  }
  const { rows: held } = await sql<ResolvedTable>`
    select distinct c.oid::int8 as oid, n.nspname as schema, c.relname as name
    from pg_class c join pg_namespace n on n.oid = c.relnamespace cross join lateral aclexplode(c.relacl) a
    where a.grantee = (select oid from pg_roles where rolname = ${loader}) and n.nspname <> ${LEDGER_SCHEMA}`.execute(
    trx,
  );
  for (const table of held) {
    const key = `${table.schema}.${table.name}`;
    if (!wanted.has(key)) wanted.set(key, { table, privileges: new Set() });
  }
  for (const { table, privileges } of wanted.values()) {
    const target = sql.id(table.schema, table.name);
    const give = TABLE_PRIVILEGES.filter((p) => privileges.has(p));
    const take = TABLE_PRIVILEGES.filter((p) => !privileges.has(p));
    if (give.length > 0) {
      await sql`grant usage on schema ${sql.id(table.schema)} to ${role}`.execute(trx);
      await sql`grant ${sql.raw(give.join(', '))} on ${target} to ${role}`.execute(trx);
    }
    await sql`revoke ${sql.raw(take.join(', '))} on ${target} from ${role}`.execute(trx);
    if (privileges.has('INSERT')) await grantSerialSequences(trx, loader, table);
  }
  return [...wanted.entries()]
    .filter(([, w]) => w.privileges.size > 0)
    .map(([key]) => key)
    .sort();
}

/** A serial column's default calls nextval(), which needs USAGE on its sequence (identity columns do not). */
async function grantSerialSequences(
  trx: Transaction<Database>,
  loader: string,
  table: ResolvedTable,
): Promise<void> {
  const { rows } = await sql<Omit<ResolvedTable, 'oid'>>`
    select sn.nspname as schema, s.relname as name
    from pg_depend d join pg_class s on s.oid = d.objid and s.relkind = 'S' join pg_namespace sn on sn.oid = s.relnamespace
    where d.refobjid = ${table.oid}::int8::oid and d.deptype = 'a'`.execute(trx);
  for (const seq of rows) {
    await sql`grant usage on sequence ${sql.id(seq.schema, seq.name)} to ${sql.id(loader)}`.execute(trx);
  }
}
