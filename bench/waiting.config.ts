import { z } from 'zod';
import { defineConfig } from '../shared/config/config.ts';
import { defineDataset } from '../shared/config/dataset.ts';
import { integer } from '../shared/config/fields.ts';

// `npm run bench:latency`'s second measure: one file per table, children dropped before their parent.
// Parents are a plain single-table dataset; children name their parent by its natural key and wait.

export const PARENT_TABLE = 'bench_parents';
export const CHILD_TABLE = 'bench_children';

export const WAITING_DDL = `
  drop table if exists ${CHILD_TABLE};
  drop table if exists ${PARENT_TABLE};
  create table ${PARENT_TABLE} (
    id bigint generated always as identity primary key,
    parent_id integer not null unique,
    name text not null
  );
  create table ${CHILD_TABLE} (
    id bigint generated always as identity primary key,
    child_id text not null unique,
    parent_ref bigint not null references ${PARENT_TABLE} (id)
  );
  create index on ${CHILD_TABLE} (parent_ref)`;

export const parentsDataset = defineDataset({
  name: 'bench-parents',
  format: 'csv',
  table: PARENT_TABLE,
  mode: 'upsert',
  key: ['parent_id'],
  schema: z.object({ parent_id: integer(), name: z.string().min(1) }),
});

export const childrenDataset = defineDataset({
  name: 'bench-children',
  format: 'csv',
  schema: z.object({ child_id: z.string().min(1), parent_id: integer() }),
  targets: [
    {
      table: CHILD_TABLE,
      columns: { child_id: 'child_id' },
      references: { parent_ref: { table: PARENT_TABLE, key: { parent_id: 'parent_id' } } },
      key: ['child_id'],
    },
  ],
});

export default defineConfig({ datasets: [parentsDataset, childrenDataset] });
