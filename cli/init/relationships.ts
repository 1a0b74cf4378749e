import { wider } from './column-type.ts';
import { ID_LIKE } from './file-profile.ts';
import { type InferredColumn, type InferredTable, singular } from './tables.ts';

/** A foreign key `init` writes: `certain` ones as constraints, the others commented out for the user to confirm. */
export interface Relationship {
  table: string;
  column: string;
  parentTable: string;
  parentColumn: string;
  certain: boolean;
  evidence: string;
}

/** A candidate that was not made a foreign key, and why. */
export interface Rejected {
  table: string;
  column: string;
  parentTable: string;
  parentColumn: string;
  reason: string;
}

export interface Relationships {
  relationships: Relationship[];
  rejected: Rejected[];
  /** Parent columns that are not their table's primary key: they get a unique index. */
  naturalKeys: { table: string; column: string }[];
}

// Names that say "another row of this table" (a self-reference).
const SELF_REFERENCE =
  /^(reports_to|parent|parent_id|manager|manager_id|supervisor|supervisor_id|boss_id|head_id)$/;
// Names of measures: values that happen to look like ids but are counts, amounts, ranks.
const MEASURE =
  /(quantity|qty|count|amount|price|total|discount|units|stock|level|rank|sort|age|year|size|weight)/;
const KEY_SUFFIX = /_(id|code|key|no)$/;

const stem = (column: string) => column.replace(KEY_SUFFIX, '');

const INTEGERS = new Set(['smallint', 'integer', 'bigint']);
/** Whether a child's values could be keys of the parent: whole numbers for whole numbers, text and uuid for text. */
function keyCompatible(child: InferredColumn, parent: InferredColumn): boolean {
  const c = child.type.name;
  const p = parent.type.name;
  if (INTEGERS.has(p)) return INTEGERS.has(c);
  return p === c || (p === 'text' && INTEGERS.has(c));
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** How the names support `child` → `parent` (2: they say it, 1: they hint at it, 0: unrelated), and how. */
function nameSupport(
  child: string,
  table: string,
  parent: string,
  parentTable: string,
): { score: number; how: string } {
  if (table === parentTable)
    return SELF_REFERENCE.test(child)
      ? { score: 2, how: `'${child}' names another row of ${table} (a self-reference)` }
      : { score: 0, how: '' };
  if (child === parent) return { score: 2, how: 'same column name' };
  const s = stem(child);
  if (s === singular(parentTable) || s === parentTable || child.endsWith(`_${parent}`))
    return { score: 2, how: `'${child}' names ${parentTable}` };
  if (MEASURE.test(child)) return { score: 0, how: '' };
  const shared = commonPrefix(s, singular(parentTable));
  if (shared >= 4)
    return {
      score: 1,
      how: `'${child}' shares '${s.slice(0, shared)}' with ${parentTable}`,
    };
  return { score: 0, how: '' };
}

/** A table's columns by name, as the files' headers give them before any row is read. */
export interface TableNames {
  table: string;
  columns: string[];
}

/**
 * Whether a column can take part in a key or a relationship, judged from the names alone: a key
 * candidate (first column, id-like name) or a column whose name some other column or table supports.
 * The others keep no distinct set: hashing every value of every column is most of the pass.
 */
export function mayRelate(column: string, position: number, table: string, all: TableNames[]): boolean {
  if (position === 0 || ID_LIKE.test(column) || column === `${singular(table)}_id`) return true;
  return all.some((t) => t.columns.some((c) => nameSupport(column, table, c, t.table).score > 0));
}

const ownKey = (table: InferredTable, column: InferredColumn) =>
  table.primaryKey.length === 1 && table.primaryKey[0] === column.column;

/** Columns another table's foreign key may point at: the primary key, or a unique never-null id-like column. */
function parentColumns(table: InferredTable): InferredColumn[] {
  return table.columns.filter(
    (c) =>
      c.notNull &&
      c.profile.unique === true &&
      ((table.primaryKey.length === 1 && table.primaryKey[0] === c.column) || KEY_SUFFIX.test(c.column)),
  );
}

const CANONICAL_INTEGER = /^-?[1-9]\d{0,14}$|^0$/;

/** Whether a set holds a key, whichever way each side stored it (a whole number as a number, else text). */
function holds(set: ReadonlySet<string | number>, value: string | number): boolean {
  if (set.has(value)) return true;
  if (typeof value === 'number') return set.has(String(value));
  return CANONICAL_INTEGER.test(value) && set.has(Number(value));
}

function missingValues(child: InferredColumn, parent: InferredColumn): string[] {
  const out: string[] = [];
  const parentSet = parent.profile.distinct ?? new Set();
  for (const v of child.profile.distinct ?? []) {
    if (!holds(parentSet, v)) out.push(String(v));
    if (out.length === 3) break;
  }
  return out;
}

interface Candidate {
  rel: Relationship;
  score: number;
  parent: InferredColumn;
}

/**
 * Foreign keys across files: a column whose non-null values are all among another file's unique
 * column, where the names support it. Value overlap alone never makes one (small integers overlap
 * everywhere); a weak name match becomes a foreign key only when the values cover every parent key,
 * else a commented-out one for the user to confirm. The chosen child column takes its parent's type.
 */
export function inferRelationships(tables: InferredTable[]): Relationships {
  const relationships: Relationship[] = [];
  const rejected: Rejected[] = [];
  const naturalKeys: { table: string; column: string }[] = [];
  const parents = tables.flatMap((t) => parentColumns(t).map((c) => ({ table: t, column: c })));
  for (const table of tables) {
    for (const child of table.columns) {
      if (child.profile.values === 0 || child.type.name === 'jsonb') continue;
      const candidates: Candidate[] = [];
      const overlapOnly: Rejected[] = [];
      for (const p of parents) {
        if ((p.table === table && p.column === child) || !keyCompatible(child, p.column)) continue;
        const base = {
          table: table.name,
          column: child.column,
          parentTable: p.table.name,
          parentColumn: p.column.column,
        };
        const { score, how } = nameSupport(child.column, table.name, p.column.column, p.table.name);
        if (!child.profile.distinct) {
          if (score > 0)
            rejected.push({
              ...base,
              reason: `${how}, but ${child.profile.keyless}: containment not checked`,
            });
          continue;
        }
        const missing = missingValues(child, p.column);
        const childDistinct = child.profile.distinct.size;
        const parentDistinct = p.column.profile.distinct?.size ?? 0;
        if (missing.length > 0) {
          // A table's own key against another's unique non-key column is a 1:1 guess; one that fails is not worth a line.
          if (score > 0 && !(ownKey(table, child) && !ownKey(p.table, p.column)))
            rejected.push({
              ...base,
              reason: `${how}, but values are missing from ${p.table.name}.${p.column.column} (e.g. ${missing.map((m) => JSON.stringify(m)).join(', ')})`,
            });
          continue;
        }
        const values = `${childDistinct} distinct values, all among the ${parentDistinct} of ${p.table.name}.${p.column.column}`;
        if (score === 0) {
          if (!ownKey(table, child))
            overlapOnly.push({
              ...base,
              reason: `${values}, but the names are unrelated: value overlap alone is no relationship`,
            });
          continue;
        }
        const covers = childDistinct === parentDistinct && parentDistinct >= 2;
        const certain = score === 2 || covers;
        const evidence =
          score === 2
            ? `${how}; ${values}`
            : covers
              ? `${how}; ${values} (every one used)`
              : `${how}; ${values}; confirm it`;
        candidates.push({ rel: { ...base, certain, evidence }, score, parent: p.column });
      }
      const best = candidates.sort(
        (a, b) => b.score - a.score || Number(b.rel.certain) - Number(a.rel.certain),
      )[0];
      if (!best) {
        rejected.push(...overlapOnly);
        continue;
      }
      for (const other of candidates)
        if (other !== best)
          rejected.push({
            ...other.rel,
            reason: `${other.rel.evidence}; ${best.rel.parentTable}.${best.rel.parentColumn} fits better`,
          });
      relationships.push(best.rel);
      child.type = wider(child.type, best.parent.type) ?? best.parent.type;
      best.parent.type = wider(best.parent.type, child.type) ?? best.parent.type;
      const parentTable = tables.find((t) => t.name === best.rel.parentTable);
      if (best.rel.certain && parentTable && parentTable.primaryKey[0] !== best.parent.column)
        if (!naturalKeys.some((k) => k.table === parentTable.name && k.column === best.parent.column))
          naturalKeys.push({ table: parentTable.name, column: best.parent.column });
    }
  }
  return { relationships, rejected, naturalKeys };
}

/** Tables parents first (certain foreign keys; self-references ignored): the order to load files in. */
export function dependencyOrder(tables: InferredTable[], relationships: Relationship[]): string[] {
  const out: string[] = [];
  const visiting = new Set<string>();
  const visit = (name: string) => {
    if (out.includes(name) || visiting.has(name)) return;
    visiting.add(name);
    for (const r of relationships)
      if (r.certain && r.table === name && r.parentTable !== name) visit(r.parentTable);
    out.push(name);
  };
  for (const t of tables) visit(t.name);
  return out;
}
