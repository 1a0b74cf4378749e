import type { Kysely } from 'kysely';
import type { Dataset, Reference, TableDataset, Target, TargetsDataset } from '../../config/dataset.ts';
import { type ForeignKey, foreignKeys, waitsForParents } from '../../ledger/foreign-keys.ts';
import type { Database } from '../../ledger/schema.ts';

/**
 * A single-table dataset waits for missing parents as a multi-table one does: its table's foreign keys,
 * read from the catalog (by a chunk at most once a minute, by a retry every time, so a migration is
 * seen: see `FOREIGN_KEYS_FOR_MS`), become `references` of a
 * one-target dataset written by the relational writer. A reference stores the parent's referenced
 * column, looked up by that same column, so a row whose parent is missing is found set-based and
 * parked, and a row whose foreign key has a NULL is written unchecked (SQL's MATCH SIMPLE).
 */

/**
 * A foreign key as a reference: its first column stores the parent's first referenced column, found by
 * all of them (the other columns of a composite key are written as they are). A key on a column the
 * dataset does not write, or whose first column a wider key stores, is left to the database (see
 * `foreignKeyTarget`).
 */
function referenceOf(dataset: TableDataset, key: string[], fk: ForeignKey): Reference | undefined {
  const fieldOf = new Map(dataset.fields.map((f) => [dataset.columnOf[f] as string, f]));
  if (!fk.columns.every((c) => fieldOf.has(c))) return undefined;
  // The writer's level-by-level order needs the parent named by the row's own key; otherwise a parent in
  // the same statement is missed once, and its child waits for the retry its commit wakes.
  const sameKey = key.length === fk.parentColumns.length && key.every((c) => fk.parentColumns.includes(c));
  return {
    column: fk.columns[0] as string,
    table: fk.parent,
    surrogate: fk.parentColumns[0] as string,
    keyColumns: fk.parentColumns,
    keyPaths: fk.columns.map((c) => fieldOf.get(c) as string),
    self: fk.self && sameKey,
  };
}

/** The dataset's table as a target whose references are its foreign keys. */
export function foreignKeyTarget(dataset: TableDataset, fks: readonly ForeignKey[]): Target {
  const key = dataset.key.map((f) => dataset.columnOf[f] as string);
  const references: Reference[] = [];
  for (const fk of fks) {
    const ref = referenceOf(dataset, key, fk);
    if (!ref) continue;
    const i = references.findIndex((r) => r.column === ref.column);
    if (i < 0) references.push(ref);
    // Two keys on one first column: the wider one is stored. A composite key's parent (an order's line)
    // is usually filled after the parent of its first column alone (the order): that is the one a row
    // waits for; the narrower key is then left to the database.
    else if (ref.keyColumns.length > (references[i] as Reference).keyColumns.length) references[i] = ref;
  }
  const stored = new Set(references.map((r) => r.column));
  const plain = dataset.fields.filter((f) => !stored.has(dataset.columnOf[f] as string));
  return {
    table: dataset.table,
    columns: plain.map((f) => dataset.columnOf[f] as string),
    paths: plain,
    references,
    key,
    mode: dataset.mode,
  };
}

/** The single-table dataset as the one-target dataset the relational writer and the retry work with. */
function asTargets(dataset: TableDataset, target: Target): TargetsDataset {
  // Its common options (name, schema, fields, null values, publish, …) carry over as they are.
  return {
    ...dataset,
    kind: 'targets',
    targets: [target],
    countedTable: target.table,
    orphanWaitSeconds: dataset.orphanWaitSeconds,
  };
}

/**
 * How long a container's chunks trust a table's foreign keys as they read them: a chunk would otherwise
 * query the catalog each time, and foreign keys change only by a migration. One that adds or drops a
 * key is seen within this long. Until then a chunk writes as before it: with a key added, by the table
 * writer, whose database refuses a row with no parent (a reject `retry-rejects` replays); with a key
 * dropped, looking the old parent up, so a row may wait for it, and its retry, which reads the catalog
 * every time (`retryDataset`), writes it.
 */
const FOREIGN_KEYS_FOR_MS = 60_000;

/** Per database handle (one per container, or per local runner), the foreign keys read per table. */
const readKeys = new WeakMap<Kysely<Database>, Map<string, { at: number; keys: Promise<ForeignKey[]> }>>();

function chunkForeignKeys(db: Kysely<Database>, table: string): Promise<ForeignKey[]> {
  const tables = readKeys.get(db) ?? new Map();
  readKeys.set(db, tables);
  const read = tables.get(table);
  if (read && Date.now() - read.at < FOREIGN_KEYS_FOR_MS) return read.keys;
  const keys = foreignKeys(db, table);
  tables.set(table, { at: Date.now(), keys });
  // A failed read is not kept: the next chunk asks again.
  keys.catch(() => tables.delete(table));
  return keys;
}

/**
 * How a chunk of the dataset is written when its rows may wait: the dataset itself (targets), its
 * table with its foreign keys as references (a single-table dataset with `waitForParents`, published
 * per chunk, with no `sourceColumn` and a foreign key it writes), or undefined: the table writer
 * (COPY), where the database refuses a row whose parent is missing.
 */
export async function waitingDataset(
  db: Kysely<Database>,
  dataset: Dataset,
): Promise<TargetsDataset | undefined> {
  if (dataset.kind === 'targets') return dataset;
  if (!waitsForParents(dataset)) return undefined;
  const target = foreignKeyTarget(dataset, await chunkForeignKeys(db, dataset.table));
  return target.references.length > 0 ? asTargets(dataset, target) : undefined;
}

/**
 * The dataset whose parked rows a retry writes: the same target as its chunks', whatever
 * `waitForParents` says now (rows parked before it was turned off still wait, or expire, whole).
 */
export async function retryDataset(db: Kysely<Database>, dataset: Dataset): Promise<TargetsDataset> {
  if (dataset.kind === 'targets') return dataset;
  return asTargets(dataset, foreignKeyTarget(dataset, await foreignKeys(db, dataset.table)));
}
