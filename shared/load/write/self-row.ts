import type { Reference, Target } from '../../config/dataset.ts';

/**
 * A row that names itself as its parent (a hierarchy's top whose `manager_id` is its own `employee_id`,
 * a common export convention): its parent is present, itself, as the database sees it (a foreign key
 * is checked once the row is in). A statement that looks parents up among the rows already written
 * would never find it, and the row would wait for a parent that can only land with it. The writers
 * compare the row's own key values with those it names its parent by, and when they are equal store
 * its own id in the reference. Only the row itself: a cycle between different rows still waits.
 */

/** Where a row holds its own value of a column: a column it writes, or a reference it stores. */
export type Own = { column: number } | { reference: number };

/**
 * Where a row holds its own value of `column`, as text the statement has: a column it writes, or a
 * reference whose stored value is its parent's first key column, the text the row names it by (the
 * case of every reference a table's foreign keys give). Undefined when the row does not hold it: an id
 * the database generates.
 */
function ownOf(t: Target, column: string): Own | undefined {
  const i = t.columns.indexOf(column);
  if (i >= 0) return { column: i };
  const r = t.references.findIndex((ref) => ref.column === column && ref.surrogate === ref.keyColumns[0]);
  return r >= 0 ? { reference: r } : undefined;
}

/** How a row is found to name itself: its own values of the parent's key columns, and of its id. */
export interface SelfMatch {
  /** Per key column of the reference. */
  keys: Own[];
  /** The value the reference stores when the row names itself. */
  surrogate: Own;
}

/**
 * For a reference to the target's own table, where the row holds its own values of the key it is named
 * by and of the id the reference stores; otherwise undefined (the row waits for its parent as any).
 */
export function selfMatchOf(t: Target, r: Reference): SelfMatch | undefined {
  if (r.table !== t.table) return undefined;
  const keys = r.keyColumns.map((k) => ownOf(t, k));
  const surrogate = ownOf(t, r.surrogate);
  if (surrogate === undefined || keys.some((k) => k === undefined)) return undefined;
  return { keys: keys as Own[], surrogate };
}
