import type { Kysely } from 'kysely';
import Papa from 'papaparse';
import type { Dataset } from '../config/dataset.ts';
import { type ParsedRecord, type RecordCursor, wellQuotedRecord } from '../formats/parsing.ts';
import type { Reject } from '../ledger/ledger.ts';
import { hasOpenKeyedRejects, type LoadedKey } from '../ledger/rejects.ts';
import type { Database } from '../ledger/schema.ts';
import { valueAt } from './write/relations.ts';

/**
 * A record's key as a reject stores it (`row_key`) and as a newer row is matched against it: the key
 * fields' values as read from the file, before the schema (a CSV field's text, a JSON value), as a JSON
 * array of texts. Both sides are read the same way, so `007` and `7` are different keys, as they are
 * different text in the files.
 */

/**
 * Where the dataset's key is in a record (paths from its root), or undefined when newer rows cannot
 * resolve its rejects: no key; a multi-table dataset whose counted table has none, or one row per element
 * of a nested array; `publish: 'file'`, whose rows land with their file, not with the chunk that reads them.
 */
export function keyPaths(dataset: Dataset): string[] | undefined {
  if (dataset.publish === 'file') return undefined;
  if (dataset.kind === 'table') return dataset.key.length > 0 ? dataset.key : undefined;
  const counted = dataset.targets.find((t) => t.table === dataset.countedTable);
  if (!counted || counted.each || counted.key.length === 0) return undefined;
  const paths: string[] = [];
  for (const column of counted.key) {
    const i = counted.columns.indexOf(column);
    // A key column that references a parent holds the parent's id: the file names it by the parent's key.
    const reference = counted.references.find((r) => r.column === column);
    if (i >= 0) paths.push(counted.paths[i] as string);
    else if (reference) paths.push(...reference.keyPaths);
    else return undefined;
  }
  return paths;
}

/** One key field's value as text; undefined for no value (a key with one has no key). */
function keyPart(value: unknown, nullValues: ReadonlySet<string>): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return nullValues.has(value) ? undefined : value;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString();
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  } catch {
    return undefined;
  }
}

/** The key of a record's values, or null when a key field has no value. */
export function keyText(values: readonly unknown[], nullValues: ReadonlySet<string>): string | null {
  const parts: string[] = [];
  for (const v of values) {
    const part = keyPart(v, nullValues);
    if (part === undefined) return null;
    parts.push(part);
  }
  return JSON.stringify(parts);
}

const keyOfFields = (fields: Record<string, unknown>, paths: string[], nulls: ReadonlySet<string>) =>
  keyText(
    paths.map((p) => valueAt([fields], p)),
    nulls,
  );

/** The key of the record a cursor is on: CSV fields by their header position, others by path. */
export function cursorKeyReader(
  paths: string[],
  columns: string[] | undefined,
  nullValues: ReadonlySet<string>,
): (cursor: RecordCursor) => string | null {
  if (columns) {
    const at = paths.map((p) => columns.lastIndexOf(p));
    return (cursor) => {
      const values = cursor.values;
      if (!values) return null;
      return keyText(
        at.map((i) => (i < 0 ? undefined : values[i])),
        nullValues,
      );
    };
  }
  return (cursor) => (cursor.fields ? keyOfFields(cursor.fields, paths, nullValues) : null);
}

/**
 * The fields of a rejected line, read leniently: a CSV line with too few or too many fields still has
 * its fields by header position (the key usually comes first); undefined when the line cannot be read at
 * all (malformed CSV or JSON, or `unreadable`: its stored text is not the original).
 */
function rejectFields(
  dataset: Dataset,
  columns: string[] | undefined,
  reject: Reject,
): Record<string, unknown> | undefined {
  if (reject.kind === 'unreadable') return undefined;
  if (dataset.format !== 'csv') {
    try {
      const value: unknown = JSON.parse(reject.raw);
      return value !== null && typeof value === 'object' && !Array.isArray(value)
        ? (value as Record<string, unknown>)
        : undefined;
    } catch {
      return undefined;
    }
  }
  const values = csvFields(reject.raw, dataset);
  if (!values || !columns) return undefined;
  const fields: Record<string, unknown> = {};
  for (let i = 0; i < Math.min(columns.length, values.length); i++) fields[columns[i] as string] = values[i];
  return fields;
}

/** A CSV record's fields, whatever their count; undefined when it is not well formed. */
function csvFields(raw: string, { delimiter, quote }: Dataset): string[] | undefined {
  if (quote === false || !raw.includes('"')) return raw.split(delimiter);
  // Read as the cursor reads a well-quoted record (the record, then its newline), without papaparse's
  // set-up per call: most of the time of a chunk of rejects with quoted fields went there.
  if (delimiter.length === 1 && !Papa.BAD_DELIMITERS.includes(delimiter)) {
    const text = `${raw}\n`;
    const values: string[] = [];
    if (wellQuotedRecord(text, 0, delimiter.charCodeAt(0), values) === text.length) return values;
  }
  const parsed = Papa.parse<string[]>(raw, { delimiter, newline: '\n' });
  return parsed.errors.length === 0 && parsed.data.length === 1 ? parsed.data[0] : undefined;
}

/** The rejects with their record's key, for a keyed dataset (`keyPaths`); others as they are. */
export function withRowKeys(dataset: Dataset, columns: string[] | undefined, rejects: Reject[]): Reject[] {
  const paths = keyPaths(dataset);
  if (!paths || rejects.length === 0) return rejects;
  return rejects.map((r) => {
    const fields = rejectFields(dataset, columns, r);
    const rowKey = fields ? keyOfFields(fields, paths, dataset.nullValues) : null;
    return rowKey === null ? r : { ...r, rowKey };
  });
}

/** The keys of the records whose rows loaded: all but the lines that are rejected or wait for a parent. */
export function recordKeys(
  dataset: Dataset,
  records: ParsedRecord[],
  notLoaded: ReadonlySet<number>,
): LoadedKey[] {
  const paths = keyPaths(dataset);
  if (!paths) return [];
  const keys: LoadedKey[] = [];
  for (const r of records) {
    if (!r.fields || r.error || notLoaded.has(r.line)) continue;
    const rowKey = keyOfFields(r.fields, paths, dataset.nullValues);
    if (rowKey !== null) keys.push({ rowKey, line: r.line });
  }
  return keys;
}

/**
 * The keys of the rows a streamed chunk hands its writer, noted as each row is read. A writer may read
 * the rows more than once (a fallback starts a fresh pass): each pass starts the list again.
 */
export class PassKeys {
  #keys: LoadedKey[] = [];
  readonly #read: (cursor: RecordCursor) => string | null;

  constructor(read: (cursor: RecordCursor) => string | null) {
    this.#read = read;
  }

  restart(): void {
    this.#keys = [];
  }

  note(cursor: RecordCursor): void {
    const rowKey = this.#read(cursor);
    if (rowKey !== null) this.#keys.push({ rowKey, line: cursor.line });
  }

  /** The keys of the last pass's rows that loaded: those the writer did not reject. */
  loaded(rejects: readonly Reject[]): LoadedKey[] {
    if (rejects.length === 0) return this.#keys;
    const rejected = new Set(rejects.map((r) => r.line));
    return this.#keys.filter((k) => !rejected.has(k.line));
  }
}

/**
 * Whether a chunk of the dataset may resolve rejects with the rows it loads: the dataset is keyed and has
 * open keyed rejects (one indexed probe). Most chunks find none, and their rows are not looked at.
 */
export async function resolvesRejects(db: Kysely<Database>, dataset: Dataset): Promise<boolean> {
  return keyPaths(dataset) !== undefined && (await hasOpenKeyedRejects(db, dataset.name));
}

/** The collector of a streamed chunk's keys when its rows may resolve rejects (`resolvesRejects`), else undefined. */
export async function passKeys(
  db: Kysely<Database>,
  dataset: Dataset,
  columns: string[] | undefined,
): Promise<PassKeys | undefined> {
  const paths = keyPaths(dataset);
  if (!paths || !(await resolvesRejects(db, dataset))) return undefined;
  return new PassKeys(
    cursorKeyReader(paths, dataset.format === 'csv' ? columns : undefined, dataset.nullValues),
  );
}
