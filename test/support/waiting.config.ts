// The config of test/integration/waiting.test.ts: a Northwind-like pair, one file per table. Regions are
// a plain single-table dataset; territories name their region by its natural key and wait for it when
// their file lands first. `territories-strict` gives up waiting after two seconds.
import { defineConfig, defineDataset, integer } from 'dropload';
import { type Kysely, sql } from 'kysely';
import { z } from 'zod';

export const NW_TABLES = ['nw.territories', 'nw.regions'];

export const regions = defineDataset({
  name: 'regions',
  format: 'csv',
  table: 'nw.regions',
  mode: 'upsert',
  key: ['region_id'],
  // Small chunks: a regions file of a few hundred KB commits in several chunks.
  chunkBytes: 64 * 1024,
  // Three letters at least: `retry-rejects` with a laxer schema (the test's) loads a shorter name late.
  schema: z.object({ region_id: integer(), name: z.string().min(3) }),
});

const territoryTargets = [
  {
    table: 'nw.territories',
    columns: { territory_id: 'territory_id', name: 'name' },
    references: { region_ref: { table: 'nw.regions', key: { region_id: 'region_id' } } },
    key: ['territory_id'],
  },
];

const territorySchema = z.object({
  territory_id: z.string().min(1),
  name: z.string().min(1),
  region_id: integer(),
});

export const territories = defineDataset({
  name: 'territories',
  format: 'csv',
  schema: territorySchema,
  targets: territoryTargets,
  orphanWaitSeconds: 3600,
});

export const strictTerritories = defineDataset({
  name: 'territories-strict',
  format: 'csv',
  schema: territorySchema,
  targets: territoryTargets,
  orphanWaitSeconds: 2,
});

export default defineConfig({
  datasets: [regions, territories, strictTerritories],
  migrations: {
    '20260101000000_nw': {
      async up(db: Kysely<unknown>) {
        await sql`create schema if not exists nw`.execute(db);
        await sql`create table nw.regions (id bigint generated always as identity primary key,
          region_id integer not null unique, name text not null)`.execute(db);
        await sql`create table nw.territories (id bigint generated always as identity primary key,
          territory_id text not null unique, name text not null,
          region_ref bigint not null references nw.regions (id))`.execute(db);
        await sql`create index territories_region_idx on nw.territories (region_ref)`.execute(db);
      },
    },
  },
});
