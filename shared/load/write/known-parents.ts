import { type RawBuilder, sql, type Transaction } from 'kysely';
import type { Reference, Target } from '../../config/dataset.ts';
import type { Database } from '../../ledger/schema.ts';
import { plpgsql } from './record-by-record.ts';

/**
 * The parents the one-row search (`record-rows.ts`) finds in the table before its first record, looked
 * up set-based once (an update of the stage) instead of one lookup per record: a refused record spent
 * about a sixth of its time on the server there (the bench's records: 0.27 of 1.6 s). A record whose parent was not there yet (a parent of
 * the same batch, or none) is looked up in its turn, as before.
 */

/**
 * Whether reference `i` of target `k` may be looked up before the records: no record can change what it
 * finds there, as no upsert of the batch rewrites the parent's key columns or id (a row naming itself
 * is left to its own lookup, see `self-row.ts`).
 */
export function lookedUpFirst(targets: readonly Target[], k: number, i: number): boolean {
  const r = (targets[k] as Target).references[i] as Reference;
  if (r.self) return false;
  const read = new Set([...r.keyColumns, r.surrogate]);
  return targets.every((t) => {
    if (t.table !== r.table || t.mode === 'insert' || t.mode === 'insert-ignore') return true;
    const written = [...t.columns, ...t.references.map((ref) => ref.column)];
    return written.every((c) => t.key.includes(c) || !read.has(c));
  });
}

/**
 * The PL/pgSQL block, run once before the records, that fills the stage's `column` with the id (as
 * text) of each staged row's parent found by `keys` (the staged keys, cast as the lookup casts them).
 * Should it fail (a key that does not cast), the column stays empty and every record looks its parent up.
 */
export function lookUpFirst(
  trx: Transaction<Database>,
  reference: Reference,
  stage: RawBuilder<unknown>,
  column: string,
  keys: RawBuilder<unknown>[],
): string {
  const on = reference.keyColumns.map((key, j) => sql`p.${sql.id(key)} = ${keys[j]}`);
  const update = sql`update ${stage} as dropload_r set ${sql.id(column)} = p.${sql.id(reference.surrogate)}::text
    from ${sql.table(reference.table)} as p where ${sql.join(on, sql` and `)}`;
  return `begin
    ${plpgsql(trx, update)};
  exception when others then
    null;
  end;`;
}
