// The config of test/integration/fk-wait.test.ts: two plain single-table datasets whose tables are
// joined by a foreign key the config never mentions (no `references`): territories.region_id
// references regions.region_id. `territories` waits for its regions; `territories-now` turns waiting
// off and has its orphans rejected at once. `regions` has a self-reference (a region's parent region).
// `staff` and `crew` (composite) have one whose top row names itself (`1,Ceo,1`), as exports often do.
import { defineConfig, defineDataset, integer } from 'dropload';
import { type Kysely, sql } from 'kysely';
import { z } from 'zod';

export const FK_TABLES = ['fk.territories', 'fk.regions', 'fk.staff', 'fk.crew'];

const territorySchema = z.object({
  territory_id: z.string().min(1),
  name: z.string(),
  region_id: integer().optional(),
});

export default defineConfig({
  datasets: [
    defineDataset({
      name: 'regions',
      format: 'csv',
      table: 'fk.regions',
      mode: 'upsert',
      key: ['region_id'],
      schema: z.object({ region_id: integer(), name: z.string(), parent_id: integer().optional() }),
    }),
    defineDataset({
      name: 'territories',
      prefix: 'incoming/territories/',
      format: 'csv',
      table: 'fk.territories',
      mode: 'upsert',
      key: ['territory_id'],
      schema: territorySchema,
    }),
    defineDataset({
      name: 'territories-now',
      format: 'csv',
      table: 'fk.territories',
      key: ['territory_id'],
      schema: territorySchema,
      waitForParents: false,
    }),
    defineDataset({
      name: 'staff',
      format: 'csv',
      table: 'fk.staff',
      mode: 'upsert',
      key: ['employee_id'],
      schema: z.object({ employee_id: integer(), name: z.string(), manager_id: integer() }),
    }),
    defineDataset({
      name: 'crew',
      format: 'csv',
      table: 'fk.crew',
      mode: 'upsert',
      key: ['org_id', 'employee_id'],
      schema: z.object({
        org_id: integer(),
        employee_id: integer(),
        name: z.string(),
        manager_id: integer(),
      }),
    }),
  ],
  migrations: {
    '20260101000000_fk': {
      async up(db: Kysely<unknown>) {
        await sql`create schema if not exists fk`.execute(db);
        await sql`create table fk.regions (region_id integer primary key, name text not null,
          parent_id integer references fk.regions (region_id))`.execute(db);
        await sql`create table fk.territories (territory_id text primary key, name text not null,
          region_id integer references fk.regions (region_id))`.execute(db);
        await sql`create table fk.staff (employee_id integer primary key,
          name text not null check (name <> 'Refused'),
          manager_id integer not null references fk.staff (employee_id))`.execute(db);
        await sql`create table fk.crew (org_id integer, employee_id integer, name text not null,
          manager_id integer not null, primary key (org_id, employee_id),
          foreign key (org_id, manager_id) references fk.crew (org_id, employee_id))`.execute(db);
      },
    },
  },
});
