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
export type StoredForeignKey = Pick<Relationship, 'table' | 'columns' | 'parentTable' | 'parentColumns'>;

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

export const storedForeignKey = (r: StoredForeignKey): StoredForeignKey => ({
  table: r.table,
  columns: r.columns,
  parentTable: r.parentTable,
  parentColumns: r.parentColumns,
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
  if (old.name === 'timestamp' && seen.name === 'date') return old;
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
