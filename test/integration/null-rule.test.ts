import { defineConfig, defineDataset, type TargetDefinition } from 'dropload';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { type Kysely, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Database } from '../../shared/ledger/schema.ts';
import { rejectsOfKey, startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/**
 * Issue 16, item 4: one null rule at every depth. A nested JSON null reaches the schema as no value
 * (`.optional()` takes it, as at the top), a required one is a reject naming its path, and a document
 * written whole to a jsonb column keeps its nulls. Runs on Postgres (DATABASE_URL) and on PGlite.
 */

const TABLES = ['nul.employees', 'nul.parquet_staff'];

const employee = (reportsTo: z.ZodType) =>
  z.object({
    employee: z.object({ id: z.number().int(), name: z.string(), reportsTo }),
    // Not declared field by field: the schema takes it as read.
    extra: z.json().optional(),
  });

const targets: TargetDefinition[] = [
  {
    table: 'nul.employees',
    columns: { employee_id: 'employee.id', name: 'employee.name', doc: 'employee', extra: 'extra' },
    references: { manager_ref: { table: 'nul.employees', key: { employee_id: 'employee.reportsTo' } } },
    key: ['employee_id'],
  },
];

const config = defineConfig({
  datasets: [
    defineDataset({
      name: 'staff',
      prefix: 'incoming/staff/',
      format: 'ndjson',
      schema: employee(z.number().int().optional()),
      targets,
    }),
    defineDataset({
      name: 'staff-strict',
      prefix: 'incoming/staff-strict/',
      format: 'ndjson',
      schema: employee(z.number().int()),
      targets,
    }),
    // A single table: the nested document is a jsonb column, written whole.
    defineDataset({
      name: 'staff-parquet',
      prefix: 'incoming/staff-parquet/',
      format: 'parquet',
      table: 'nul.parquet_staff',
      schema: z.object({
        id: z.coerce.number().int(),
        employee: z.object({ name: z.string(), reportsTo: z.number().int().optional() }),
        note: z.string().optional(),
      }),
    }),
  ],
  migrations: {
    '20260301000000_nul': {
      async up(db: Kysely<unknown>) {
        await sql`create schema if not exists nul`.execute(db);
        await sql`create table nul.employees (id bigint generated always as identity primary key,
          employee_id integer not null unique, name text not null,
          manager_ref bigint references nul.employees (id), doc jsonb not null, extra jsonb)`.execute(db);
        await sql`create table nul.parquet_staff (id bigint primary key, employee jsonb not null,
          note text)`.execute(db);
      },
    },
  },
});

let p: TestPipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

const TOP = {
  employee: { id: 1, name: 'Ann', reportsTo: null },
  extra: { a: null, b: [1, null], c: { d: null } },
};
const BOB = { employee: { id: 2, name: 'Bob', reportsTo: 1 } };
const LINES = [JSON.stringify(TOP), JSON.stringify(BOB)];

async function employees(db: Kysely<Database>) {
  const { rows } = await sql<Record<string, unknown>>`select e.employee_id, e.name, m.employee_id as manager,
      e.doc::text as doc, e.extra::text as extra
    from nul.employees e left join nul.employees m on m.id = e.manager_ref order by e.employee_id`.execute(
    db,
  );
  return rows;
}

/** A document as jsonb prints it: what a column holding it whole must read back as. */
async function asJsonb(db: Kysely<Database>, value: unknown) {
  const { rows } = await sql<{ t: string }>`select ${JSON.stringify(value)}::jsonb::text as t`.execute(db);
  return rows[0]?.t;
}

describe('one null rule at every depth (issue 16 item 4)', () => {
  it('a nested null is no value: `.optional()` loads the top manager; jsonb columns keep their nulls', async () => {
    p = await startTestPipeline(config, TABLES, { workers: 1 });
    const run = await p.load('incoming/staff/staff.ndjson', `${LINES.join('\n')}\n`);
    expect(run.reports[0]?.state).toBe('loaded');
    expect(run.reports[0]?.rows.inserted).toBe(2);
    expect(run.reports[0]?.rows.rejected).toBe(0);
    const db = p.deps.db;
    expect(await employees(db)).toEqual([
      {
        employee_id: 1,
        name: 'Ann',
        manager: null,
        doc: await asJsonb(db, TOP.employee),
        extra: await asJsonb(db, TOP.extra),
      },
      { employee_id: 2, name: 'Bob', manager: 1, doc: await asJsonb(db, BOB.employee), extra: null },
    ]);
    // Byte for byte what jsonb makes of the document, nulls included.
    expect((await employees(db))[0]?.doc).toBe('{"id": 1, "name": "Ann", "reportsTo": null}');
    expect((await employees(db))[0]?.extra).toBe('{"a": null, "b": [1, null], "c": {"d": null}}');
  });

  it('a nested null where the schema requires a value is a reject naming its path', async () => {
    p = await startTestPipeline(config, TABLES, { workers: 1 });
    const key = 'incoming/staff-strict/staff.ndjson';
    const run = await p.load(key, `${LINES.join('\n')}\n`);
    expect(run.reports[0]?.rows.rejected).toBe(1);
    expect(await rejectsOfKey(p.deps.db, key)).toEqual([
      {
        line: 1,
        column: 'employee.reportsTo',
        reason: 'a value is required (expected number) (got "null")',
        raw: LINES[0],
      },
    ]);
  });

  it('Parquet: a null in a nested column is no value to the schema, and stays null in the jsonb column', async () => {
    p = await startTestPipeline(config, TABLES, { workers: 1 });
    const employees = [
      { name: 'Ann', reportsTo: null },
      { name: 'Bob', reportsTo: 1 },
    ];
    const file = parquetWriteBuffer({
      columnData: [
        { name: 'id', data: [1n, 2n], type: 'INT64' },
        { name: 'employee', data: employees, type: 'JSON' },
        { name: 'note', data: [null, 'new'], type: 'STRING' },
      ],
    });
    const run = await p.load('incoming/staff-parquet/staff.parquet', new Uint8Array(file));
    expect(run.reports[0]?.rows.inserted).toBe(2);
    const { rows } = await sql<Record<string, unknown>>`select id::int as id, employee::text as employee, note
      from nul.parquet_staff order by id`.execute(p.deps.db);
    expect(rows).toEqual([
      { id: 1, employee: '{"name": "Ann", "reportsTo": null}', note: null },
      { id: 2, employee: '{"name": "Bob", "reportsTo": 1}', note: 'new' },
    ]);
  });
});
