import type { z } from 'zod';

/** A dataset's row schema: one zod object whose keys are the file's field names. */
export type RowSchema = z.ZodObject;

export type Format = 'csv' | 'ndjson' | 'parquet';
export type WriteMode = 'insert' | 'upsert';

export interface DatasetDefinition<S extends RowSchema = RowSchema> {
  /** Unique name; also the default folder under `incoming/`. */
  name: string;
  /** S3 key prefix that routes a file to this dataset. Default: `incoming/<name>/`. */
  prefix?: string;
  format: Format;
  /** Row schema. CSV values arrive as strings: use z.coerce.number(), z.coerce.date(), z.stringbool(). */
  schema: S;
  /** Target table, optionally schema-qualified (`sales.orders`). Give either `table` or `targets`. */
  table?: string;
  /**
   * Several tables written from one record (a flat row or a nested document), in one transaction,
   * parents before children. The first target is the record's own table: the file's inserted and
   * updated counts are its rows. Instead of `table`/`columns`/`key`/`mode`.
   */
  targets?: TargetDefinition[];
  /**
   * (with `targets`) How long a row whose parent is not there yet waits for it, retried with backoff,
   * before it becomes a reject naming the missing key. Default 3600.
   */
  orphanWaitSeconds?: number;
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
  /** A gzip file that decompresses to more than this fails (a guard against decompression bombs). */
  maxExpandedBytes?: number;
  /** A gzip file that expands more than this many times its compressed size fails, as soon as that shows. */
  maxExpansionRatio?: number;
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

/** `upsert` on the natural key (update in place), `insert` (a duplicate key is a reject), `insert-ignore` (keep the existing row). */
export type TargetMode = 'upsert' | 'insert' | 'insert-ignore';

/**
 * Where a value comes from: a dotted path into the record (or into the current `each` element).
 * `/a.b` starts at the record's root, each leading `../` goes up one `each` level, `.` is the element itself.
 */
export type ValuePath = string;

/** A foreign key stored as the parent's surrogate id while the file names the parent by its natural key. */
export interface ReferenceDefinition {
  /** Parent table (optionally schema-qualified); it needs a unique index on the `key` columns. */
  table: string;
  /** Parent natural-key column → path of its value. */
  key: Record<string, ValuePath>;
  /** The parent's surrogate key column, stored in the referencing column. Default `id`. */
  column?: string;
}

export interface TargetDefinition {
  table: string;
  /** Nested arrays whose elements become this table's rows: `lines[]`, `lines[].product.categories[]`. Absent: one row per record. */
  each?: string;
  /** Column → path of its value. */
  columns?: Record<string, ValuePath>;
  /** Referencing column → the parent row, by natural key, resolved set-based inside the insert statement. */
  references?: Record<string, ReferenceDefinition>;
  /** The natural key: columns (data or referencing) of a unique index; the conflict target of upserts. */
  key: string[];
  /** Default `upsert`. */
  mode?: TargetMode;
}

/** A resolved reference. */
export interface Reference {
  column: string;
  table: string;
  /** The parent's surrogate key column. */
  surrogate: string;
  keyColumns: string[];
  keyPaths: ValuePath[];
  /** The table references itself (category → parent category). */
  self: boolean;
}

/** A resolved target: what the relational writer works with. */
export interface Target {
  table: string;
  each?: string;
  columns: string[];
  paths: ValuePath[];
  references: Reference[];
  key: string[];
  mode: TargetMode;
}

export const DEFAULT_ORPHAN_WAIT_SECONDS = 3600;

/**
 * Orders targets parents first (references between targets of the dataset; a self-reference is no
 * edge). Returns the declared indexes in write order, or the tables on a cycle.
 */
export function orderTargets(targets: readonly { table: string; references: { table: string }[] }[]): {
  order: number[];
  cycle?: string[];
} {
  const order: number[] = [];
  const state = new Map<number, 'visiting' | 'done'>();
  const indexOf = (table: string) => targets.findIndex((t) => t.table === table);
  let cycle: string[] | undefined;
  const visit = (i: number, path: number[]): void => {
    if (cycle || state.get(i) === 'done') return;
    if (state.get(i) === 'visiting') {
      cycle = [...path.slice(path.indexOf(i)), i].map((j) => targets[j]?.table ?? '?');
      return;
    }
    state.set(i, 'visiting');
    for (const r of targets[i]?.references ?? []) {
      const parent = indexOf(r.table);
      if (parent >= 0 && parent !== i) visit(parent, [...path, i]);
    }
    state.set(i, 'done');
    order.push(i);
  };
  targets.forEach((_, i) => {
    visit(i, []);
  });
  return cycle ? { order: targets.map((_, i) => i), cycle } : { order };
}

function resolveTarget(def: TargetDefinition): Target {
  const columns = Object.entries(def.columns ?? {});
  return {
    table: def.table,
    each: def.each,
    columns: columns.map(([c]) => c),
    paths: columns.map(([, p]) => p),
    references: Object.entries(def.references ?? {}).map(([column, r]) => ({
      column,
      table: r.table,
      surrogate: r.column ?? 'id',
      keyColumns: Object.keys(r.key),
      keyPaths: Object.values(r.key),
      self: r.table === def.table,
    })),
    key: def.key,
    mode: def.mode ?? 'upsert',
  };
}

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
  maxExpandedBytes: number;
  maxExpansionRatio: number;
  publish: Publish;
  onNewVersion: 'append' | 'replace';
  sourceColumn?: string;
  maxRejects?: { count: number } | { percent: number };
  checks: { minRows: number; unique: string[] };
  /** Multi-table datasets: the targets in write order (parents first). `table` is then the first declared target's. */
  targets?: Target[];
  /** Of `targets`, the record's own table (the first declared): the file's inserted/updated counts. */
  countedTable?: string;
  /** Multi-table datasets: set when the declared references between targets form a cycle (a config error). */
  targetCycle?: string[];
  orphanWaitSeconds: number;
}

export const DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024;
export const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024;
/**
 * The split step expands a gzip file, plans its chunks and uploads the expanded copy in one streaming
 * pass, and a load worker may have to re-make the copy: both within their Lambda's time (split 5 min,
 * load 3 min, 1 GB of memory, i.e. 0.58 vCPU). One core of the (busy) 2-core machine here does
 * gunzip + chunk planning at 45–135 MB/s; a 1 GB Lambda has about half a core, and the upload shares
 * it: ~40 MB/s, so 4 GiB takes about 110 s, leaving room in both timeouts. Memory does not depend on
 * it: the expansion streams (measured: a 911 MB expansion left the split process's RSS at 184 MB).
 */
export const DEFAULT_MAX_EXPANDED_BYTES = 4 * 1024 ** 3;
/**
 * Real CSV and NDJSON compress 3–25× with gzip (measured: 4× for the bench's mixed columns, 16× for
 * rows of an incrementing id and constant values, 25× for such NDJSON); deflate cannot go past ~1030×,
 * and bombs (zeros, one line repeated) sit at 300–1030×. 100× leaves four times the most repetitive
 * real data's ratio, and stops a bomb after 64 MiB of output instead of at maxExpandedBytes.
 */
export const DEFAULT_MAX_EXPANSION_RATIO = 100;

/** Declares a dataset; the identity function that lets TypeScript check `columns` and `key` against the schema. */
export function defineDataset<S extends RowSchema>(definition: DatasetDefinition<S>): DatasetDefinition<S> {
  return definition;
}

export function resolveDataset(def: DatasetDefinition): Dataset {
  const fields = Object.keys(def.schema.shape);
  const overrides: Record<string, string | undefined> = def.columns ?? {};
  const columnOf = Object.fromEntries(fields.map((f) => [f, overrides[f] ?? f]));
  const declared = def.targets?.map(resolveTarget);
  const ordered = declared ? orderTargets(declared) : undefined;
  return {
    name: def.name,
    prefix: def.prefix ?? `incoming/${def.name}/`,
    format: def.format,
    schema: def.schema,
    table: def.table ?? def.targets?.[0]?.table ?? '',
    fields,
    columnOf,
    key: def.key ?? [],
    mode: def.mode ?? 'insert',
    chunkBytes: def.chunkBytes ?? DEFAULT_CHUNK_BYTES,
    nullValues: new Set(def.nullValues ?? ['']),
    maxRecordBytes: def.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES,
    delimiter: def.delimiter ?? ',',
    maxExpandedBytes: def.maxExpandedBytes ?? DEFAULT_MAX_EXPANDED_BYTES,
    maxExpansionRatio: def.maxExpansionRatio ?? DEFAULT_MAX_EXPANSION_RATIO,
    publish: def.publish ?? 'chunk',
    onNewVersion: def.onNewVersion ?? 'append',
    sourceColumn: def.sourceColumn,
    maxRejects: parseMaxRejects(def.maxRejects),
    checks: { minRows: def.checks?.minRows ?? 0, unique: def.checks?.unique ?? [] },
    orphanWaitSeconds: def.orphanWaitSeconds ?? DEFAULT_ORPHAN_WAIT_SECONDS,
    ...(declared && ordered
      ? {
          targets: ordered.order.map((i) => declared[i] as Target),
          countedTable: declared[0]?.table,
          ...(ordered.cycle ? { targetCycle: ordered.cycle } : {}),
        }
      : {}),
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

/** Which schema fields a file must carry: those that do not accept a missing value. */
export function requiredFields(dataset: Dataset): string[] {
  return dataset.fields.filter((f) => !dataset.schema.shape[f]?.safeParse(undefined).success);
}
