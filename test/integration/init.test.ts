import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { type Kysely, sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { columnsOf } from '../../cli/init/relationships.ts';
import type { InitSummary } from '../../cli/init/summary.ts';
import { planUploads, runFiles } from '../../cli/run.ts';
import { type LocalPipeline, startPipeline } from '../../local/local-pipeline.ts';
import { loadConfig, type ResolvedConfig } from '../../shared/config/config.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { biomeChanged } from '../support/biome.ts';
import { expectHonestCounts } from '../support/counts.ts';
import { SHOP_ROWS } from '../support/init-tables.ts';
import { resetDatabase } from '../support/pipeline.ts';

/**
 * `dropload init` end to end (issue 13): on each fixture set, `init` writes datasets, a migration and
 * the config; with ZERO edits to them, every file is dropped in reverse dependency order, one `run`
 * (a runner of its own) per file, and the database ends with exactly the inferred tables, types, keys,
 * foreign keys (none invented) and rows. Postgres (DATABASE_URL) or the embedded PGlite (its data on disk).
 */

const postgres = process.env.DATABASE_URL;
const exec = promisify(execFile);
const NODE = path.resolve('node_modules/.bin/node');
// Inside the repository, so the generated modules' `import … from 'dropload'` is this copy.
const ROOT = path.resolve('.dropload/test-init');
let dir: string;
const runners: LocalPipeline[] = [];

beforeAll(async () => {
  await mkdir(ROOT, { recursive: true });
  dir = await mkdtemp(path.join(ROOT, 'run-'));
});
afterEach(async () => {
  for (const r of runners.splice(0)) await r.stop();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function init(
  set: string,
  schema: string,
): Promise<{ out: string; summary: InitSummary; text: string }> {
  const out = path.join(dir, set);
  const input = `test/fixtures/init/${set}`;
  const text = (await exec(NODE, ['cli/dropload.ts', 'init', input, '--schema', schema, '--out', out]))
    .stdout;
  const summary = await initJson(input, path.join(dir, `${set}-json`), schema);
  return { out, summary, text };
}

/** `dropload init --json` on `input` into `out` (`--schema` when given): the summary it prints. */
async function initJson(input: string, out: string, schema?: string): Promise<InitSummary> {
  const args = ['cli/dropload.ts', 'init', input, ...(schema ? ['--schema', schema] : []), '--out', out];
  return JSON.parse((await exec(NODE, [...args, '--json'])).stdout) as InitSummary;
}

/** Each table's name, rows and files (base names), as the summary lists them. */
const tablesRead = (summary: InitSummary) =>
  summary.tables.map((t) => [t.name, t.rows, t.files.map((f) => path.basename(f))]);

/** The files (name → content) written into `<set>-files/<folder>`, a folder named after their dataset: its path. */
async function datasetFolder(set: string, folder: string, files: Record<string, string | Uint8Array>) {
  const at = path.join(dir, `${set}-files`, folder);
  await mkdir(at, { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(path.join(at, name), content);
  return at;
}

/** What `run FOLDER` does with the config in `out`: each file under its dataset's prefix, by the folder's name. */
async function runFolder(out: string, folder: string, state: string) {
  const config = await loadConfig(path.join(out, 'dropload.config.ts'));
  const uploads = await planUploads([folder], config);
  const r = await runner(config, path.join(dir, state));
  const run = await runFiles(r, uploads, { timeoutMs: 60_000, rejectsShown: 10 });
  return { uploads, r, run };
}

/** A runner as `dropload run` starts one: a fresh emulator; the database is what the earlier ones left. */
async function runner(config: ResolvedConfig, stateDir: string): Promise<LocalPipeline> {
  await rm(path.join(stateDir, 'queues'), { recursive: true, force: true });
  await rm(path.join(stateDir, 'objects'), { recursive: true, force: true });
  const r = await startPipeline({
    workers: 2,
    logLevel: 'SILENT',
    config,
    env: { ...process.env, AWS_ENDPOINT_URL: undefined },
    ...(postgres ? {} : { stateDir }),
  });
  runners.push(r);
  return r;
}

async function stop(r: LocalPipeline): Promise<void> {
  runners.splice(runners.indexOf(r), 1);
  await r.stop();
}

/** Every file of the set, one `run` each, children first: the last run leaves nothing waiting. */
async function dropAll(set: string, out: string, summary: InitSummary): Promise<Kysely<Database>> {
  const config = await loadConfig(path.join(out, 'dropload.config.ts'));
  const stateDir = path.join(dir, `${set}-state`);
  const files = await readdir(`test/fixtures/init/${set}`);
  const order = [...summary.loadOrder].reverse();
  for (const [i, qualified] of order.entries()) {
    const table = qualified.split('.').at(-1) as string;
    const file = files.find((f) => f.split('.')[0] === table) as string;
    const dataset = config.datasets.find((d) => d.name === table);
    if (!dataset) throw new Error(`no dataset ${table}`);
    const r = await runner(config, stateDir);
    const run = await runFiles(
      r,
      [{ path: `test/fixtures/init/${set}/${file}`, key: `incoming/${table}/${file}`, dataset }],
      { timeoutMs: 60_000, rejectsShown: 10 },
    );
    expect(run.timedOut).toBe(false);
    if (i === order.length - 1) {
      // The last root's run finishes every file: rows waiting on a table this run filled load in it,
      // even when an earlier retry of theirs, still reading, moved on to wait for that table.
      const { rows } = await sql<{ key: string; state: string }>`select key, state from dropload.file
        where state <> 'loaded' order by key`.execute(r.deps.db);
      expect(rows).toEqual([]);
    }
    await stop(r);
  }
  const last = await runner(config, stateDir);
  await expectHonestCounts(last.deps.db);
  return last.deps.db;
}

async function columns(db: Kysely<Database>, schema: string): Promise<string[]> {
  const { rows } = await sql<{
    t: string;
    c: string;
    type: string;
    p: number | null;
    s: number | null;
    n: string;
  }>`
    select table_name as t, column_name as c, data_type as type, numeric_precision as p,
      numeric_scale as s, is_nullable as n
    from information_schema.columns where table_schema = ${schema} order by table_name, ordinal_position`.execute(
    db,
  );
  return rows.map(
    (r) =>
      `${r.t}.${r.c} ${r.type}${r.type === 'numeric' ? `(${r.p},${r.s})` : ''}${r.n === 'NO' ? ' not null' : ''}`,
  );
}

async function constraints(db: Kysely<Database>, schema: string, type: 'f' | 'p'): Promise<string[]> {
  const { rows } = await sql<{ def: string; rel: string }>`
    select conrelid::regclass::text as rel, pg_get_constraintdef(c.oid) as def
    from pg_constraint c join pg_namespace n on n.oid = c.connamespace
    where n.nspname = ${schema} and c.contype = ${type} order by 1, 2`.execute(db);
  return rows.map((r) => `${r.rel} ${r.def}`);
}

async function counts(
  db: Kysely<Database>,
  schema: string,
  tables: string[],
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of tables) {
    const { rows } = await sql<{
      n: number;
    }>`select count(*)::int as n from ${sql.table(`${schema}.${t}`)}`.execute(db);
    out[t] = rows[0]?.n ?? -1;
  }
  return out;
}

async function resetSchema(schema: string): Promise<void> {
  await resetDatabase([]);
  if (!postgres) return;
  const { createDb, createPool } = await import('../../shared/ledger/connection.ts');
  const db = createDb(createPool({ connectionString: postgres, poolMax: 1 }));
  try {
    await sql`drop schema if exists dropload cascade`.execute(db);
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(db);
  } finally {
    await db.destroy();
  }
}

async function indexes(db: Kysely<Database>, schema: string): Promise<string[]> {
  const { rows } = await sql<{ name: string; def: string }>`
    select c.relname as name, pg_get_indexdef(i.indexrelid) as def from pg_index i
    join pg_class c on c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${schema} and not i.indisprimary order by 1`.execute(db);
  return rows.map((r) => r.def.replace(/ USING btree/, ''));
}

describe('init on a shop export (12 CSVs, Northwind-like)', () => {
  it('infers the tables, types, keys and foreign keys (one composite); every file dropped children first loads', {
    timeout: 240_000,
  }, async () => {
    await resetSchema('shop');
    const { out, summary, text } = await init('shop', 'shop');
    expect(summary.loadOrder).toEqual([
      'shop.categories',
      'shop.customers',
      'shop.employees',
      'shop.shippers',
      'shop.orders',
      'shop.suppliers',
      'shop.products',
      'shop.order_details',
      'shop.deliveries',
      'shop.regions',
      'shop.territories',
      'shop.employee_territories',
    ]);
    // Quantities overlap product ids in value; the names say they are not.
    expect(
      summary.rejected.map(
        (r) => `${columnsOf(r.table, r.columns)} → ${columnsOf(r.parentTable, r.parentColumns)}`,
      ),
    ).toEqual(['order_details.quantity → products.product_id']);
    expect(text).toContain(
      'order_details.quantity → products.product_id: 58 distinct values, all among the 77 of products.product_id, but the names are unrelated: value overlap alone is no relationship',
    );
    expect(text).toContain(
      '  freight        numeric(6, 2) not null — 120 values, up to 4 integer digits, max 2 decimals',
    );
    expect(text).toContain(
      'deliveries.(order_id, product_id) → order_details.(order_id, product_id): same column name; 38 distinct pairs, all among the 282 of order_details.(order_id, product_id)',
    );
    // Already as the repository's formatter and linter (biome check) leave them.
    expect(await biomeChanged(out)).toEqual([]);
    // The generated modules type-check under this repository's strict settings, untouched.
    const tsconfig = { extends: path.relative(out, path.resolve('tsconfig.json')), include: ['**/*.ts'] };
    await writeFile(path.join(out, 'tsconfig.json'), JSON.stringify(tsconfig));
    const tsc = [path.resolve('node_modules/typescript/bin/tsc'), '--noEmit', '-p', out];
    await exec(path.resolve('node_modules/.bin/node'), tsc);
    const db = await dropAll('shop', out, summary);
    expect(await columns(db, 'shop')).toEqual([
      'categories.category_id smallint not null',
      'categories.category_name text not null',
      'categories.description text not null',
      'customers.customer_id text not null',
      'customers.company_name text not null',
      'customers.contact_name text not null',
      'customers.city text not null',
      'customers.region text',
      'customers.country text not null',
      'deliveries.delivery_id smallint not null',
      'deliveries.order_id smallint not null',
      'deliveries.product_id smallint not null',
      'deliveries.delivered_on date not null',
      'deliveries.units smallint not null',
      'deliveries.tracking_no text not null',
      'employee_territories.employee_id smallint not null',
      'employee_territories.territory_id text not null',
      'employees.employee_id smallint not null',
      'employees.last_name text not null',
      'employees.first_name text not null',
      'employees.title text not null',
      'employees.birth_date date not null',
      'employees.hire_date date not null',
      'employees.reports_to smallint',
      'order_details.order_id smallint not null',
      'order_details.product_id smallint not null',
      'order_details.unit_price numeric(5,2) not null',
      'order_details.quantity smallint not null',
      'order_details.discount numeric(2,2) not null',
      'orders.order_id smallint not null',
      'orders.customer_id text not null',
      'orders.employee_id smallint not null',
      'orders.order_date timestamp without time zone not null',
      'orders.required_date timestamp without time zone not null',
      'orders.shipped_date timestamp without time zone',
      'orders.ship_via smallint not null',
      'orders.freight numeric(6,2) not null',
      'orders.ship_city text not null',
      'orders.ship_country text not null',
      'products.product_id smallint not null',
      'products.product_name text not null',
      'products.supplier_id smallint not null',
      'products.category_id smallint not null',
      'products.quantity_per_unit text not null',
      'products.unit_price numeric(5,2) not null',
      'products.units_in_stock smallint not null',
      'products.discontinued boolean not null',
      'regions.region_id smallint not null',
      'regions.region_description text not null',
      'shippers.shipper_id smallint not null',
      'shippers.company_name text not null',
      'shippers.phone text not null',
      'suppliers.supplier_id smallint not null',
      'suppliers.company_name text not null',
      'suppliers.contact_name text not null',
      'suppliers.city text not null',
      'suppliers.country text not null',
      'suppliers.phone text not null',
      'territories.territory_id text not null',
      'territories.territory_description text not null',
      'territories.region_id smallint not null',
    ]);
    expect(await constraints(db, 'shop', 'p')).toEqual([
      'shop.categories PRIMARY KEY (category_id)',
      'shop.customers PRIMARY KEY (customer_id)',
      'shop.deliveries PRIMARY KEY (delivery_id)',
      'shop.employee_territories PRIMARY KEY (employee_id, territory_id)',
      'shop.employees PRIMARY KEY (employee_id)',
      'shop.order_details PRIMARY KEY (order_id, product_id)',
      'shop.orders PRIMARY KEY (order_id)',
      'shop.products PRIMARY KEY (product_id)',
      'shop.regions PRIMARY KEY (region_id)',
      'shop.shippers PRIMARY KEY (shipper_id)',
      'shop.suppliers PRIMARY KEY (supplier_id)',
      'shop.territories PRIMARY KEY (territory_id)',
    ]);
    // Every intended foreign key, none invented (no quantity → products), the composite one included.
    expect(await constraints(db, 'shop', 'f')).toEqual([
      'shop.deliveries FOREIGN KEY (order_id) REFERENCES shop.orders(order_id)',
      'shop.deliveries FOREIGN KEY (order_id, product_id) REFERENCES shop.order_details(order_id, product_id)',
      'shop.deliveries FOREIGN KEY (product_id) REFERENCES shop.products(product_id)',
      'shop.employee_territories FOREIGN KEY (employee_id) REFERENCES shop.employees(employee_id)',
      'shop.employee_territories FOREIGN KEY (territory_id) REFERENCES shop.territories(territory_id)',
      'shop.employees FOREIGN KEY (reports_to) REFERENCES shop.employees(employee_id)',
      'shop.order_details FOREIGN KEY (order_id) REFERENCES shop.orders(order_id)',
      'shop.order_details FOREIGN KEY (product_id) REFERENCES shop.products(product_id)',
      'shop.orders FOREIGN KEY (customer_id) REFERENCES shop.customers(customer_id)',
      'shop.orders FOREIGN KEY (employee_id) REFERENCES shop.employees(employee_id)',
      'shop.orders FOREIGN KEY (ship_via) REFERENCES shop.shippers(shipper_id)',
      'shop.products FOREIGN KEY (category_id) REFERENCES shop.categories(category_id)',
      'shop.products FOREIGN KEY (supplier_id) REFERENCES shop.suppliers(supplier_id)',
      'shop.territories FOREIGN KEY (region_id) REFERENCES shop.regions(region_id)',
    ]);
    expect(await indexes(db, 'shop')).toHaveLength(14);
    expect((await indexes(db, 'shop')).filter((i) => i.includes('deliveries'))).toEqual([
      'CREATE INDEX deliveries_order_id_idx ON shop.deliveries (order_id)',
      'CREATE INDEX deliveries_order_id_product_id_idx ON shop.deliveries (order_id, product_id)',
      'CREATE INDEX deliveries_product_id_idx ON shop.deliveries (product_id)',
    ]);
    expect(
      await counts(db, 'shop', [
        'categories',
        'customers',
        'deliveries',
        'employee_territories',
        'employees',
        'order_details',
        'orders',
        'products',
        'regions',
        'shippers',
        'suppliers',
        'territories',
      ]),
    ).toEqual(SHOP_ROWS);
    const { rows } = await sql<{ freight: string; order_date: string; territory_id: string }>`
      select o.freight::text as freight, o.order_date::text as order_date, min(t.territory_id) as territory_id
      from shop.orders o, shop.territories t where o.order_id = 10248 group by 1, 2`.execute(db);
    expect(rows).toEqual([{ freight: '19.20', order_date: '1996-07-04 00:00:00', territory_id: '01581' }]);
  });
});

describe('init on an HR export (TSV, gzip NDJSON, Parquet, NULL literals, leading zeros, an unquoted comma)', () => {
  it('infers uuid, timestamptz, jsonb, a natural key; reports the misfit row; loads children first; init again adds foreign keys', {
    timeout: 120_000,
  }, async () => {
    await resetSchema('hr');
    const { out, summary, text } = await init('hr', 'hr');
    expect(text).toContain('does not fit: people.csv line 13: 10 fields, header has 9 (unquoted comma?)');
    expect(summary.tables.map((t) => [t.name, t.nullValues])).toEqual([
      ['assignments', ['']],
      ['badges', ['']],
      ['departments', ['']],
      ['offices', ['', 'NULL']],
      ['people', ['', 'NULL', '\\N']],
    ]);
    expect(summary.naturalKeys).toEqual([{ table: 'people', column: 'badge_no' }]);
    const db = await dropAll('hr', out, summary);
    expect(await columns(db, 'hr')).toEqual([
      'assignments.assignment_id smallint not null',
      'assignments.badge_no smallint not null',
      'assignments.project jsonb not null',
      'assignments.hours numeric(3,1)',
      'assignments.started_on date not null',
      'assignments.note text',
      'badges.badge_no smallint not null',
      'badges.issued_at timestamp with time zone not null',
      'badges.access_level smallint not null',
      'badges.label text',
      'departments.dept_code text not null',
      'departments.name text not null',
      'offices.office_id text not null',
      'offices.city text not null',
      'offices.state text not null',
      'offices.opened_on date',
      'offices.desks smallint',
      'people.person_id uuid not null',
      'people.badge_no smallint not null',
      'people.full_name text not null',
      'people.office_id text not null',
      'people.dept_code text',
      'people.salary numeric(8,2) not null',
      'people.hired_at timestamp with time zone not null',
      'people.active boolean not null',
      'people.phone text',
    ]);
    expect(await constraints(db, 'hr', 'f')).toEqual([
      'hr.assignments FOREIGN KEY (badge_no) REFERENCES hr.people(badge_no)',
      'hr.badges FOREIGN KEY (badge_no) REFERENCES hr.people(badge_no)',
      'hr.people FOREIGN KEY (dept_code) REFERENCES hr.departments(dept_code)',
      'hr.people FOREIGN KEY (office_id) REFERENCES hr.offices(office_id)',
    ]);
    expect(await constraints(db, 'hr', 'p')).toEqual([
      'hr.assignments PRIMARY KEY (assignment_id)',
      'hr.badges PRIMARY KEY (badge_no)',
      'hr.departments PRIMARY KEY (dept_code)',
      'hr.offices PRIMARY KEY (office_id)',
      'hr.people PRIMARY KEY (person_id)',
    ]);
    expect(await indexes(db, 'hr')).toEqual([
      'CREATE INDEX assignments_badge_no_idx ON hr.assignments (badge_no)',
      'CREATE INDEX badges_badge_no_idx ON hr.badges (badge_no)',
      'CREATE UNIQUE INDEX people_badge_no_key ON hr.people (badge_no)',
      'CREATE INDEX people_dept_code_idx ON hr.people (dept_code)',
      'CREATE INDEX people_office_id_idx ON hr.people (office_id)',
    ]);
    expect(await counts(db, 'hr', ['assignments', 'badges', 'departments', 'offices', 'people'])).toEqual({
      assignments: 60,
      badges: 8,
      departments: 5,
      offices: 6,
      people: 39,
    });
    const { rows } = await sql<{ line: number; reason: string }>`select r.line::int as line, r.reason
      from dropload.reject r join dropload.file f on f.id = r.file_id where f.key = 'incoming/people/people.csv'`.execute(
      db,
    );
    expect(rows).toEqual([{ line: 13, reason: 'row has 10 fields, the header has 9' }]);

    // A later export of people, with a manager column, and a new file of trainings: init on them (same
    // --out) writes the changes, foreign keys to the existing table included; the next run applies them.
    const changed = await initJson('test/fixtures/init/hr-changes', out);
    expect(changed.changes).toEqual([
      'people.badge_no: widened smallint → integer (5 values, range 40001..40005)',
      'people.salary: now has nulls (2): NOT NULL dropped',
      'people.nickname: new column, text (nullable: the rows already loaded have none)',
      'people.manager_id: new column, uuid (nullable: the rows already loaded have none)',
      'trainings: new table',
      // The children of people.badge_no hold its values: they widen with it.
      'assignments.badge_no: widened smallint → integer with its parent people.badge_no (foreign key)',
      'badges.badge_no: widened smallint → integer with its parent people.badge_no (foreign key)',
      "people.manager_id → people.person_id: foreign key added, with its index ('manager_id' names another row of people (a self-reference); 1 distinct value, all among the 5 of people.person_id)",
      'trainings.badge_no → people.badge_no: foreign key added, with its index (same column name; 3 distinct values, all among the 5 of people.badge_no)',
    ]);
    expect(await biomeChanged(out)).toEqual([]);
    for (const done of runners.splice(0)) await done.stop();
    // This process has the first config's modules loaded already: read the new files from a copy.
    const fresh = `${out}-changed`;
    await cp(out, fresh, { recursive: true });
    const config = await loadConfig(path.join(fresh, 'dropload.config.ts'));
    const r = await runner(config, path.join(dir, 'hr-state'));
    const dataset = (name: string) => {
      const d = config.datasets.find((x) => x.name === name);
      if (!d) throw new Error(`no dataset ${name}`);
      return d;
    };
    const run = await runFiles(
      r,
      [
        {
          path: 'test/fixtures/init/hr-changes/trainings.csv',
          key: 'incoming/trainings/trainings.csv',
          dataset: dataset('trainings'),
        },
        {
          path: 'test/fixtures/init/hr-changes/people.csv',
          key: 'incoming/people/people-2.csv',
          dataset: dataset('people'),
        },
      ],
      { timeoutMs: 60_000, rejectsShown: 10 },
    );
    expect(run.reports.map((f) => [f.key, f.state, f.rows.loaded]).sort()).toEqual([
      ['incoming/people/people-2.csv', 'loaded', 5],
      ['incoming/trainings/trainings.csv', 'loaded', 4],
    ]);
    // The new foreign keys are there, and every earlier one still is.
    expect(await constraints(r.deps.db, 'hr', 'f')).toEqual([
      'hr.assignments FOREIGN KEY (badge_no) REFERENCES hr.people(badge_no)',
      'hr.badges FOREIGN KEY (badge_no) REFERENCES hr.people(badge_no)',
      'hr.people FOREIGN KEY (dept_code) REFERENCES hr.departments(dept_code)',
      'hr.people FOREIGN KEY (manager_id) REFERENCES hr.people(person_id)',
      'hr.people FOREIGN KEY (office_id) REFERENCES hr.offices(office_id)',
      'hr.trainings FOREIGN KEY (badge_no) REFERENCES hr.people(badge_no)',
    ]);
    expect(await constraints(r.deps.db, 'hr', 'p')).toEqual([
      'hr.assignments PRIMARY KEY (assignment_id)',
      'hr.badges PRIMARY KEY (badge_no)',
      'hr.departments PRIMARY KEY (dept_code)',
      'hr.offices PRIMARY KEY (office_id)',
      'hr.people PRIMARY KEY (person_id)',
      'hr.trainings PRIMARY KEY (training_id)',
    ]);
    expect(await indexes(r.deps.db, 'hr')).toEqual([
      'CREATE INDEX assignments_badge_no_idx ON hr.assignments (badge_no)',
      'CREATE INDEX badges_badge_no_idx ON hr.badges (badge_no)',
      'CREATE UNIQUE INDEX people_badge_no_key ON hr.people (badge_no)',
      'CREATE INDEX people_dept_code_idx ON hr.people (dept_code)',
      'CREATE INDEX people_manager_id_idx ON hr.people (manager_id)',
      'CREATE INDEX people_office_id_idx ON hr.people (office_id)',
      'CREATE INDEX trainings_badge_no_idx ON hr.trainings (badge_no)',
    ]);
    expect((await columns(r.deps.db, 'hr')).filter((c) => c.startsWith('people.'))).toEqual([
      'people.person_id uuid not null',
      'people.badge_no integer not null',
      'people.full_name text not null',
      'people.office_id text not null',
      'people.dept_code text',
      'people.salary numeric(8,2)',
      'people.hired_at timestamp with time zone not null',
      'people.active boolean not null',
      'people.phone text',
      'people.nickname text',
      'people.manager_id uuid',
    ]);
    expect(await counts(r.deps.db, 'hr', ['people', 'trainings'])).toEqual({ people: 44, trainings: 4 });
  });
});

describe('init on a file whose header has a BOM, CRLF and spaces around its names', () => {
  it('names the columns as the load reads the header, and the file loads', { timeout: 60_000 }, async () => {
    await resetSchema('spaced');
    const { out, summary } = await init('spaced', 'spaced');
    expect(summary.tables[0]?.columns.map((c) => c.field)).toEqual(['visit_id', 'visitor', 'visited_on']);
    const db = await dropAll('spaced', out, summary);
    expect(await columns(db, 'spaced')).toEqual([
      'visits.visit_id smallint not null',
      'visits.visitor text not null',
      'visits.visited_on date not null',
    ]);
    const { rows } = await sql<{ v: string }>`select string_agg(visitor || ' ' || visited_on::text, ', '
      order by visit_id) as v from spaced.visits`.execute(db);
    expect(rows).toEqual([{ v: 'Ann 2026-01-02, Bob 2026-01-03, Cy 2026-01-04' }]);
  });
});

describe('init on headers whose snake_case is no plain SQL identifier (an accent, ß, a leading digit)', () => {
  it('names their columns in the dataset (columnNames keeps the letters), and the folder loads', {
    timeout: 60_000,
  }, async () => {
    await resetSchema('names');
    const folder = await datasetFolder('names', 'people', {
      'people.csv': 'id,Müller,Straße,2024 total\n1,a,b,10\n2,c,d,20\n',
    });
    const out = path.join(dir, 'names');
    await initJson(path.dirname(folder), out, 'names');
    expect(await readFile(path.join(out, 'datasets/people.ts'), 'utf8')).toContain(
      "  columnNames: 'snake_case',\n  // These fields' snake_case is no plain SQL identifier: their columns are named here.\n  columns: { Müller: 'muller', Straße: 'stra_e', '2024 total': '_2024_total' },\n",
    );
    expect(await biomeChanged(out)).toEqual([]);
    const { r, run } = await runFolder(out, folder, 'names-state');
    expect(run.reports.map((f) => [f.key, f.state, f.rows.loaded])).toEqual([
      ['incoming/people/people.csv', 'loaded', 2],
    ]);
    expect(await columns(r.deps.db, 'names')).toEqual([
      'people.id smallint not null',
      'people.muller text not null',
      'people.stra_e text not null',
      'people._2024_total smallint not null',
    ]);
    const { rows } = await sql<{ v: string }>`select string_agg(muller || stra_e || _2024_total, ', '
      order by id) as v from names.people`.execute(r.deps.db);
    expect(rows).toEqual([{ v: 'ab10, cd20' }]);
  });
});

describe('init on an IMDb-like TSV (no quoting, a title `"Weird" Al Special` on line 50)', () => {
  it('writes the dataset with quoting off, saying why, and all 200 rows load with the title as written', {
    timeout: 60_000,
  }, async () => {
    await resetSchema('imdb');
    const { out, summary, text } = await init('imdb', 'imdb');
    const quoting =
      'quoting off: line 50 opens a quote that never closes properly; read unquoted, all 200 rows have 9 fields';
    expect(summary.tables.map((t) => [t.name, t.rows, t.quoting, t.misfitCount])).toEqual([
      ['titles', 200, quoting, 0],
    ]);
    expect(text).toContain(`\n  ${quoting}\n`);
    expect(await readFile(path.join(out, 'datasets/titles.ts'), 'utf8')).toContain(
      `  delimiter: '\\t',\n  // ${quoting}.\n  quote: false,\n`,
    );
    const db = await dropAll('imdb', out, summary);
    expect(await counts(db, 'imdb', ['titles'])).toEqual({ titles: 200 });
    const { rows } = await sql<{ t: string; n: number }>`select
      (select primary_title from imdb.titles where tconst = 'tt0000049') as t,
      (select count(*)::int from dropload.reject) as n`.execute(db);
    expect(rows).toEqual([{ t: '"Weird" Al Special', n: 0 }]);
  });
});

describe('init on a library export (generic id keys, equal id sets, a self-reference by a pointer name, local dates)', () => {
  it("makes no foreign key between two tables' own id keys: every file loads, with the one intended foreign key", {
    timeout: 120_000,
  }, async () => {
    await resetSchema('library');
    const { out, summary, text } = await init('library', 'library');
    expect(
      summary.relationships.map(
        (r) => `${columnsOf(r.table, r.columns)} → ${columnsOf(r.parentTable, r.parentColumns)} ${r.certain}`,
      ),
    ).toEqual(['books.author_id → authors.id true', 'members.referred_by → members.member_id false']);
    expect(summary.rejected).toEqual([]);
    expect(text).toContain(
      'joined_on    text not null — 40 values, text: values look like day/month/year or month/day/year dates (02/02/2024); the loader reads ISO dates only (YYYY-MM-DD)',
    );
    const db = await dropAll('library', out, summary);
    expect(await constraints(db, 'library', 'f')).toEqual([
      'library.books FOREIGN KEY (author_id) REFERENCES library.authors(id)',
    ]);
    expect(await counts(db, 'library', ['authors', 'books', 'members', 'suppliers', 'warehouses'])).toEqual({
      authors: 10,
      books: 30,
      members: 40,
      suppliers: 5,
      warehouses: 5,
    });
  });
});

describe('init again after a parent key turned to text', () => {
  it('widens the foreign-key child with its parent in one migration that applies', {
    timeout: 120_000,
  }, async () => {
    await resetSchema('lib');
    const files = path.join(dir, 'lib-files');
    await mkdir(files, { recursive: true });
    const authors = (ids: string[]) =>
      `author_id,name\n${ids.map((id) => `${id},Author ${id}`).join('\n')}\n`;
    const ids = Array.from({ length: 10 }, (_, i) => String(i + 1));
    await writeFile(path.join(files, 'authors.csv'), authors(ids));
    await writeFile(
      path.join(files, 'book_authors.csv'),
      'isbn,author_id\n9780000000011,1\n9780000000012,3\n',
    );
    const out = path.join(dir, 'lib');
    await exec(NODE, ['cli/dropload.ts', 'init', files, '--schema', 'lib', '--out', out]);
    await writeFile(path.join(files, 'authors.csv'), authors(ids.map((id) => (id === '3' ? 'A3' : id))));
    const summary = await initJson(files, out);
    expect(summary.changes).toEqual([
      'authors.author_id: widened smallint → text (10 values, mixed: 9 whole numbers, 1 text: text)',
      'book_authors.author_id: widened smallint → text with its parent authors.author_id (foreign key)',
    ]);
    const name = (await readdir(path.join(out, 'migrations'))).find((f) => f.endsWith('_init_changes.ts'));
    const migration = await readFile(path.join(out, 'migrations', name ?? 'none'), 'utf8');
    expect(migration).toContain('// Generated by `dropload init` from authors.csv, book_authors.csv.');
    expect(migration).toContain(
      `export async function down(): Promise<void> {\n  throw new Error(\n    '${name?.slice(0, -3)} cannot be undone: it altered tables made before (types widened, NOT NULL dropped, columns or keys added), which may hold rows that fit only the new shape; restore them by hand',\n  );\n}`,
    );
    expect(await biomeChanged(out)).toEqual([]);
    const config = await loadConfig(path.join(out, 'dropload.config.ts'));
    const r = await runner(config, path.join(dir, 'lib-state'));
    expect(await columns(r.deps.db, 'lib')).toEqual([
      'authors.author_id text not null',
      'authors.name text not null',
      'book_authors.isbn bigint not null',
      'book_authors.author_id text not null',
    ]);
    expect(await constraints(r.deps.db, 'lib', 'f')).toEqual([
      'lib.book_authors FOREIGN KEY (author_id) REFERENCES lib.authors(author_id)',
    ]);
  });
});

describe('an updated export of a table with a primary key, dropped again', () => {
  it('updates its rows (the dataset upserts on the key) instead of refusing them as duplicates', {
    timeout: 120_000,
  }, async () => {
    await resetSchema('club');
    const files = path.join(dir, 'club-files');
    await mkdir(files, { recursive: true });
    const members = (plan: string) =>
      `member_id,name,plan\n${Array.from({ length: 40 }, (_, i) => `${i + 1},M${i + 1},${plan}`).join('\n')}\n`;
    await writeFile(path.join(files, 'members.csv'), members('basic'));
    const out = path.join(dir, 'club');
    await exec(NODE, ['cli/dropload.ts', 'init', files, '--schema', 'club', '--out', out]);
    expect(await readFile(path.join(out, 'datasets/members.ts'), 'utf8')).toContain(
      "  columnNames: 'snake_case',\n  // A file dropped again (an updated export) updates its rows by the primary key: use insert to refuse them.\n  mode: 'upsert',\n  key: ['member_id'],\n",
    );
    expect(await biomeChanged(out)).toEqual([]);
    const config = await loadConfig(path.join(out, 'dropload.config.ts'));
    const dataset = config.datasets.find((d) => d.name === 'members');
    if (!dataset) throw new Error('no dataset members');
    const r = await runner(config, path.join(dir, 'club-state'));
    const drop = async (name: string) =>
      (
        await runFiles(
          r,
          [{ path: path.join(files, 'members.csv'), key: `incoming/members/${name}`, dataset }],
          {
            timeoutMs: 60_000,
            rejectsShown: 10,
          },
        )
      ).reports.map((f) => [f.state, f.rows.read, f.rows.rejected]);
    expect(await drop('members-1.csv')).toEqual([['loaded', 40, 0]]);
    await writeFile(path.join(files, 'members.csv'), members('gold'));
    expect(await drop('members-2.csv')).toEqual([['loaded', 40, 0]]);
    const { rows } = await sql<{ plan: string; n: number }>`select plan, count(*)::int as n from club.members
      group by plan`.execute(r.deps.db);
    expect(rows).toEqual([{ plan: 'gold', n: 40 }]);
  });
});

describe('monthly exports of one table in its folder', () => {
  it('are one dataset named after their stem, and the printed run command loads the folder', {
    timeout: 120_000,
  }, async () => {
    await resetSchema('monthly');
    const folder = await datasetFolder('monthly', 'orders', {
      'orders-2024-01.csv': 'order_id,total\n1,10.50\n2,3.25\n',
      'orders-2024-02.csv': 'order_id,total\n3,1.00\n4,2.00\n',
    });
    const out = path.join(dir, 'monthly');
    const summary = await initJson(path.dirname(folder), out, 'monthly');
    expect(tablesRead(summary)).toEqual([['orders', 4, ['orders-2024-01.csv', 'orders-2024-02.csv']]]);
    expect(summary.next).toEqual([
      `npx dropload --config ${out}/dropload.config.ts run ${path.dirname(folder)}`,
    ]);
    const { uploads, r, run } = await runFolder(out, path.dirname(folder), 'monthly-state');
    expect(uploads.map((u) => [u.dataset.name, u.key])).toEqual([
      ['orders', 'incoming/orders/orders-2024-01.csv'],
      ['orders', 'incoming/orders/orders-2024-02.csv'],
    ]);
    expect(run.reports.map((f) => [f.key, f.state, f.rows.loaded])).toEqual([
      ['incoming/orders/orders-2024-01.csv', 'loaded', 2],
      ['incoming/orders/orders-2024-02.csv', 'loaded', 2],
    ]);
    expect(await counts(r.deps.db, 'monthly', ['orders'])).toEqual({ orders: 4 });
  });
});

describe('monthly exports of one table, one of them gzipped', () => {
  it('are one dataset whatever the compression, and the printed run command loads both', {
    timeout: 120_000,
  }, async () => {
    await resetSchema('mixed');
    const folder = await datasetFolder('mixed', 'x', {
      'x_2024_01.csv.gz': gzipSync('x_id,total\n1,10.50\n2,3.25\n'),
      'x_2024_02.csv': 'x_id,total\n3,1.00\n4,2.00\n',
    });
    const out = path.join(dir, 'mixed');
    const summary = await initJson(path.dirname(folder), out, 'mixed');
    expect(tablesRead(summary)).toEqual([['x', 4, ['x_2024_01.csv.gz', 'x_2024_02.csv']]]);
    expect(summary.next).toEqual([
      `npx dropload --config ${out}/dropload.config.ts run ${path.dirname(folder)}`,
    ]);
    const { r, run } = await runFolder(out, path.dirname(folder), 'mixed-state');
    expect(run.reports.map((f) => [f.key, f.state, f.rows.loaded])).toEqual([
      ['incoming/x/x_2024_01.csv.gz', 'loaded', 2],
      ['incoming/x/x_2024_02.csv', 'loaded', 2],
    ]);
    const { rows } = await sql<{ x_id: number; total: string }>`select x_id, total from mixed.x
      order by x_id`.execute(r.deps.db);
    expect(rows).toEqual([
      { x_id: 1, total: '10.50' },
      { x_id: 2, total: '3.25' },
      { x_id: 3, total: '1.00' },
      { x_id: 4, total: '2.00' },
    ]);
  });
});

describe('monthly exports whose headers differ by a column, then a month with a new column', () => {
  it('are one table: the column missing in a month is null there, and init again evolves the table', {
    timeout: 180_000,
  }, async () => {
    await resetSchema('months');
    const folder = path.join(dir, 'months-files');
    await mkdir(folder, { recursive: true });
    await writeFile(
      path.join(folder, 'invoices_2024_01.csv'),
      'InvoiceId,CustomerId,Total\n1,4,12.87\n2,23,5.94\n',
    );
    await writeFile(
      path.join(folder, 'invoices_2024_02.csv'),
      'InvoiceId,CustomerId,Note,Total\n3,1,late,11.88\n4,13,,5.94\n',
    );
    const out = path.join(dir, 'months');
    const first = await initJson(folder, out, 'months');
    expect(tablesRead(first)).toEqual([['invoices', 4, ['invoices_2024_01.csv', 'invoices_2024_02.csv']]]);
    expect(first.tables[0]?.columns.map((c) => [c.column, c.type, c.notNull, c.evidence])).toEqual([
      ['invoice_id', 'smallint', true, '4 values, range 1..4'],
      ['customer_id', 'smallint', true, '4 values, range 1..23'],
      ['note', 'text', false, '1 value (e.g. "late"); 3 nulls (1× "")'],
      ['total', 'numeric(4, 2)', true, '4 values, up to 2 integer digits, max 2 decimals'],
    ]);
    // Each load reads the config from a copy of its own: this process keeps the modules it imported.
    const load = async (files: string[], copy: string) => {
      await cp(out, copy, { recursive: true });
      const config = await loadConfig(path.join(copy, 'dropload.config.ts'));
      const dataset = config.datasets.find((d) => d.name === 'invoices');
      if (!dataset) throw new Error('no dataset invoices');
      const r = await runner(config, path.join(dir, 'months-state'));
      const uploads = files.map((f) => ({
        path: path.join(folder, f),
        key: `incoming/invoices/${f}`,
        dataset,
      }));
      const run = await runFiles(r, uploads, { timeoutMs: 60_000, rejectsShown: 10 });
      expect(run.reports.map((f) => [f.key, f.state, f.rows.loaded, f.rows.rejected])).toEqual(
        files.map((f) => [`incoming/invoices/${f}`, 'loaded', f.endsWith('03.csv') ? 3 : 2, 0]),
      );
      return r;
    };
    await stop(await load(['invoices_2024_01.csv', 'invoices_2024_02.csv'], `${out}-1`));
    await writeFile(
      path.join(folder, 'invoices_2024_03.csv'),
      'InvoiceId,CustomerId,Note,Total,Currency\n5,5,,1234.56,EUR\n6,6,,9.999,USD\n40000,7,,5.94,\n',
    );
    const again = await initJson(folder, out);
    expect(again.tables.map((t) => [t.name, t.rows])).toEqual([['invoices', 7]]);
    expect(again.changes).toEqual([
      'invoices.invoice_id: widened smallint → integer (7 values, range 1..40000)',
      'invoices.total: widened numeric(4, 2) → numeric(7, 3) (7 values, up to 4 integer digits, max 3 decimals)',
      'invoices.currency: new column, text (nullable: the rows already loaded have none)',
    ]);
    const r = await load(['invoices_2024_03.csv'], `${out}-2`);
    expect(await columns(r.deps.db, 'months')).toEqual([
      'invoices.invoice_id integer not null',
      'invoices.customer_id smallint not null',
      'invoices.note text',
      'invoices.total numeric(7,3) not null',
      'invoices.currency text',
    ]);
    const { rows } = await sql<{ id: number; note: string | null; total: string; currency: string | null }>`
      select invoice_id as id, note, total, currency from months.invoices order by invoice_id`.execute(
      r.deps.db,
    );
    expect(rows).toEqual([
      { id: 1, note: null, total: '12.870', currency: null },
      { id: 2, note: null, total: '5.940', currency: null },
      { id: 3, note: 'late', total: '11.880', currency: null },
      { id: 4, note: null, total: '5.940', currency: null },
      { id: 5, note: null, total: '1234.560', currency: 'EUR' },
      { id: 6, note: null, total: '9.999', currency: 'USD' },
      { id: 40000, note: null, total: '5.940', currency: null },
    ]);
  });
});

describe('init on a GTFS-like feed (dates written YYYYMMDD)', () => {
  it('makes the date-named 8-digit columns date, and the load stores those dates', {
    timeout: 120_000,
  }, async () => {
    await resetSchema('gtfs');
    const { out, summary, text } = await init('gtfs', 'gtfs');
    expect(text).toContain(
      '  start_date  date not null — 3 values, all dates YYYYMMDD, 20240101..20240229\n',
    );
    expect(text).toContain(
      "  feed_version         integer not null — 1 value, range 20240115..20240115; every value is a date YYYYMMDD: if they are dates, make the column date and its field date({ format: 'YYYYMMDD' })\n",
    );
    expect(await readFile(path.join(out, 'datasets/calendar_dates.ts'), 'utf8')).toContain(
      "    date: date({ format: 'YYYYMMDD' }),\n",
    );
    const db = await dropAll('gtfs', out, summary);
    const { rows } = await sql<{ v: string }>`select string_agg(service_id || ' ' || start_date::text || ' '
      || end_date::text, ', ' order by service_id) as v from gtfs.calendar`.execute(db);
    expect(rows).toEqual([
      { v: 'leap 2024-02-29 2024-02-29, weekdays 2024-01-01 2024-12-31, weekends 2024-01-06 2024-12-29' },
    ]);
    const dates = await sql<{ v: string }>`select string_agg(service_id || ' ' || date::text, ', '
      order by service_id, date) as v from gtfs.calendar_dates`.execute(db);
    expect(dates.rows).toEqual([
      { v: 'leap 2024-03-01, weekdays 2024-01-01, weekdays 2024-12-25, weekends 2024-01-01' },
    ]);
    expect(await columns(db, 'gtfs')).toContain('calendar_dates.date date not null');
    expect(await columns(db, 'gtfs')).toContain('feed_info.feed_version integer not null');
  });
});

describe('init on a column mixing dates and zoneless timestamps', () => {
  it('makes it timestamp; the load stores the dates as midnight', { timeout: 60_000 }, async () => {
    await resetSchema('shipments');
    const { out, summary } = await init('shipments', 'shipments');
    expect(await readFile(path.join(out, 'datasets/shipments.ts'), 'utf8')).toContain(
      "    shipped: localTimestamp({ dateOnly: 'midnight' }),\n",
    );
    const db = await dropAll('shipments', out, summary);
    const { rows } = await sql<{ v: string }>`select string_agg(shipment_id || ' ' || shipped::text, ', '
      order by shipment_id) as v from shipments.shipments`.execute(db);
    expect(rows).toEqual([
      { v: '1 2024-01-05 00:00:00, 2 2024-01-05 10:30:00, 3 2024-03-31 00:00:00, 4 2024-03-31 02:30:00' },
    ]);
  });
});
