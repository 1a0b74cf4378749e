import { qualified } from './codegen.ts';
import { type ColumnType, sqlType } from './column-type.ts';
import { type Call, chain, quote } from './layout.ts';
import type { Relationship } from './relationships.ts';
import type { InferredColumn, InferredTable } from './tables.ts';

/** What `init` wrote last time, per table: the columns the database has (init-state.json in the output folder). */
export interface StoredColumn {
  field: string;
  column: string;
  type: ColumnType;
  notNull: boolean;
}
/** A foreign key `init` wrote (certain, or commented out for the user to confirm). */
export type StoredForeignKey = Pick<Relationship, 'table' | 'columns' | 'parentTable' | 'parentColumns'> & {
  /** False when written commented out, for the user to confirm (absent in states from before). */
  certain?: boolean;
};

export interface InitState {
  schema?: string;
  tables: Record<string, StoredColumn[]>;
  /** The foreign keys written so far (absent in a state from before they were recorded). */
  foreignKeys?: StoredForeignKey[];
}

/** The same foreign key: same child columns, same parent columns. */
export const sameForeignKey = (a: StoredForeignKey, b: StoredForeignKey): boolean =>
  a.table === b.table &&
  a.parentTable === b.parentTable &&
  a.columns.join() === b.columns.join() &&
  a.parentColumns.join() === b.parentColumns.join();

export const storedForeignKey = (r: Relationship): StoredForeignKey => ({
  table: r.table,
  columns: r.columns,
  parentTable: r.parentTable,
  parentColumns: r.parentColumns,
  certain: r.certain,
});

export const stored = (c: InferredColumn): StoredColumn => ({
  field: c.field,
  column: c.column,
  type: c.type,
  notNull: c.notNull,
});

const INT_RANK: Record<string, number> = { smallint: 1, integer: 2, bigint: 3 };
const INT_DIGITS: Record<string, number> = { smallint: 5, integer: 10, bigint: 19 };

/** The type that holds the values of both (never narrower than `old`); text when they have nothing in common. */
export function mergeType(old: ColumnType, seen: ColumnType): ColumnType {
  // Dates into a timestamp column: its field must read them, as midnight.
  if (
    old.name === 'timestamp' &&
    !old.dateOnly &&
    (seen.name === 'date' || (seen.name === 'timestamp' && seen.dateOnly))
  )
    return { name: 'timestamp', dateOnly: 'midnight' };
  if (old.name === 'timestamp' && seen.name === 'date') return old;
  // The same column: the field reads the dates as the files now given write them.
  if (old.name === 'date' && seen.name === 'date') return seen;
  if (sqlType(old) === sqlType(seen)) return old;
  const ro = INT_RANK[old.name];
  const rs = INT_RANK[seen.name];
  if (ro !== undefined && rs !== undefined) return ro >= rs ? old : seen;
  const digits = (t: ColumnType) =>
    t.name === 'numeric'
      ? { whole: t.precision - t.scale, scale: t.scale }
      : { whole: INT_DIGITS[t.name] ?? -1, scale: 0 };
  const a = digits(old);
  const b = digits(seen);
  if (a.whole >= 0 && b.whole >= 0) {
    const whole = Math.max(a.whole, b.whole);
    const scale = Math.max(a.scale, b.scale);
    return { name: 'numeric', precision: whole + scale, scale };
  }
  if (old.name === 'text' || old.name === 'jsonb') return old;
  return { name: 'text' };
}

export interface TableChange {
  table: string;
  /** The dataset's columns after the change: the old ones (none dropped) and the new. */
  columns: StoredColumn[];
  alters: string[];
  messages: string[];
}

/** The changes `init` makes to a table it generated before: new columns, widened types, new nulls. */
export function diffTable(
  table: InferredTable,
  old: StoredColumn[],
  schema: string | undefined,
): TableChange {
  const name = qualified(schema, table.name);
  const seen = new Map(table.columns.map((c) => [c.column, c]));
  const alters: string[] = [];
  const messages: string[] = [];
  const alter = (call: Call) =>
    alters.push(
      ...chain(2, 'await db.schema', [
        { name: 'alterTable', args: [quote(name)] },
        call,
        { name: 'execute', args: [] },
      ]),
    );
  const alterColumn = (column: string, fn: string) =>
    alter({ name: 'alterColumn', args: [quote(column), { fn }] });
  const columns = old.map((o): StoredColumn => {
    const now = seen.get(o.column);
    if (!now) {
      messages.push(
        `${table.name}.${o.column}: not in the file; kept${o.notNull ? ', now nullable' : ''} (init never drops a column)`,
      );
      if (o.notNull) alterColumn(o.column, '(c) => c.dropNotNull()');
      return { ...o, notNull: false };
    }
    const type = mergeType(o.type, now.type);
    if (sqlType(type) !== sqlType(o.type)) {
      messages.push(
        `${table.name}.${o.column}: widened ${sqlType(o.type)} → ${sqlType(type)} (${now.evidence})`,
      );
      alterColumn(o.column, `(c) => c.setDataType(${quote(sqlType(type))})`);
    }
    const notNull = o.notNull && now.notNull;
    if (o.notNull && !notNull) {
      messages.push(`${table.name}.${o.column}: now has nulls (${now.profile.nulls}): NOT NULL dropped`);
      alterColumn(o.column, '(c) => c.dropNotNull()');
    }
    return { ...o, type, notNull };
  });
  const known = new Set(old.map((o) => o.column));
  for (const c of table.columns.filter((x) => !known.has(x.column))) {
    messages.push(
      `${table.name}.${c.column}: new column, ${sqlType(c.type)} (nullable: the rows already loaded have none)`,
    );
    alter({ name: 'addColumn', args: [quote(c.column), quote(sqlType(c.type))] });
    columns.push({ ...stored(c), notNull: false });
  }
  return { table: table.name, columns, alters, messages };
}

/** The columns of a foreign key's child and parent, pair by pair. */
const pairs = (fk: StoredForeignKey) =>
  fk.columns.map((column, i) => ({ column, parentColumn: fk.parentColumns[i] as string }));

export interface KeyWidening {
  /** Constraints to drop before any column changes type, and to add again after. */
  drops: string[];
  readds: string[];
  /** `alter column … type` of the children, between the two. */
  alters: string[];
  messages: string[];
}

/**
 * A foreign key's child columns take their parent's new type: Postgres compares smallint with integer,
 * not text with smallint, and cannot re-check a constraint across such a change. So every constraint
 * on a column that changes type is dropped first and added again after both sides have changed.
 * `columns` holds every table's columns after the change, and is updated for the children.
 */
export function widenForeignKeys(
  foreignKeys: StoredForeignKey[],
  before: Record<string, StoredColumn[]>,
  columns: Record<string, StoredColumn[]>,
  schema: string | undefined,
): KeyWidening {
  const out: KeyWidening = { drops: [], readds: [], alters: [], messages: [] };
  const find = (cols: Record<string, StoredColumn[]>, table: string, column: string) =>
    cols[table]?.find((c) => c.column === column);
  for (const fk of foreignKeys) {
    let changed = false;
    for (const { column, parentColumn } of pairs(fk)) {
      const parent = find(columns, fk.parentTable, parentColumn);
      const child = find(columns, fk.table, column);
      if (!parent || !child) continue;
      if (sqlType(parent.type) !== sqlType(child.type) && mergeType(child.type, parent.type) !== child.type) {
        out.messages.push(
          `${fk.table}.${column}: widened ${sqlType(child.type)} → ${sqlType(parent.type)} with its parent ${fk.parentTable}.${parentColumn} (foreign key)`,
        );
        child.type = parent.type;
        out.alters.push(...alterStatement(qualified(schema, fk.table), column, parent.type));
      }
      const was = (t: string, c: string) => find(before, t, c)?.type;
      const same = (t: string, c: string, now: ColumnType) => {
        const old = was(t, c);
        return old === undefined || sqlType(old) === sqlType(now);
      };
      if (!same(fk.parentTable, parentColumn, parent.type) || !same(fk.table, column, child.type))
        changed = true;
    }
    if (changed) rebuild(fk, schema, out);
  }
  return out;
}

function alterStatement(table: string, column: string, type: ColumnType): string[] {
  return constraintStatement(table, {
    name: 'alterColumn',
    args: [quote(column), { fn: `(c) => c.setDataType(${quote(sqlType(type))})` }],
  });
}

function constraintStatement(table: string, call: Call, ifExists = false): string[] {
  return chain(2, 'await db.schema', [
    { name: 'alterTable', args: [quote(table)] },
    call,
    ...(ifExists ? [{ name: 'ifExists', args: [] }] : []),
    { name: 'execute', args: [] },
  ]);
}

/** Drops a foreign key (if there: it may be one written commented out) and adds it again, unless unconfirmed. */
function rebuild(fk: StoredForeignKey, schema: string | undefined, out: KeyWidening): void {
  const table = qualified(schema, fk.table);
  const constraint = `${fk.table}_${fk.columns.join('_')}_fkey`;
  out.drops.push(...constraintStatement(table, { name: 'dropConstraint', args: [quote(constraint)] }, true));
  const add = constraintStatement(table, {
    name: 'addForeignKeyConstraint',
    args: [
      quote(constraint),
      fk.columns.map(quote),
      quote(qualified(schema, fk.parentTable)),
      fk.parentColumns.map(quote),
    ],
  });
  if (fk.certain === false)
    out.readds.push(
      '  // Written to confirm before: uncomment if you kept it.',
      ...add.map((l) => `  //${l}`),
    );
  else out.readds.push(...add);
}
