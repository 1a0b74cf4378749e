import { randomBytes } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type DroploadConfig, resolveConfig } from '../../shared/config/config.ts';
import { defineDataset, type TableDataset } from '../../shared/config/dataset.ts';
import { integer } from '../../shared/config/fields.ts';
import { ConfigError } from '../../shared/core/errors.ts';
import { createDb, createPool } from '../../shared/ledger/connection.ts';
import { migrateToLatest } from '../../shared/ledger/migrate.ts';
import {
  applyLoaderRole,
  credentialsOf,
  type LoaderRoleOutcome,
  prepareLoaderRole,
  scramVerifier,
} from '../../shared/ledger/roles.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { ensureStage, stageTable } from '../../shared/load/write/publish.ts';
import { resetDatabase, startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

// The loader role split and load log in as, on the real server (DATABASE_URL: logins with passwords,
// a migrator that is no superuser, like RDS's master) or on PGlite (one session: the role is switched
// with SET ROLE, which PostgreSQL checks the same way).

const code = z.string().regex(/^[a-z]+$/, 'lower-case letters');
const qty = integer();

const config: DroploadConfig = {
  datasets: [
    defineDataset({ name: 'rt-items', format: 'csv', table: 'rt.items', schema: z.object({ code, qty }) }),
    defineDataset({
      name: 'rt-upserts',
      format: 'csv',
      table: 'rt_upserts', // unqualified: found on the search path, like a user's `orders`
      mode: 'upsert',
      key: ['code'],
      schema: z.object({ code, qty }),
    }),
    defineDataset({
      name: 'rt-versions',
      format: 'csv',
      table: 'rt.versions',
      publish: 'file',
      onNewVersion: 'replace',
      sourceColumn: 'file_id',
      schema: z.object({ code, qty }),
    }),
    // A foreign key the config does not name: its parent is read (SELECT only) to find missing parents.
    defineDataset({
      name: 'rt-paints',
      format: 'csv',
      table: 'rt.paints',
      schema: z.object({ code, color: code }),
    }),
    // publish: 'file' whose staging table the loader creates itself, at load time.
    defineDataset({
      name: 'rt-wholes',
      format: 'csv',
      table: 'rt.wholes',
      publish: 'file',
      schema: z.object({ code, qty }),
    }),
    defineDataset({
      name: 'rt-family',
      format: 'csv',
      schema: z.object({ code, kind: code, note: z.string() }),
      targets: [
        {
          table: 'rt.parents',
          columns: { code: 'code' },
          references: { kind_id: { table: 'rt.kinds', key: { code: 'kind' } } },
          key: ['code'],
        },
        {
          table: 'rt.notes',
          columns: { note: 'note' },
          references: { parent_id: { table: 'rt.parents', key: { code: 'code' } } },
          key: ['parent_id'],
        },
      ],
    }),
  ],
  migrations: {
    '20261210000000_roles_test': {
      async up(db: Kysely<unknown>) {
        await sql`create schema rt`.execute(db);
        await sql`create table rt.items (id bigserial primary key, code text not null, qty integer not null)`.execute(
          db,
        );
        await sql`create table rt_upserts (code text primary key, qty integer not null)`.execute(db);
        await sql`create table rt.versions (code text not null, qty integer not null, file_id bigint not null)`.execute(
          db,
        );
        await sql`create table rt.kinds (id serial primary key, code text unique not null)`.execute(db);
        await sql`insert into rt.kinds (code) values ('a'), ('b')`.execute(db);
        await sql`create table rt.parents (id bigserial primary key, code text unique not null,
          kind_id integer not null references rt.kinds (id))`.execute(db);
        await sql`create table rt.notes (parent_id bigint primary key references rt.parents (id), note text not null)`.execute(
          db,
        );
        await sql`create table rt.wholes (code text not null, qty integer not null)`.execute(db);
        await sql`create table rt.colors (code text primary key)`.execute(db);
        await sql`insert into rt.colors values ('red')`.execute(db);
        await sql`create table rt.paints (code text primary key, color text references rt.colors (code))`.execute(
          db,
        );
        await sql`create table rt.secrets (v text)`.execute(db);
        await sql`insert into rt.secrets values ('not for the loader')`.execute(db);
      },
    },
  },
};
const datasets = resolveConfig(config, 'roles test').datasets;
const TABLES = [
  'rt.items',
  'public.rt_upserts',
  'rt.versions',
  'rt.wholes',
  'rt.kinds',
  'rt.parents',
  'rt.notes',
  'rt.colors',
  'rt.paints',
  'rt.secrets',
];
const PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'];

const suffix = randomBytes(4).toString('hex');
const loaderName = `rt_loader_${suffix}`;
const loaderPassword = `pw-${randomBytes(12).toString('base64url')}`;

/** Whether `password`, hashed with the salt and iterations of the stored SCRAM verifier, gives that verifier. */
function verifierMatches(stored: string | undefined, password = loaderPassword): boolean {
  const [, iterations, salt] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored ?? '') ?? [];
  if (!iterations || !salt) return false;
  return scramVerifier(password, Buffer.from(salt, 'base64'), Number(iterations)) === stored;
}

/**
 * Whether the loader's password is the one its secret holds. Its stored SCRAM verifier is checked:
 * neither server here checks passwords (the test server trusts local logins, PGlite has none).
 */
const canLogIn = async () => verifierMatches(await h.storedVerifier());

/** Where the test runs: who migrates, how the pipeline connects as the loader. */
interface Harness {
  real: boolean;
  /** The role that runs the migrations (no superuser). */
  migratorRole: string;
  migratorUrl: string;
  loaderUrl: string;
  /** PGlite: the one session becomes the loader (SET ROLE) or the migrator again; real server: nothing. */
  become(role: 'loader' | 'migrator'): Promise<void>;
  /** Runs `fn` on a connection of a plain user (no CREATEROLE), as a database admin may be. */
  asPlainUser(fn: (db: Kysely<Database>) => Promise<void>): Promise<void>;
  /** The loader's password as the server stores it (pg_authid.rolpassword). */
  storedVerifier(): Promise<string | undefined>;
  stop(): Promise<void>;
}

async function realServer(base: string): Promise<Harness> {
  const admin = createDb(createPool({ connectionString: base, poolMax: 1 }));
  // Earlier test files left the ledger behind, owned by the superuser: the migrator must create its own.
  await resetDatabase(['rt_upserts'], base);
  await sql`drop schema if exists rt cascade`.execute(admin);
  const migrator = `rt_mig_${suffix}`;
  const plain = `rt_plain_${suffix}`;
  // Like RDS's master user: owns the database (and so its public schema), may create roles, is no superuser.
  await sql`create role ${sql.id(migrator)} login createrole password ${sql.lit(`mig-${suffix}`)}`.execute(
    admin,
  );
  await sql`alter database ${sql.id(new URL(base).pathname.slice(1))} owner to ${sql.id(migrator)}`.execute(
    admin,
  );
  const as = (user: string, password: string) => {
    const url = new URL(base);
    url.username = user;
    url.password = password;
    return url.toString();
  };
  return {
    real: true,
    migratorRole: migrator,
    migratorUrl: as(migrator, `mig-${suffix}`),
    loaderUrl: as(loaderName, loaderPassword),
    become: async () => {},
    asPlainUser: async (fn) => {
      await sql`create role ${sql.id(plain)} login`.execute(admin);
      const db = createDb(createPool({ connectionString: as(plain, 'x'), poolMax: 1 }));
      try {
        await fn(db);
      } finally {
        await db.destroy();
      }
    },
    storedVerifier: async () => {
      const { rows } = await sql<{
        v: string;
      }>`select rolpassword as v from pg_authid where rolname = ${loaderName}`.execute(admin);
      return rows[0]?.v;
    },
    stop: async () => {
      for (const role of [loaderName, migrator, plain]) {
        const exists = await sql`select 1 from pg_roles where rolname = ${role}`.execute(admin);
        if (exists.rows.length === 0) continue;
        await sql`reassign owned by ${sql.id(role)} to current_user`.execute(admin);
        await sql`drop owned by ${sql.id(role)}`.execute(admin);
        await sql`drop role ${sql.id(role)}`.execute(admin);
      }
      await admin.destroy();
    },
  };
}

/** PGlite has one session: its plain user runs on the migrator's connection. */
const migratorDb = () => migrator;

async function embeddedServer(): Promise<Harness> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const pglite = await PGlite.create();
  await pglite.exec(
    `create role rt_mig createrole nologin; alter database postgres owner to rt_mig; set role rt_mig`,
  );
  const server = new PGLiteSocketServer({ db: pglite, port: 0, host: '127.0.0.1', maxConnections: 3 });
  await server.start();
  const url = `postgres://postgres@${server.getServerConn()}/postgres`;
  // The socket takes any user and password: the session's role is what counts (become()).
  const loaderUrl = new URL(url);
  loaderUrl.username = loaderName;
  loaderUrl.password = loaderPassword;
  return {
    real: false,
    migratorRole: 'rt_mig',
    migratorUrl: url,
    loaderUrl: loaderUrl.toString(),
    asPlainUser: async (fn) => {
      await pglite.exec('reset role; create role rt_plain nologin; set role rt_plain');
      try {
        await fn(migratorDb());
      } finally {
        await pglite.exec('set role rt_mig');
      }
    },
    become: async (role) => {
      await pglite.exec(`set role ${role === 'loader' ? loaderName : 'rt_mig'}`);
    },
    storedVerifier: async () => {
      // Only the session user (a superuser) may read pg_authid; apply() calls this between its transactions.
      await pglite.exec('reset role');
      const { rows } = await pglite.query<{ v: string }>(
        'select rolpassword as v from pg_authid where rolname = $1',
        [loaderName],
      );
      await pglite.exec('set role rt_mig');
      return rows[0]?.v;
    },
    stop: async () => {
      await server.stop();
      await pglite.close();
    },
  };
}

let h: Harness;
let migrator: Kysely<Database>;
/** Applies the role as migrate does (which checks the login with the loader's own connection settings). */
const apply = (sets = datasets): Promise<LoaderRoleOutcome> =>
  applyLoaderRole(migrator, credentialsOf({ connectionString: h.loaderUrl, poolMax: 1 }), sets, () =>
    canLogIn(),
  );

async function privileges(): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const t of TABLES) {
    const { rows } = await sql<{ p: string }>`
      select p from unnest(${PRIVILEGES}::text[]) as p where has_table_privilege(${loaderName}, ${t}, p) order by 1`.execute(
      migrator,
    );
    out[t] = rows.map((r) => r.p);
  }
  return out;
}

beforeAll(async () => {
  h = process.env.DATABASE_URL ? await realServer(process.env.DATABASE_URL) : await embeddedServer();
  migrator = createDb(createPool({ connectionString: h.migratorUrl, poolMax: 1 }));
  await migrateToLatest(migrator, config.migrations);
});
afterAll(async () => {
  await h?.become('migrator');
  await migrator?.destroy();
  await h?.stop();
});

const dataset = (name: string) => datasets.find((d) => d.name === name) as TableDataset;
const ownerOf = async (table: string) =>
  (
    await sql<{
      owner: string;
    }>`select relowner::regrole::text as owner from pg_class where oid = ${table}::regclass`.execute(migrator)
  ).rows[0]?.owner;

describe('the loader role', () => {
  it('is created with exactly the privileges the config needs', async () => {
    const outcome = await apply();
    expect(outcome).toEqual({
      role: loaderName,
      created: true,
      passwordSet: true,
      tables: [
        'public.rt_upserts',
        'rt.colors',
        'rt.items',
        'rt.kinds',
        'rt.notes',
        'rt.paints',
        'rt.parents',
        'rt.versions',
        'rt.wholes',
      ],
    });
    expect(await privileges()).toEqual({
      'rt.items': ['INSERT', 'SELECT', 'UPDATE'],
      'public.rt_upserts': ['INSERT', 'SELECT', 'UPDATE'],
      'rt.versions': ['DELETE', 'INSERT', 'SELECT', 'UPDATE'],
      'rt.wholes': ['INSERT', 'SELECT', 'UPDATE'],
      'rt.kinds': ['SELECT'],
      'rt.parents': ['INSERT', 'SELECT', 'UPDATE'],
      'rt.notes': ['INSERT', 'SELECT', 'UPDATE'],
      'rt.colors': ['SELECT'],
      'rt.paints': ['INSERT', 'SELECT', 'UPDATE'],
      'rt.secrets': [],
    });
    const { rows } = await sql<Record<string, boolean | string>>`select
        has_table_privilege(${loaderName}, 'dropload.file', 'INSERT, UPDATE, DELETE') as ledger_write,
        has_table_privilege(${loaderName}, 'dropload.kysely_migration', 'SELECT') as migrations_read,
        has_table_privilege(${loaderName}, 'dropload.kysely_migration', 'INSERT') as migrations_write,
        has_table_privilege(${loaderName}, 'dropload.dataset_migration', 'DELETE') as dataset_migrations_write,
        has_schema_privilege(${loaderName}, 'dropload', 'CREATE') as ledger_create,
        has_schema_privilege(${loaderName}, 'rt', 'CREATE') as rt_create,
        has_schema_privilege(${loaderName}, 'public', 'CREATE') as public_create,
        has_sequence_privilege(${loaderName}, 'rt.items_id_seq', 'USAGE') as serial_usage,
        (select rolsuper or rolcreaterole or rolcreatedb from pg_roles where rolname = ${loaderName}) as powers`.execute(
      migrator,
    );
    expect(rows[0]).toEqual({
      ledger_write: true,
      migrations_read: true,
      migrations_write: false,
      dataset_migrations_write: false,
      ledger_create: true,
      rt_create: false,
      public_create: false,
      serial_usage: true,
      powers: false,
    });
  });

  describe('loads every kind of dataset through the whole pipeline with only those grants', () => {
    let p: TestPipeline;
    beforeAll(async () => {
      await h.become('loader');
      // No reset: the loader may drop nothing, and the local stack's migrate finds nothing to apply.
      p = await startTestPipeline(config, [], {
        env: { DATABASE_URL: h.loaderUrl, DROPLOAD_DB_POOL_MAX: h.real ? '2' : '1' },
        workers: h.real ? 2 : 1,
      });
    });
    afterAll(async () => {
      await p?.stop();
      await h.become('migrator');
    });
    const count = async (table: string) =>
      Number(
        (await sql<{ n: number }>`select count(*)::int as n from ${sql.table(table)}`.execute(p.deps.db))
          .rows[0]?.n,
      );

    it('connects as the loader', async () => {
      const { rows } = await sql<{ u: string }>`select current_user as u`.execute(p.deps.db);
      expect(rows[0]?.u).toBe(loaderName);
    });

    it('inserts (a serial id), rejecting a bad row', async () => {
      const { reports } = await p.load('incoming/rt-items/a.csv', 'code,qty\nab,1\ncd,x\nef,3\n');
      expect(reports[0]).toMatchObject({
        state: 'loaded',
        rows: { read: 3, inserted: 2, rejected: 1 },
        error: null,
      });
      expect(await count('rt.items')).toBe(2);
    });

    it('writes a row whose foreign key parent it may only read; one whose parent is missing waits', async () => {
      const { reports } = await p.load('incoming/rt-paints/p.csv', 'code,color\npa,red\npb,blue\n');
      expect(reports[0]).toMatchObject({
        state: 'waiting',
        rows: { read: 2, inserted: 1, waiting: 1, rejected: 0 },
        error: null,
      });
      expect(await count('rt.paints')).toBe(1);
    });

    it('upserts', async () => {
      await p.load('incoming/rt-upserts/1.csv', 'code,qty\nab,1\ncd,2\n');
      const { reports } = await p.load('incoming/rt-upserts/2.csv', 'code,qty\nab,5\nef,6\n');
      expect(reports[0]).toMatchObject({ state: 'loaded', rows: { inserted: 1, updated: 1 } });
      const { rows } = await sql<{
        code: string;
        qty: number;
      }>`select code, qty from rt_upserts order by code`.execute(p.deps.db);
      expect(rows).toEqual([
        { code: 'ab', qty: 5 },
        { code: 'cd', qty: 2 },
        { code: 'ef', qty: 6 },
      ]);
    });

    it('publishes a file through a staging table it creates, and replaces the previous version', async () => {
      const first = await p.load('incoming/rt-versions/v.csv', 'code,qty\naa,1\nbb,2\ncc,3\n');
      expect(first.reports[0]).toMatchObject({ state: 'loaded', rows: { inserted: 3 } });
      const second = await p.load('incoming/rt-versions/v.csv', 'code,qty\naa,10\nbb,20\n');
      expect(second.reports[0]).toMatchObject({ state: 'loaded', rows: { inserted: 2 } });
      const { rows } = await sql<{
        code: string;
        qty: number;
      }>`select code, qty from rt.versions order by code`.execute(p.deps.db);
      expect(rows).toEqual([
        { code: 'aa', qty: 10 },
        { code: 'bb', qty: 20 },
      ]);
      const stage = await stageTable(p.deps.db, dataset('rt-versions'));
      expect(await count(stage)).toBe(0);
      expect(await ownerOf(stage)).toBe(loaderName);
    });

    it('publishes another file the same way (a second staging table of its own)', async () => {
      const { reports } = await p.load('incoming/rt-wholes/w.csv', 'code,qty\naa,1\nbb,2\n');
      expect(reports[0]).toMatchObject({ state: 'loaded', rows: { inserted: 2 }, error: null });
      expect(await count('rt.wholes')).toBe(2);
    });

    it('writes several targets, reading a lookup table it may not write', async () => {
      const { reports } = await p.load(
        'incoming/rt-family/f.csv',
        'code,kind,note\npa,a,first\npb,b,second\n',
      );
      expect(reports[0]).toMatchObject({ state: 'loaded', rows: { read: 2, rejected: 0 }, error: null });
      const { rows } = await sql<{ code: string; kind: string; note: string }>`
        select p.code, k.code as kind, n.note from rt.parents p join rt.kinds k on k.id = p.kind_id
        join rt.notes n on n.parent_id = p.id order by p.code`.execute(p.deps.db);
      expect(rows).toEqual([
        { code: 'pa', kind: 'a', note: 'first' },
        { code: 'pb', kind: 'b', note: 'second' },
      ]);
    });

    it('cannot drop, truncate or create tables, read others, rewrite migrations or raise itself', async () => {
      const refused = async (statement: ReturnType<typeof sql>) => {
        const err = await statement.execute(p.deps.db).then(
          () => undefined,
          (e: unknown) => e,
        );
        return (err as { code?: string } | undefined)?.code;
      };
      expect(await refused(sql`drop table rt.items`)).toBe('42501');
      expect(await refused(sql`truncate rt_upserts`)).toBe('42501');
      expect(await refused(sql`delete from rt.items`)).toBe('42501');
      expect(await refused(sql`insert into rt.kinds (code) values ('z')`)).toBe('42501');
      expect(await refused(sql`select * from rt.secrets`)).toBe('42501');
      expect(await refused(sql`create table rt.mine (i int)`)).toBe('42501');
      expect(await refused(sql`alter table rt.items add column x int`)).toBe('42501');
      expect(await refused(sql`delete from dropload.kysely_migration`)).toBe('42501');
      expect(await refused(sql`create role rt_evil`)).toBe('42501');
      expect(await refused(sql`alter role ${sql.id(loaderName)} createdb`)).toBe('42501');
      expect(await count('rt.items')).toBe(2);
    });
  });

  it('is applied again without change', async () => {
    const before = await privileges();
    expect(await apply()).toMatchObject({ created: false, passwordSet: false });
    expect(await privileges()).toEqual(before);
  });

  it('takes over a staging table the admin user created before the loader role existed', async () => {
    const late = resolveConfig(
      {
        datasets: [
          defineDataset({
            name: 'rt-late',
            format: 'csv',
            table: 'rt.wholes',
            publish: 'file',
            schema: z.object({ code, qty }),
          }),
        ],
      },
      'roles test',
    ).datasets;
    const stage = await ensureStage(migrator, late[0] as TableDataset);
    expect(await ownerOf(stage)).toBe(h.migratorRole);
    await apply([...datasets, ...late]);
    expect(await ownerOf(stage)).toBe(loaderName);
    // As the loader: ensureStage runs CREATE TABLE / CREATE INDEX IF NOT EXISTS, which need ownership.
    await h.become('loader');
    const asLoader = h.real ? createDb(createPool({ connectionString: h.loaderUrl, poolMax: 1 })) : migrator;
    try {
      expect(await ensureStage(asLoader, late[0] as TableDataset)).toBe(stage);
    } finally {
      if (asLoader !== migrator) await asLoader.destroy();
      await h.become('migrator');
    }
    expect(await apply([...datasets, ...late])).toMatchObject({ created: false, passwordSet: false });
  });

  it('follows the config: a dataset removed (or no longer replace) loses its grants', async () => {
    const fewer = datasets.filter(
      (d) => !['rt-versions', 'rt-upserts', 'rt-wholes', 'rt-paints'].includes(d.name),
    );
    const outcome = await apply(fewer);
    expect(outcome.tables).toEqual(['rt.items', 'rt.kinds', 'rt.notes', 'rt.parents']);
    const now = await privileges();
    expect(now['rt.versions']).toEqual([]);
    expect(now['public.rt_upserts']).toEqual([]);
    // The parent read only for a dataset that is gone.
    expect(now['rt.colors']).toEqual([]);
    expect(now['rt.items']).toEqual(['INSERT', 'SELECT', 'UPDATE']);
    await apply();
    expect((await privileges())['rt.versions']).toEqual(['DELETE', 'INSERT', 'SELECT', 'UPDATE']);
  });

  it('refuses a loader role with powers, and a table the migrations did not create', async () => {
    await sql`alter role ${sql.id(loaderName)} createrole`.execute(migrator);
    await expect(apply()).rejects.toThrow(/loader role "rt_loader_\w+" has CREATEROLE/);
    await sql`alter role ${sql.id(loaderName)} nocreaterole`.execute(migrator);
    const missing = resolveConfig(
      {
        datasets: [
          defineDataset({ name: 'rt-gone', format: 'csv', table: 'rt.gone', schema: z.object({ code }) }),
        ],
      },
      'roles test',
    ).datasets;
    const err = await apply(missing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(
      /table rt\.gone \(named by the config\) does not exist after the migrations/,
    );
  });

  it('says what to do when the admin user may not create the loader role', async () => {
    await h.asPlainUser(async (db) => {
      const err = await applyLoaderRole(
        db,
        { name: `${loaderName}_new`, password: 'pw' },
        datasets,
        async () => true,
      ).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(
        /^the database's admin user may not create the loader role "rt_loader_\w+_new": give it CREATEROLE, or create that role yourself/,
      );
      expect(((err as Error).cause as { code?: string }).code).toBe('42501');
    });
  });

  it('sets the password again when it no longer matches the secret', async () => {
    expect(await canLogIn()).toBe(true);
    await sql`alter role ${sql.id(loaderName)} password ${sql.lit('changed-by-hand')}`.execute(migrator);
    // The server's own SCRAM verifier of that password is what scramVerifier computes (what migrate sends).
    expect(verifierMatches(await h.storedVerifier(), 'changed-by-hand')).toBe(true);
    expect(await canLogIn()).toBe(false);
    expect(await apply()).toMatchObject({ created: false, passwordSet: true });
    expect(await canLogIn()).toBe(true);
  });

  it('migrate checks the login with the connection settings themselves', async () => {
    expect(
      await prepareLoaderRole(migrator, { connectionString: h.loaderUrl, poolMax: 1 }, datasets),
    ).toMatchObject({
      created: false,
      passwordSet: false,
    });
    const wrongPort = new URL(h.loaderUrl);
    wrongPort.port = '1';
    await expect(
      prepareLoaderRole(migrator, { connectionString: wrongPort.toString(), poolMax: 1 }, datasets),
    ).rejects.toThrow(/ECONNREFUSED/);
  });
});
