import { type Kysely, sql } from 'kysely';
import type { Dataset } from '../config/dataset.ts';
import type { Database } from './schema.ts';

/**
 * A table's foreign keys as the catalog has them: what a single-table dataset's rows wait for
 * (load/write/foreign-keys.ts), and the parent tables the loader role must read to find them.
 */

/** One foreign key of a table: its columns, the parent (schema-qualified) and the columns they reference. */
export interface ForeignKey {
  columns: string[];
  parent: string;
  parentColumns: string[];
  self: boolean;
}

export async function foreignKeys(db: Kysely<Database>, table: string): Promise<ForeignKey[]> {
  const { rows } = await sql<ForeignKey>`
    select array(select a.attname::text from unnest(c.conkey) with ordinality k(n, i)
        join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n order by k.i) as columns,
      pn.nspname || '.' || p.relname as parent,
      array(select a.attname::text from unnest(c.confkey) with ordinality k(n, i)
        join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.n order by k.i) as "parentColumns",
      c.confrelid = c.conrelid as self
    from pg_constraint c
      join pg_class p on p.oid = c.confrelid
      join pg_namespace pn on pn.oid = p.relnamespace
    where c.contype = 'f' and c.conrelid = to_regclass(${table})
    order by c.conname`.execute(db);
  return rows;
}

/** Whether the dataset's chunks look their parents up (and so read the parent tables) to wait for them. */
export function waitsForParents(dataset: Dataset): boolean {
  if (dataset.kind === 'targets') return true;
  return dataset.waitForParents && dataset.publish === 'chunk' && !dataset.sourceColumn;
}
