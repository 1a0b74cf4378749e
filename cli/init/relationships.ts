import type { PairProfile } from './column-profile.ts';
import { example, wider } from './column-type.ts';
import { ID_LIKE, keyLike, SEQUENCE_LIKE } from './columns.ts';
import { type DistinctPairs, FULL_PAIRS } from './distinct-pairs.ts';
import { count } from './plural.ts';
import { type InferredColumn, type InferredTable, MIN_KEY_ROWS, namedTable, singular } from './tables.ts';

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
  /** How close a call it was (see `closeness`): they are listed closest first. */
  closeness: number;
}

/** Two values (a flag, a constant) fit inside any key that starts at 0 or 1: no call at all. */
const MIN_OVERLAP = 3;

/** The end of a rejection the names gave no support to. */
const OVERLAP_ONLY = 'value overlap alone is no relationship';

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

const share = (part: number, whole: number) => (whole > 0 ? part / whole : 0);

/**
 * How close a rejected candidate came to a foreign key: the share of its values found in the parent
 * (a half when not checked), weighed by the names' support (0, 1, 2), half a point more for an id-like
 * child whose name names no table (`support_rep_id`: a pointer, to what it does not say), and a tenth
 * by the share of the parent's keys it uses. `visit_ref` with 19 of 20 values found comes before
 * `copy_no` fitting by its values alone, and both before `quantity`.
 */
function closeness(found: number, score: number, idLike: boolean, used: number): number {
  return found * (1 + score) + (idLike && score === 0 ? 0.5 : 0) + 0.1 * used;
}

/**
 * The words a column's stem shares with a table's name, when they are the table's name, its last word
 * shortened or lengthened (`ship_via` → shippers: 'ship'): `translation` shares no word with
 * `transfers`, nor `order_item` with `order_events`.
 */
function sharedWords(columnStem: string, tableName: string): string | undefined {
  const c = columnStem.split('_');
  const t = tableName.split('_');
  const last = t.length - 1;
  if (t.length > c.length || t.slice(0, last).some((w, i) => w !== c[i])) return undefined;
  const [a, b] = [c[last] as string, t[last] as string];
  const word = b.startsWith(a) ? a : a.startsWith(b) ? b : undefined;
  const shared = word === undefined ? undefined : [...t.slice(0, last), word].join('_');
  return shared !== undefined && shared.length >= 4 ? shared : undefined;
}

const INTEGERS = new Set(['smallint', 'integer', 'bigint']);
/** Whether a child's values could be keys of the parent: whole numbers for whole numbers, text and uuid for text. */
function keyCompatible(child: InferredColumn, parent: InferredColumn): boolean {
  const c = child.type.name;
  const p = parent.type.name;
  if (INTEGERS.has(p)) return INTEGERS.has(c);
  return p === c || (p === 'text' && INTEGERS.has(c));
}

// Key names that say nothing of which table they belong to: `id` beside `id` is no evidence.
const GENERIC_KEY = /^(id|key|code|no|number|uuid|guid)$/;

/**
 * How the names support `child` → `parent` (2: they say it, 1: they hint at it, 0: unrelated), and how.
 * A table's own key (`keys.child`) points at another table's key only when its name names that table
 * (`customer_details.customer_id` → `customers`), or when both keys have one name naming neither table
 * (`title_ratings.tconst` → `title_basics.tconst`, a 1:1 the values decide). A name ending in another
 * column's name supports it only when that column is its table's key (`parent_tconst`), and a
 * self-reference points at the key only: `billing_postal_code` names no employee.
 */
function nameSupport(
  child: string,
  table: string,
  parent: string,
  parentTable: string,
  keys: { child: boolean; parent: boolean } = { child: false, parent: false },
): { score: number; how: string } {
  if (table === parentTable) return keys.parent ? selfSupport(child, table, parent) : NONE;
  const s = stem(child);
  const generic = GENERIC_KEY.test(parent);
  const namesParent = namedTable(child, [parentTable]) !== undefined;
  // Two tables' own keys of one name: a name naming either table decides which way (1:1).
  const bothKeys = keys.child && keys.parent;
  const named = namesParent || namedTable(child, [table]) !== undefined;
  if (child === parent && !generic && !(bothKeys && named)) return { score: 2, how: 'same column name' };
  if (namesParent) return { score: 2, how: `'${child}' names ${parentTable}` };
  if (!generic && keys.parent && child.endsWith(`_${parent}`))
    return { score: 2, how: `'${child}' ends in '${parent}', the key of ${parentTable}` };
  if (keys.child || MEASURE.test(child) || SEQUENCE_LIKE.test(child)) return NONE;
  const shared = sharedWords(s, singular(parentTable));
  return shared ? { score: 1, how: `'${child}' shares '${shared}' with ${parentTable}` } : NONE;
}

const NONE = { score: 0, how: '' };

/**
 * How a column's name supports pointing at its own table's key: it says so (`manager_id`, or the
 * table's row named with a prefix, `parent_member_id`), or it may (`referred_by`). Measures never.
 */
function selfSupport(child: string, table: string, parent: string): { score: number; how: string } {
  const row = singular(table);
  const namesKey = !GENERIC_KEY.test(parent) && child.endsWith(`_${parent}`);
  if (SELF_REFERENCE.test(child) || namesKey || child.endsWith(`_${row}_id`))
    return { score: 2, how: `'${child}' names another row of ${table} (a self-reference)` };
  if (POINTER.test(child) && !MEASURE.test(child) && !SEQUENCE_LIKE.test(child))
    return { score: 1, how: `'${child}' may point at another row of ${table} (a self-reference)` };
  return NONE;
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
  // Any column of another file may turn out its table's key: judged as one.
  const asKey = { child: false, parent: true };
  return all.some((t) => t.columns.some((c) => nameSupport(column, table, c, t.table, asKey).score > 0));
}

const ownKey = (table: InferredTable, column: InferredColumn) =>
  table.primaryKey.length === 1 && table.primaryKey[0] === column.column;

/** Whether the database holds a column unique already: a natural key a foreign key written before points at. */
export type KnownUnique = (table: string, column: string) => boolean;

/**
 * Columns another table's foreign key may point at: the primary key, a column the database holds
 * unique, or a unique never-null id-like column unique in as many rows as a key needs (a small table's
 * `postal_code` is unique by chance).
 */
function parentColumns(table: InferredTable, known: KnownUnique): InferredColumn[] {
  return table.columns.filter(
    (c) =>
      c.notNull &&
      c.profile.unique === true &&
      (ownKey(table, c) ||
        known(table.name, c.column) ||
        (KEY_SUFFIX.test(c.column) && c.profile.values >= MIN_KEY_ROWS)),
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

/** The share of a child's distinct values found among the parent's (for the closeness of a miss). */
function foundShare(child: InferredColumn, parent: InferredColumn): number {
  const parentSet = parent.profile.distinct;
  const childSet = child.profile.distinct;
  if (!parentSet || !childSet) return 0;
  return share(childSet.size - childSet.missingFrom(parentSet, 0).count, childSet.size);
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
  /** Its closeness, should another candidate fit better. */
  closeness: number;
}

/**
 * A miss not worth a line: a table's own key against another's unique non-key column (a 1:1 guess),
 * or against another's key of one name whose values are all among its own (the other way round is
 * the relationship: `title_basics.tconst` misses titles nobody rated).
 */
function oneToOneGuess(
  table: InferredTable,
  child: InferredColumn,
  p: { table: InferredTable; column: InferredColumn },
) {
  if (!ownKey(table, child)) return false;
  return !ownKey(p.table, p.column) || missingValues(p.column, child) === undefined;
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
  known: KnownUnique = () => false,
): Relationships {
  const relationships: Relationship[] = [];
  const rejected: Rejected[] = [];
  const naturalKeys: { table: string; column: string }[] = [];
  const parents = tables.flatMap((t) => parentColumns(t, known).map((c) => ({ table: t, column: c })));
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
              closeness: closeness(0.5, score, false, 0),
            });
          continue;
        }
        const missing = missingValues(child, p.column);
        const childDistinct = child.profile.distinct.size;
        const parentDistinct = p.column.profile.distinct?.size ?? 0;
        if (missing !== undefined) {
          if (score > 0 && !oneToOneGuess(table, child, p))
            rejected.push({
              ...base,
              reason: `${how}, but values are missing from ${p.table.name}.${p.column.column} (${missing})`,
              closeness: closeness(foundShare(child, p.column), score, false, 0),
            });
          continue;
        }
        const values = `${count(childDistinct, 'distinct value')}, all among the ${parentDistinct} of ${p.table.name}.${p.column.column}`;
        if (score === 0) {
          if (!ownKey(table, child) && childDistinct >= MIN_OVERLAP)
            overlapOnly.push({
              ...base,
              reason: `${values}, but the names are unrelated: ${OVERLAP_ONLY}`,
              closeness: closeness(1, 0, ID_LIKE.test(child.column), share(childDistinct, parentDistinct)),
            });
          continue;
        }
        const covers = childDistinct === parentDistinct && parentDistinct >= 2;
        const certain = score === 2 || covers;
        const oneToOne = ownKey(table, child) ? `; 1:1 (${child.column} is ${table.name}'s key too)` : '';
        const evidence =
          score === 2
            ? `${how}; ${values}${oneToOne}`
            : covers
              ? `${how}; ${values} (every one used)`
              : `${how}; ${values}; confirm it`;
        const close = closeness(1, score, false, share(childDistinct, parentDistinct));
        candidates.push({ rel: { ...base, certain, evidence }, score, parent: p.column, closeness: close });
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
            closeness: other.closeness,
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
  // The closest calls first, across every table (the sort is stable: ties stay in table order).
  rejected.sort((a, b) => b.closeness - a.closeness);
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
    const [a, b] = [...new Set(pointing)];
    if (a === undefined || b === undefined) continue;
    const pair = new Set([a, b]);
    if (table.file.pairs.some((p) => p.columns.every((f) => pair.has(columnOf(table, f)?.column ?? ''))))
      continue;
    table.keyEvidence += `; (${a}, ${b}) point at other tables and are never null: a link table? that pair was not checked (init checks pairs of id-like names, …_id, …_code, …_key, …_no, and of the first or an id-like column with a sequence-like one, …_sequence, ordering, line_no, …): if each pair is unique, make it the primary key by hand`;
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

/** The share of a child's distinct pairs the parent key holds. */
function foundPairs(seen: DistinctPairs, match: PairMatch, parent: CompositeParent): number {
  return share(seen.size - seen.missingFrom(parent.seen, match.crossed, 0).count, seen.size);
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
  closeness: number;
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
  const reject = (reason: string, closeness: number) => {
    rejected.push({ ...base, reason, closeness });
    return undefined;
  };
  if (!pair.seen)
    return match.score > 0
      ? reject(
          `${match.how}, but ${FULL_PAIRS}: containment not checked`,
          closeness(0.5, match.score, false, 0),
        )
      : undefined;
  const missing = missingPairs(pair.seen, match, parent);
  if (missing !== undefined)
    return match.score > 0
      ? reject(
          `${match.how}, but pairs are missing from ${parentName} (${missing})`,
          closeness(foundPairs(pair.seen, match, parent), match.score, false, 0),
        )
      : undefined;
  const values = `${count(pair.seen.size, 'distinct pair')}, all among the ${parent.seen.size} of ${parentName}`;
  const used = share(pair.seen.size, parent.seen.size);
  if (match.score === 0)
    return pair.seen.size >= MIN_OVERLAP
      ? reject(`${values}, but the names are unrelated: ${OVERLAP_ONLY}`, closeness(1, 0, true, used))
      : undefined;
  const covers = pair.seen.size === parent.seen.size && parent.seen.size >= 2;
  const certain = match.score === 2 || covers;
  const evidence =
    match.score === 2
      ? `${match.how}; ${values}`
      : `${match.how}; ${values}${covers ? ' (every one used)' : '; confirm it'}`;
  return {
    rel: { ...base, certain, evidence },
    score: match.score,
    match,
    closeness: closeness(1, match.score, false, used),
  };
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
      // A row's place among its parent's (`stop_sequence`) points nowhere.
      if (pair.columns.some((f) => SEQUENCE_LIKE.test(columnOf(table, f)?.column ?? ''))) continue;
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
          closeness: o.closeness,
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
