import { defineConfig, defineDataset, integer } from 'dropload';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { FileReport } from '../../cli/report.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/**
 * A row that names itself as its parent, in a multi-table dataset (`references` to its own table; the
 * single-table case, foreign keys read from the catalog, is in fk-wait.test.ts): it loads when it writes
 * the id its reference stores, and waits when the database generates that id, unknown before the insert.
 */

const node = z.object({ id: integer(), code: z.string(), parent: z.string() });
const group = z.object({ code: z.string(), parent: z.string() });

const config = defineConfig({
  datasets: [
    defineDataset({
      name: 'nodes',
      format: 'csv',
      schema: node,
      targets: [
        {
          table: 'sr.nodes',
          columns: { id: 'id', code: 'code' },
          references: { parent_id: { table: 'sr.nodes', key: { code: 'parent' } } },
          key: ['code'],
        },
      ],
    }),
    defineDataset({
      name: 'groups',
      format: 'csv',
      schema: group,
      targets: [
        {
          table: 'sr.groups',
          columns: { code: 'code' },
          references: { parent_id: { table: 'sr.groups', key: { code: 'parent' } } },
          key: ['code'],
        },
      ],
    }),
  ],
  migrations: {
    '20260101000000_self_row': {
      async up(db: Kysely<unknown>) {
        await sql`create schema if not exists sr`.execute(db);
        await sql`create table sr.nodes (id integer primary key, code text not null unique,
          parent_id integer not null references sr.nodes (id))`.execute(db);
        await sql`create table sr.groups (id integer generated always as identity primary key,
          code text not null unique, parent_id integer references sr.groups (id))`.execute(db);
      },
    },
  },
});

let p: TestPipeline;
let db: Kysely<Database>;
beforeAll(async () => {
  p = await startTestPipeline(config, ['sr.nodes', 'sr.groups']);
  db = p.deps.db;
});
afterAll(() => p?.stop());

/** key, state, read, loaded, rejected, waiting */
const row = (r: FileReport) => [r.key, r.state, r.rows.read, r.rows.loaded, r.rows.rejected, r.rows.waiting];

describe('a record whose reference names its own row', () => {
  it('loads when it writes the id stored, its children after it', async () => {
    const run = await p.load('incoming/nodes/n.csv', 'id,code,parent\n12,b,a\n11,a,a\n13,c,b\n');
    expect(run.reports.map(row)).toEqual([['incoming/nodes/n.csv', 'loaded', 3, 3, 0, 0]]);
    const { rows } = await sql<{ code: string; parent: string }>`select n.code, p.code as parent
      from sr.nodes n join sr.nodes p on p.id = n.parent_id order by n.code`.execute(db);
    expect(rows).toEqual([
      { code: 'a', parent: 'a' },
      { code: 'b', parent: 'a' },
      { code: 'c', parent: 'b' },
    ]);
  });

  it('waits when the database generates the id (not known before the insert), as its children do', async () => {
    const run = await p.load('incoming/groups/g.csv', 'code,parent\na,a\nb,a\n');
    expect(run.reports.map(row)).toEqual([['incoming/groups/g.csv', 'waiting', 2, 0, 0, 2]]);
  });
});
