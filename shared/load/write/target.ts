import type { Format, TableDataset, WriteMode } from '../../config/dataset.ts';

/** A value the load adds to a row after its fields: the id of the file it came from, or its line. */
export type Added = 'file' | 'line';

/**
 * Where the row writer puts a dataset's rows: a table, its columns in the order of a row's values, and
 * what an existing key does. What the load adds to every row (its file id, its line) is more columns
 * after the fields' ones, filled as `added` says.
 */
export interface WriteTarget {
  /** The dataset whose rows these are (named in errors). */
  dataset: string;
  table: string;
  /** The columns, in the order of a row's values: the dataset's fields', then the added ones. */
  columns: string[];
  /** Per column, what a reject calls its value: the field's name (an added column's own name). */
  fields: string[];
  /** What fills the columns after the fields', in order. */
  added: Added[];
  /** Columns of the key an upsert's conflict is on. */
  key: string[];
  mode: WriteMode;
  /** The zone zoneless timestamps are read in (the dataset's `timeZone`). */
  timeZone: string;
  /** The files' format: an NDJSON string for a json/jsonb column is a JSON string (see `json-strings.ts`). */
  format: Format;
}

/**
 * The write target of a single-table dataset: the one place its table, columns, key and mode are read
 * for writing. With a `sourceColumn`, every row carries the id of the file it came from (what
 * `replace` deletes by).
 */
export function writeTarget(dataset: TableDataset): WriteTarget {
  const target: WriteTarget = {
    dataset: dataset.name,
    table: dataset.table,
    columns: dataset.fields.map((f) => dataset.columnOf[f] as string),
    fields: dataset.fields,
    added: [],
    key: dataset.key.map((f) => dataset.columnOf[f] as string),
    mode: dataset.mode,
    timeZone: dataset.timeZone,
    format: dataset.format,
  };
  return dataset.sourceColumn ? withAdded(target, dataset.sourceColumn, 'file') : target;
}

/** The target with one more column after the others, filled with what the load adds. */
export function withAdded(target: WriteTarget, column: string, value: Added): WriteTarget {
  return {
    ...target,
    columns: [...target.columns, column],
    fields: [...target.fields, column],
    added: [...target.added, value],
  };
}
