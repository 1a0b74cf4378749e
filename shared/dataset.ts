import type { z } from 'zod';

/** A dataset's row schema: one zod object whose keys are the file's field names. */
export type RowSchema = z.ZodObject;

export type Format = 'csv' | 'ndjson';
export type WriteMode = 'insert' | 'upsert';

export interface DatasetDefinition<S extends RowSchema = RowSchema> {
  /** Unique name; also the default folder under `incoming/`. */
  name: string;
  /** S3 key prefix that routes a file to this dataset. Default: `incoming/<name>/`. */
  prefix?: string;
  format: Format;
  /** Row schema. CSV values arrive as strings: use z.coerce.number(), z.coerce.date(), z.stringbool(). */
  schema: S;
  /** Target table, optionally schema-qualified (`sales.orders`). */
  table: string;
  /** Field → column name, where they differ. Unlisted fields keep their name. */
  columns?: Partial<Record<keyof z.output<S> & string, string>>;
  /** Fields forming the natural key; required for `upsert`. */
  key?: (keyof z.output<S> & string)[];
  /** `insert` appends rows; `upsert` inserts or updates on `key`. */
  mode?: WriteMode;
  /** Target size of one chunk of the file, in bytes. */
  chunkBytes?: number;
  /** Raw values read as "no value" (they reach the schema as `undefined`). Default `['']`. */
  nullValues?: string[];
  /** A single record longer than this is rejected without being read into memory. */
  maxRecordBytes?: number;
  /** CSV field delimiter. Default `,`. */
  delimiter?: string;
  /**
   * `chunk` (default): each chunk's rows are visible as soon as it commits. `file`: chunks load into a
   * staging table and the file's rows become visible together, in the transaction of its last chunk;
   * a file that fails its checks leaves nothing behind.
   */
  publish?: Publish;
  /** A new version of an already loaded key: `append` its rows, or `replace` the previous version's rows. */
  onNewVersion?: 'append' | 'replace';
  /** Target column (bigint) that stores each row's source file id; needed by `replace`. */
  sourceColumn?: string;
  /** Data-quality gate: more rejected rows than this (a count, or a percent of the rows read) fails the whole file. */
  maxRejects?: number | `${number}%`;
  /** File-level checks, run before the file is published. */
  checks?: { minRows?: number; unique?: (keyof z.output<S> & string)[] };
}

export type Publish = 'chunk' | 'file';

/** A dataset with every default applied: what the services work with. */
export interface Dataset {
  name: string;
  prefix: string;
  format: Format;
  schema: RowSchema;
  table: string;
  fields: string[];
  columnOf: Record<string, string>;
  key: string[];
  mode: WriteMode;
  chunkBytes: number;
  nullValues: ReadonlySet<string>;
  maxRecordBytes: number;
  delimiter: string;
  publish: Publish;
  onNewVersion: 'append' | 'replace';
  sourceColumn?: string;
  maxRejects?: { count: number } | { percent: number };
  checks: { minRows: number; unique: string[] };
}

export const DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024;
export const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024;

/** Declares a dataset; the identity function that lets TypeScript check `columns` and `key` against the schema. */
export function defineDataset<S extends RowSchema>(definition: DatasetDefinition<S>): DatasetDefinition<S> {
  return definition;
}

export function resolveDataset(def: DatasetDefinition): Dataset {
  const fields = Object.keys(def.schema.shape);
  const overrides: Record<string, string | undefined> = def.columns ?? {};
  const columnOf = Object.fromEntries(fields.map((f) => [f, overrides[f] ?? f]));
  return {
    name: def.name,
    prefix: def.prefix ?? `incoming/${def.name}/`,
    format: def.format,
    schema: def.schema,
    table: def.table,
    fields,
    columnOf,
    key: def.key ?? [],
    mode: def.mode ?? 'insert',
    chunkBytes: def.chunkBytes ?? DEFAULT_CHUNK_BYTES,
    nullValues: new Set(def.nullValues ?? ['']),
    maxRecordBytes: def.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES,
    delimiter: def.delimiter ?? ',',
    publish: def.publish ?? 'chunk',
    onNewVersion: def.onNewVersion ?? 'append',
    sourceColumn: def.sourceColumn,
    maxRejects: parseMaxRejects(def.maxRejects),
    checks: { minRows: def.checks?.minRows ?? 0, unique: def.checks?.unique ?? [] },
  };
}

function parseMaxRejects(value: DatasetDefinition['maxRejects']): Dataset['maxRejects'] {
  if (value === undefined) return undefined;
  if (typeof value === 'number') return { count: value };
  return { percent: Number(value.slice(0, -1)) };
}

/** The dataset whose prefix is the longest one the key starts with. */
export function datasetForKey(datasets: readonly Dataset[], key: string): Dataset | undefined {
  let best: Dataset | undefined;
  for (const d of datasets) {
    if (key.startsWith(d.prefix) && (!best || d.prefix.length > best.prefix.length)) best = d;
  }
  return best;
}
