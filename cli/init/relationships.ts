import type { PairProfile } from './column-profile.ts';
import { example, wider } from './column-type.ts';
import { keyLike } from './columns.ts';
import { type DistinctPairs, FULL_PAIRS } from './distinct-pairs.ts';
import { count } from './plural.ts';
import { type InferredColumn, type InferredTable, singular } from './tables.ts';

/**
 * A foreign key `init` writes: `certain` ones as constraints, the others commented out for the user to
 * confirm. One column, or two for a composite key (`columns[i]` references `parentColumns[i]`).
 */
export interface Relationship {
  table: string;
  columns: string[];
  parentTable: string;
  parentColumns: string[];
  certain: boolean;
  evidence: string;
}

/** A candidate that was not made a foreign key, and why. */
export interface Rejected {
  table: string;
  columns: string[];
  parentTable: string;
  parentColumns: string[];
  reason: string;
}

/** The end of a rejection the names gave no support to: the farthest calls, listed last. */
export const OVERLAP_ONLY = 'value overlap alone is no relationship';

/** `orders.customer_id`, or `shipments.(order_id, product_id)` for a composite key. */
export const columnsOf = (table: string, columns: string[]): string =>
  columns.length === 1 ? `${table}.${columns[0]}` : `${table}.(${columns.join(', ')})`;

export interface Relationships {
  relationships: Relationship[];
  rejected: Rejected[];
  /** Parent columns that are not their table's primary key: they get a unique index. */
  naturalKeys: { table: string; column: string }[];
}

// Names that say "another row of this table" (a self-reference) whatever the table.
const SELF_REFERENCE =
  /^(reports_to|parent|parent_id|manager|manager_id|supervisor|supervisor_id|boss_id|head_id)$/;
// Names that may point at another row: `referred_by`, `successor_of`, `previous_version`, … (to confirm).
const POINTER =
  /(_by|_to|_of)$|^(parent|previous|prev|next|original|predecessor|successor|replaced|superseded)_/;
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

// Key names that say nothing of which table they belong to: `id` beside `id` is no evidence.
const GENERIC_KEY = /^(id|key|code|no|number|uuid|guid)$/;

/**
 * How the names support `child` → `parent` (2: they say it, 1: they hint at it, 0: unrelated), and how.
 * A table's own key (`keys.child`) points at another table's key only when its name names that table
 * (`customer_details.customer_id` → `customers`): two tables' keys of one name are no relationship.
 */
function nameSupport(
  child: string,
  table: string,
  parent: string,
  parentTable: string,
  keys: { child: boolean; parent: boolean } = { child: false, parent: false },
): { score: number; how: string } {
  if (table === parentTable) return selfSupport(child, table, parent);
  const s = stem(child);
  const generic = GENERIC_KEY.test(parent);
  // Two tables' own keys of one name: only the name of the table pointed at decides which way (1:1).
  const bothKeys = keys.child && keys.parent;
  if (child === parent && !generic && !bothKeys) return { score: 2, how: 'same column name' };
  if (s === singular(parentTable) || s === parentTable || (!generic && child.endsWith(`_${parent}`)))
    return { score: 2, how: `'${child}' names ${parentTable}` };
  if (keys.child) return { score: 0, how: '' };
  if (MEASURE.test(child)) return { score: 0, how: '' };
  const shared = commonPrefix(s, singular(parentTable));
  if (shared >= 4)
    return {
      score: 1,
      how: `'${child}' shares '${s.slice(0, shared)}' with ${parentTable}`,
    };
  return { score: 0, how: '' };
}

/**
 * How a column's name supports pointing at its own table's key: it says so (`manager_id`, or the
 * table's row named with a prefix, `parent_member_id`), or it may (`referred_by`). Measures never.
 */
function selfSupport(child: string, table: string, parent: string): { score: number; how: string } {
  const row = singular(table);
  const namesKey = !GENERIC_KEY.test(parent) && child.endsWith(`_${parent}`);
  if (SELF_REFERENCE.test(child) || namesKey || child.endsWith(`_${row}_id`))
    return { score: 2, how: `'${child}' names another row of ${table} (a self-reference)` };
  if (POINTER.test(child) && !MEASURE.test(child))
    return { score: 1, how: `'${child}' may point at another row of ${table} (a self-reference)` };
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
  const own = all.find((t) => t.table === table)?.columns ?? [];
  if (position === 0 || keyLike(column, own) || column === `${singular(table)}_id`) return true;
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

/** Values shown of those a parent lacks. */
const SHOWN_MISSING = 3;

/**
 * The child's values the parent lacks, as the evidence names them: a few examples, else (all of them past
 * the values kept as text) how many.
 */
function missingValues(child: InferredColumn, parent: InferredColumn): string | undefined {
  const parentSet = parent.profile.distinct;
  const childSet = child.profile.distinct;
  if (!parentSet || !childSet) return undefined;
  const { count: n, examples } = childSet.missingFrom(parentSet, SHOWN_MISSING);
  if (n === 0) return undefined;
  return examples.length > 0 ? `e.g. ${examples.map(example).join(', ')}` : count(n, 'value');
}

/**
 * Whether a foreign key's column names its parent table (`parent_id` → `parents`): that beats a
 * self-reference its name also suggests (`parent_id` of `kids`), which is for when no table is named.
 */
const namesTable = (r: Relationship): boolean => {
  const s = stem(r.columns[0] as string);
  return r.table !== r.parentTable && (s === singular(r.parentTable) || s === r.parentTable);
};

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
export function inferRelationships(
  tables: InferredTable[],
  inDatabase: (r: Relationship) => boolean = () => false,
): Relationships {
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
          columns: [child.column],
          parentTable: p.table.name,
          parentColumns: [p.column.column],
        };
        const { score, how } = nameSupport(child.column, table.name, p.column.column, p.table.name, {
          child: ownKey(table, child),
          parent: ownKey(p.table, p.column),
        });
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
        if (missing !== undefined) {
          // A table's own key against another's unique non-key column is a 1:1 guess; one that fails is not worth a line.
          if (score > 0 && !(ownKey(table, child) && !ownKey(p.table, p.column)))
            rejected.push({
              ...base,
              reason: `${how}, but values are missing from ${p.table.name}.${p.column.column} (${missing})`,
            });
          continue;
        }
        const values = `${count(childDistinct, 'distinct value')}, all among the ${parentDistinct} of ${p.table.name}.${p.column.column}`;
        if (score === 0) {
          if (!ownKey(table, child))
            overlapOnly.push({
              ...base,
              reason: `${values}, but the names are unrelated: ${OVERLAP_ONLY}`,
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
        (a, b) =>
          b.score - a.score ||
          Number(namesTable(b.rel)) - Number(namesTable(a.rel)) ||
          Number(b.rel.certain) - Number(a.rel.certain),
      )[0];
      if (!best) {
        rejected.push(...overlapOnly);
        continue;
      }
      for (const other of candidates)
        if (other !== best)
          rejected.push({
            ...other.rel,
            reason: `${other.rel.evidence}; ${columnsOf(best.rel.parentTable, best.rel.parentColumns)} fits better`,
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
  compositeKeys(tables, relationships, rejected);
  // A foreign key `init` wrote before is in the database: a cycle is broken at a new one.
  breakCycles(tables, relationships, inDatabase);
  hintLinkKeys(tables, relationships);
  const used = naturalKeys.filter((k) =>
    relationships.some((r) => r.certain && r.parentTable === k.table && r.parentColumns.includes(k.column)),
  );
  return { relationships, rejected, naturalKeys: used };
}

/**
 * A table with no key whose never-null columns point at two other tables (`book_authors (book,
 * author)`) is likely a link table, but its pairs were not followed (only id-like names' are, to keep
 * the scan cheap), so whether the pair is unique is unknown: the key evidence says so, for the user.
 */
function hintLinkKeys(tables: InferredTable[], relationships: Relationship[]): void {
  for (const table of tables) {
    if (table.primaryKey.length > 0) continue;
    const notNull = new Set(table.columns.filter((c) => c.notNull).map((c) => c.column));
    const pointing = relationships
      .filter((r) => r.table === table.name && r.certain && r.parentTable !== table.name)
      .filter((r) => r.columns.length === 1 && notNull.has(r.columns[0] as string))
      .map((r) => r.columns[0] as string);
    const tracked = new Set(
      table.file.pairs.flatMap((p) => p.columns.map((f) => columnOf(table, f)?.column)),
    );
    const [a, b] = [...new Set(pointing)].filter((c) => !tracked.has(c));
    if (a === undefined || b === undefined) continue;
    table.keyEvidence += `; (${a}, ${b}) point at other tables and are never null: a link table? its pairs were not checked (init follows pairs of id-like names only: ${a}_id, ${b}_id): if each pair is unique, make it the primary key by hand`;
  }
}

/** A table's two-column primary key and the distinct pairs of its file, as `pairKey`s in `pair.columns` order. */
interface CompositeParent {
  table: InferredTable;
  pair: PairProfile;
  seen: DistinctPairs;
}

function columnOf(table: InferredTable, field: string): InferredColumn | undefined {
  return table.columns.find((c) => c.field === field);
}

function compositeParents(tables: InferredTable[]): CompositeParent[] {
  const out: CompositeParent[] = [];
  for (const table of tables) {
    if (table.primaryKey.length !== 2) continue;
    const key = new Set(table.primaryKey);
    const pair = table.file.pairs.find((p) =>
      p.columns.every((f) => key.has(columnOf(table, f)?.column ?? '')),
    );
    if (pair?.seen) out.push({ table, pair, seen: pair.seen });
  }
  return out;
}

/** A child pair's columns in the parent key's order, with how the names support each. */
interface PairMatch {
  child: [InferredColumn, InferredColumn];
  parent: [InferredColumn, InferredColumn];
  /** The child pair's keys are (parent[1], parent[0]): swap them before looking them up. */
  crossed: boolean;
  score: number;
  how: string;
}

/** The better of the two ways to line a child pair up with a parent key, judged by names and types. */
function matchPair(table: InferredTable, pair: PairProfile, parent: CompositeParent): PairMatch | undefined {
  const [c0, c1] = pair.columns.map((f) => columnOf(table, f));
  const [p0, p1] = parent.pair.columns.map((f) => columnOf(parent.table, f));
  if (!c0 || !c1 || !p0 || !p1) return undefined;
  const ways = [
    { child: [c0, c1] as [InferredColumn, InferredColumn], crossed: false },
    { child: [c1, c0] as [InferredColumn, InferredColumn], crossed: true },
  ].map(({ child, crossed }) => {
    const support = [p0, p1].map((p, i) => {
      const c = child[i] as InferredColumn;
      const name = nameSupport(c.column, table.name, p.column, parent.table.name);
      return keyCompatible(c, p) ? name : { score: -1, how: '' };
    });
    const hows = [...new Set(support.map((n) => n.how))];
    const score = Math.min(...support.map((n) => n.score));
    return {
      child,
      parent: [p0, p1] as [InferredColumn, InferredColumn],
      crossed,
      score,
      how: hows.join(', '),
    };
  });
  const best = ways.sort((a, b) => b.score - a.score)[0];
  return best && best.score >= 0 ? best : undefined;
}

/** The child pairs the parent key lacks, as the evidence names them (see `missingValues`), in the parent's column order. */
function missingPairs(seen: DistinctPairs, match: PairMatch, parent: CompositeParent): string | undefined {
  const { count: n, examples } = seen.missingFrom(parent.seen, match.crossed, SHOWN_MISSING);
  if (n === 0) return undefined;
  const shown = examples.map(([a, b]) => (match.crossed ? `(${b}, ${a})` : `(${a}, ${b})`));
  return shown.length > 0 ? `e.g. ${shown.join(', ')}` : count(n, 'pair');
}

interface CompositeCandidate {
  rel: Relationship;
  score: number;
  match: PairMatch;
}

/** A child pair against one parent key: a candidate, or nothing (a rejection pushed when the names support it or the values alone fit). */
function judgePair(
  table: InferredTable,
  pair: PairProfile,
  parent: CompositeParent,
  rejected: Rejected[],
): CompositeCandidate | undefined {
  const match = matchPair(table, pair, parent);
  if (!match) return undefined;
  const base = {
    table: table.name,
    columns: match.child.map((c) => c.column),
    parentTable: parent.table.name,
    parentColumns: match.parent.map((c) => c.column),
  };
  const parentName = columnsOf(base.parentTable, base.parentColumns);
  const reject = (reason: string) => {
    rejected.push({ ...base, reason });
    return undefined;
  };
  if (!pair.seen)
    return match.score > 0 ? reject(`${match.how}, but ${FULL_PAIRS}: containment not checked`) : undefined;
  const missing = missingPairs(pair.seen, match, parent);
  if (missing !== undefined)
    return match.score > 0
      ? reject(`${match.how}, but pairs are missing from ${parentName} (${missing})`)
      : undefined;
  const values = `${count(pair.seen.size, 'distinct pair')}, all among the ${parent.seen.size} of ${parentName}`;
  if (match.score === 0) return reject(`${values}, but the names are unrelated: ${OVERLAP_ONLY}`);
  const covers = pair.seen.size === parent.seen.size && parent.seen.size >= 2;
  const certain = match.score === 2 || covers;
  const evidence =
    match.score === 2
      ? `${match.how}; ${values}`
      : `${match.how}; ${values}${covers ? ' (every one used)' : '; confirm it'}`;
  return { rel: { ...base, certain, evidence }, score: match.score, match };
}

/**
 * Composite foreign keys: a pair of id-like columns whose distinct pairs (nulls aside) are all among
 * another table's two-column primary key, where each child column's name supports its parent column
 * by the same rules as a single column's. The pairs kept are bounded as single columns' values are
 * (see distinct-pairs.ts); a pair past it is not checked. Overlap alone makes none. The child columns
 * take their parent columns' types.
 */
function compositeKeys(tables: InferredTable[], relationships: Relationship[], rejected: Rejected[]): void {
  const parents = compositeParents(tables);
  for (const table of tables)
    for (const pair of table.file.pairs) {
      const candidates = parents
        .filter((p) => p.table !== table)
        .flatMap((p) => judgePair(table, pair, p, rejected) ?? [])
        .sort((a, b) => b.score - a.score);
      const [best, ...others] = candidates;
      if (!best) continue;
      relationships.push(best.rel);
      for (const o of others)
        rejected.push({
          ...o.rel,
          reason: `${o.rel.evidence}; ${columnsOf(best.rel.parentTable, best.rel.parentColumns)} fits better`,
        });
      for (const [i, c] of best.match.child.entries()) {
        const p = best.match.parent[i] as InferredColumn;
        c.type = wider(c.type, p.type) ?? p.type;
        p.type = wider(p.type, c.type) ?? p.type;
      }
    }
}

/** A foreign key as the load order sees it: which table waits for which, if enforced. */
export type Edge = Pick<Relationship, 'table' | 'parentTable' | 'certain'>;

/**
 * Tables parents first (certain foreign keys; self-references ignored): the order to load files in.
 * Run after `breakCycles`, so no cycle is left to skip; `tables` alone are listed, in that order.
 */
export function dependencyOrder(tables: { name: string }[], relationships: Edge[]): string[] {
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
  const listed = new Set(tables.map((t) => t.name));
  return out.filter((name) => listed.has(name));
}

const arrow = (r: Relationship) =>
  `${columnsOf(r.table, r.columns)} → ${columnsOf(r.parentTable, r.parentColumns)}`;

/** A cycle of certain foreign keys between tables (self-references aside), as its edges in order, if any. */
function findCycle(relationships: Relationship[]): Relationship[] | undefined {
  const edges = relationships.filter((r) => r.certain && r.table !== r.parentTable);
  const done = new Set<string>();
  const path: Relationship[] = [];
  const onPath = (name: string) => path.findIndex((r) => r.table === name);
  const visit = (name: string): Relationship[] | undefined => {
    for (const r of edges.filter((e) => e.table === name)) {
      const at = onPath(r.parentTable);
      if (at !== -1) return [...path.slice(at), r];
      if (done.has(r.parentTable)) continue;
      path.push(r);
      const found = visit(r.parentTable);
      path.pop();
      if (found) return found;
    }
    done.add(name);
    return undefined;
  };
  for (const r of edges) {
    const found = r.table === r.parentTable ? undefined : visit(r.table);
    if (found) return found;
  }
  return undefined;
}

/**
 * Certain foreign keys that close a cycle between tables are written commented out, saying why: each
 * file would wait for the other and no row would load. The one given up is a nullable one (the
 * column a user fills in later), else one to a unique column that is not its table's key, else a
 * table's own key pointing elsewhere (both guesses), else the last one found. A `fixed` one (in the
 * database already) is never given up: a cycle of fixed ones only is returned, as its tables in order.
 */
export function breakCycles(
  tables: InferredTable[],
  relationships: Relationship[],
  fixed: (r: Relationship) => boolean = () => false,
): string[][] {
  const nullable = (r: Relationship) => {
    const table = tables.find((t) => t.name === r.table);
    return r.columns.some((c) => table?.columns.find((x) => x.column === c)?.notNull === false);
  };
  const isKey = (table: string, columns: string[]) =>
    tables.find((t) => t.name === table)?.primaryKey.join() === columns.join();
  const toNaturalKey = (r: Relationship) => !isKey(r.parentTable, r.parentColumns);
  const ownKeyEdge = (r: Relationship) => isKey(r.table, r.columns);
  const unbroken: string[][] = [];
  // A cycle of fixed keys is left out of the search once reported: the loop ends.
  let edges = relationships;
  for (let cycle = findCycle(edges); cycle; cycle = findCycle(edges)) {
    const open = cycle.filter((r) => !fixed(r));
    if (open.length === 0) {
      unbroken.push([...cycle.map((r) => r.table), cycle[0]?.table as string]);
      edges = edges.filter((r) => r !== cycle?.[0]);
      continue;
    }
    const weakest =
      open.find(nullable) ??
      open.find(toNaturalKey) ??
      open.find(ownKeyEdge) ??
      (open.at(-1) as Relationship);
    const at = cycle.indexOf(weakest);
    const around = [...cycle.slice(at), ...cycle.slice(0, at)];
    const tablesAround = [...around.map((r) => r.table), weakest.table].join(' → ');
    const others = around.slice(1).map(arrow).join(' and ');
    weakest.certain = false;
    weakest.evidence += `; not enforced: with ${others} it makes a cycle (${tablesAround}), and no load order would exist`;
  }
  return unbroken;
}
