import { z } from 'zod';
import { reservedPrefixProblem } from '../core/bucket-layout.ts';
import { ConfigError } from '../core/errors.ts';
import { snakeCase } from './column-names.ts';

/** A dataset's row schema: one zod object whose keys are the file's field names. */
export type RowSchema = z.ZodObject;

/**
 * Where a value comes from: a dotted path into the record (or into the current `each` element).
 * `/a.b` starts at the record's root, each leading `../` goes up one `each` level, `.` is the element itself.
 */
export type ValuePath = string;

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
export const DEFAULT_ORPHAN_WAIT_SECONDS = 3600;

// The dataset spec: every option a config may give, its shape, its default and the rules between
// options, in one zod schema. The definition types below are derived from it, and parsing a definition
// with it (`resolveDataset`, `resolveConfig`) yields the resolved `Dataset` the services work with.

const identifier = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/, 'a SQL identifier');
const column = z.string().regex(/^[A-Za-z_][A-Za-z0-9_$]*$/, 'a SQL column name');
const valuePath = z.string().min(1);

const formatSpec = z.enum(['csv', 'ndjson', 'parquet']);
const writeModeSpec = z.enum(['insert', 'upsert']);
const targetModeSpec = z.enum(['upsert', 'insert', 'insert-ignore']);
const publishSpec = z.enum(['chunk', 'file']);
const columnNamesSpec = z.enum(['as-is', 'snake_case']);
/** The one quote character dropload reads (RFC 4180's), or none. */
const quoteSpec = z.union([z.literal('"'), z.literal(false)]);

/** Whether Intl knows the zone by an IANA name (Intl also takes offsets like `+01:00`, which Postgres reads inverted). */
function isTimeZoneName(name: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(name)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}
const newVersionSpec = z.enum(['append', 'replace']);

export type Format = z.infer<typeof formatSpec>;
/** A CSV file's quote character, or `false` when it has no quoting. */
export type Quote = z.infer<typeof quoteSpec>;
export type WriteMode = z.infer<typeof writeModeSpec>;
/** `upsert` on the natural key (update in place), `insert` (a duplicate key is a reject), `insert-ignore` (keep the existing row). */
export type TargetMode = z.infer<typeof targetModeSpec>;
export type Publish = z.infer<typeof publishSpec>;

/** A foreign key stored as the parent's surrogate id while the file names the parent by its natural key. */
const referenceShape = {
  /** Parent table (optionally schema-qualified); it needs a unique index on the `key` columns. */
  table: identifier,
  /** Parent natural-key column → path of its value. */
  key: z.record(column, valuePath).refine((k) => Object.keys(k).length > 0, 'at least one key column'),
  /** The parent's surrogate key column, stored in the referencing column. Default `id`. */
  column: column.default('id'),
};
const referenceSpec = z.object(referenceShape);

const targetShape = {
  table: identifier,
  /** Nested arrays whose elements become this table's rows: `lines[]`, `lines[].product.categories[]`. Absent: one row per record. */
  each: z
    .string()
    .regex(
      /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*\[\](\.?[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*\[\])*$/,
      'a path of arrays like "lines[]" or "lines[].tags[]"',
    )
    .optional(),
  /** Column → path of its value. */
  columns: z.record(column, valuePath).default({}),
  /** Referencing column → the parent row, by natural key, resolved set-based inside the insert statement. */
  references: z.record(column, referenceSpec).default({}),
  /** The natural key: columns (data or referencing) of a unique index; the conflict target of upserts. */
  key: z.array(column).min(1, 'a natural key (the columns of a unique index)'),
  /** Default `upsert`. */
  mode: targetModeSpec.default('upsert'),
};
const targetSpec = z.object(targetShape);

/**
 * The input type of an object spec, named through its shape: a declaration file (the package's dist/)
 * then keeps each option's doc comment, which it drops from a type it writes out inline.
 */
type InputOf<Shape extends z.core.$ZodShape> = z.input<z.ZodObject<Shape>>;

export type ReferenceDefinition = InputOf<typeof referenceShape>;
export type TargetDefinition = InputOf<typeof targetShape>;

const PERCENT = /^\d+(\.\d+)?%$/;

// The options in the order they are validated (the first problem found is the one reported). The
// options of one kind of dataset (`table`, `columns`, `key`, `mode`, `sourceColumn`, `onNewVersion`; or
// `targets`, `orphanWaitSeconds`) have no zod default: whether they are given says which kind it is and
// is checked (`targetsProblem`, `datasetProblem`), so their defaults apply where that kind's dataset is
// built (`tableDataset`, `targetsDataset`).
const datasetShape = {
  /** Unique name; also the default folder under `incoming/`. */
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'lower-case letters, digits, _ and -'),
  /** S3 key prefix that routes a file to this dataset. Default: `incoming/<name>/`. */
  prefix: z.string().min(1).optional(),
  format: formatSpec,
  /** Row schema (typed by `DatasetDefinition`). */
  schema: z.custom<RowSchema>((v) => v instanceof z.ZodObject, 'a zod object schema (z.object({...}))'),
  /** Target table, optionally schema-qualified (`sales.orders`). Give either `table` or `targets`. */
  table: identifier.optional(),
  /**
   * Several tables written from one record (a flat row or a nested document), in one transaction,
   * parents before children. The first target is the record's own table: the file's inserted and
   * updated counts are its rows. Instead of `table`/`columns`/`key`/`mode`.
   */
  targets: z.array(targetSpec).min(1, 'at least one target').optional(),
  /**
   * How long a row whose parent is not there yet waits for it, retried with backoff, before it becomes
   * a reject naming the missing key. Default 3600.
   */
  orphanWaitSeconds: z.number().int().positive().optional(),
  /**
   * (with `table`) A row whose foreign key (read from the database) names a parent not there yet waits
   * for it (default true); false: the database refuses it and it is rejected at once. A `targets`
   * dataset always waits.
   */
  waitForParents: z.boolean().optional(),
  /** Field → column name (typed by `DatasetDefinition`). */
  columns: z.record(z.string(), identifier).optional(),
  /**
   * (with `table`) The column of a field `columns` does not name: `as-is` (default) its own name,
   * `snake_case` its name in snake_case (`customerID` → `customer_id`, see `snakeCase`).
   */
  columnNames: columnNamesSpec.optional(),
  /**
   * The IANA time zone (`Europe/Berlin`) in which `localTimestamp()` values without a zone are read.
   * Default `UTC`, whatever the machine's zone.
   */
  timeZone: z
    .string()
    .refine(isTimeZoneName, 'an IANA time zone name like "Europe/Berlin" or "UTC"')
    .default('UTC'),
  /** The natural key's fields (typed by `DatasetDefinition`). */
  key: z.array(z.string()).optional(),
  /** `insert` (default) appends rows; `upsert` inserts or updates on `key`. */
  mode: writeModeSpec.optional(),
  /** Target size of one chunk of the file, in bytes. */
  chunkBytes: z
    .number()
    .int()
    .min(64 * 1024)
    .default(DEFAULT_CHUNK_BYTES),
  /** Raw values read as "no value" (they reach the schema as `undefined`). */
  nullValues: z.array(z.string()).default(['']),
  /** A single record longer than this is rejected without being read into memory. */
  maxRecordBytes: z.number().int().positive().default(DEFAULT_MAX_RECORD_BYTES),
  /** CSV field delimiter. */
  delimiter: z.string().length(1).default(','),
  /**
   * CSV quote character, or `false`: the file has no quoting (a `"` is text wherever it stands), as in
   * Postgres's text format and IANA's TSV, and IMDb's files (`"Weird" Al`).
   */
  quote: quoteSpec.default('"'),
  /** A gzip file that decompresses to more than this fails (a guard against decompression bombs). */
  maxExpandedBytes: z.number().int().positive().default(DEFAULT_MAX_EXPANDED_BYTES),
  /** A gzip file that expands more than this many times its compressed size fails, as soon as that shows. */
  maxExpansionRatio: z.number().min(2).default(DEFAULT_MAX_EXPANSION_RATIO),
  /**
   * `chunk`: each chunk's rows are visible as soon as it commits. `file`: chunks load into a staging
   * table and the file's rows become visible together, in the transaction of its last chunk; a file
   * that fails its checks leaves nothing behind.
   */
  publish: publishSpec.default('chunk'),
  /** A new version of an already loaded key: `append` (default) its rows, or `replace` the previous version's rows. */
  onNewVersion: newVersionSpec.optional(),
  /** Target column (bigint) that stores each row's source file id; needed by `replace`. */
  sourceColumn: identifier.optional(),
  /** Data-quality gate: more rejected rows than this (a count, or a percent of the rows read) fails the whole file. */
  maxRejects: z
    .union([
      z.number().int().nonnegative(),
      // Typed as the percent the regex accepts (zod types any checked string as `string`); anything
      // else than a string stops here, so a wrong number is reported by the number branch alone.
      z
        .custom<`${number}%`>((v) => typeof v === 'string', { abort: true })
        .check(z.regex(PERCENT, 'a count or a percent like "5%"')),
    ])
    .optional(),
  /** File-level checks, run before the file is published (typed by `DatasetDefinition`). */
  checks: z
    .object({ minRows: z.number().int().nonnegative().default(0), unique: z.array(z.string()).default([]) })
    .prefault({}),
};
const datasetOptions = z.object(datasetShape);

/** A definition as the spec hands it on: shapes checked, common defaults applied. */
type DatasetOptions = z.output<typeof datasetOptions>;

/**
 * A dataset as a config declares it: the spec's input, with the settings that name fields typed by
 * the row schema `S`, so TypeScript refuses a `key`, `columns` or `checks.unique` entry it lacks.
 */
export type DatasetDefinition<S extends RowSchema = RowSchema> = Omit<
  InputOf<typeof datasetShape>,
  'schema' | 'columns' | 'key' | 'checks'
> & {
  /**
   * Row schema. CSV values arrive as strings: use the strict `integer()`, `decimal()`, `numeric()`,
   * `bigintText()`, `date()`, `timestamp()`, `localTimestamp()`, `boolean()`, enums
   * (`z.coerce.number()` reads a blank as 0).
   */
  schema: S;
  /** Field → column name, where they differ. Unlisted fields keep their name (in snake_case with `columnNames`). */
  columns?: Partial<Record<keyof z.output<S> & string, string>>;
  /** Fields forming the natural key; required for `upsert`. */
  key?: (keyof z.output<S> & string)[];
  /** File-level checks, run before the file is published. */
  checks?: Omit<NonNullable<InputOf<typeof datasetShape>['checks']>, 'unique'> & {
    unique?: (keyof z.output<S> & string)[];
  };
};

/** Declares a dataset; the identity function that lets TypeScript check `columns` and `key` against the schema. */
export function defineDataset<S extends RowSchema>(definition: DatasetDefinition<S>): DatasetDefinition<S> {
  return definition;
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

/** What every dataset has, whichever way it writes: its options as given or defaulted, and a few reshaped. */
interface DatasetCommon
  extends Pick<
    DatasetOptions,
    | 'name'
    | 'format'
    | 'schema'
    | 'chunkBytes'
    | 'maxRecordBytes'
    | 'delimiter'
    | 'quote'
    | 'maxExpandedBytes'
    | 'maxExpansionRatio'
    | 'publish'
    | 'checks'
    | 'timeZone'
  > {
  prefix: string;
  /** The schema's field names, in its order. */
  fields: string[];
  nullValues: ReadonlySet<string>;
  maxRejects?: { count: number } | { percent: number };
}

/** A dataset whose records are rows of one table. */
export interface TableDataset extends DatasetCommon {
  kind: 'table';
  table: string;
  /** Field → column, for every field. */
  columnOf: Record<string, string>;
  /** How `columnOf` names the columns `columns` does not give. */
  columnNames: z.infer<typeof columnNamesSpec>;
  key: string[];
  mode: WriteMode;
  onNewVersion: z.infer<typeof newVersionSpec>;
  sourceColumn?: string;
  /** Rows whose foreign key's parent is missing wait for it (`publish: 'chunk'`, no `sourceColumn`). */
  waitForParents: boolean;
  orphanWaitSeconds: number;
}

/** A dataset whose records write several tables (`targets`). */
export interface TargetsDataset extends DatasetCommon {
  kind: 'targets';
  /** The targets in write order (parents first). */
  targets: Target[];
  /** The record's own table (the first declared target): its key is the record's, which newer rows resolve rejects by. */
  countedTable: string;
  orphanWaitSeconds: number;
}

/** A dataset with every default applied: what the services work with. */
export type Dataset = TableDataset | TargetsDataset;

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

function resolveTarget(def: z.output<typeof targetSpec>): Target {
  const columns = Object.entries(def.columns);
  return {
    table: def.table,
    each: def.each,
    columns: columns.map(([c]) => c),
    paths: columns.map(([, p]) => p),
    references: Object.entries(def.references).map(([column, r]) => ({
      column,
      table: r.table,
      surrogate: r.column,
      keyColumns: Object.keys(r.key),
      keyPaths: Object.values(r.key),
      self: r.table === def.table,
    })),
    key: def.key,
    mode: def.mode,
  };
}

function prefixOf(def: DatasetOptions): string {
  return def.prefix ?? `incoming/${def.name}/`;
}

/** The first rule between the targets and the other options that a multi-table dataset breaks. */
function targetsProblem(def: DatasetOptions, declared: Target[]): string | undefined {
  if (def.table !== undefined) return 'give either table or targets, not both';
  for (const setting of ['columns', 'key', 'mode', 'sourceColumn', 'onNewVersion'] as const) {
    if (def[setting] !== undefined) return `${setting} belongs to each target when the dataset has targets`;
  }
  // Children may wait on another file's parents: a file cannot be all-or-nothing across that wait.
  if (def.publish === 'file') return 'targets need publish: "chunk"';
  const { cycle } = orderTargets(declared);
  if (cycle) return `targets reference each other in a cycle (${cycle.join(' → ')})`;
  const fields = Object.keys(def.schema.shape);
  const tables = new Set<string>();
  for (const t of declared) {
    const at = `target ${t.table}`;
    if (tables.has(t.table)) return `${at}: the table is a target twice`;
    tables.add(t.table);
    const all = [...t.columns, ...t.references.map((r) => r.column)];
    if (new Set(all).size !== all.length) return `${at}: a column is given twice`;
    for (const k of t.key) {
      if (!all.includes(k)) return `${at}: key column "${k}" is not one of its columns`;
    }
    if (!t.each) {
      for (const p of [...t.paths, ...t.references.flatMap((r) => r.keyPaths)]) {
        const field = p.replace(/^\//, '').split('.')[0] ?? '';
        if (p !== '.' && !p.startsWith('../') && !fields.includes(field))
          return `${at}: path "${p}" names no field of the schema`;
      }
    }
    const selfRefs = t.references.filter((r) => r.self);
    if (selfRefs.length > 1) return `${at}: at most one self-reference`;
    const self = selfRefs[0];
    if (self) {
      const sameKey =
        self.keyColumns.length === t.key.length &&
        self.keyColumns.every((c) => t.key.includes(c) && t.columns.includes(c));
      if (!sameKey)
        return `${at}: a self-reference must name the parent by the target's own key (${t.key.join(', ')})`;
    }
  }
  return undefined;
}

/** The first rule between options that a dataset of either kind breaks (after its kind's own rules). */
function datasetProblem(def: DatasetOptions): string | undefined {
  const fields = Object.keys(def.schema.shape);
  if (def.waitForParents !== undefined && def.targets)
    return 'waitForParents needs table (targets always wait)';
  if (def.columnNames !== undefined && def.targets)
    return 'columnNames needs table (each target names its columns)';
  for (const f of def.key ?? []) {
    if (!fields.includes(f)) return `key field "${f}" is not in its schema`;
  }
  if (def.mode === 'upsert' && !def.key?.length) return 'mode "upsert" needs a key';
  const prefix = prefixOf(def);
  if (!prefix.endsWith('/')) return `prefix "${prefix}" must end with "/"`;
  const reserved = reservedPrefixProblem(prefix);
  if (reserved) return reserved;
  for (const f of def.checks.unique) {
    if (!fields.includes(f)) return `checks.unique field "${f}" is not in its schema`;
  }
  // All-or-nothing needs the staging table: without it earlier chunks are already visible.
  if (def.publish !== 'file') {
    if (def.maxRejects !== undefined) return 'maxRejects needs publish: "file"';
    if (def.checks.minRows > 0 || def.checks.unique.length > 0) return 'checks need publish: "file"';
    if (def.onNewVersion === 'replace') return 'onNewVersion "replace" needs publish: "file"';
  }
  if (def.onNewVersion === 'replace' && !def.sourceColumn)
    return `onNewVersion "replace" needs sourceColumn (the column holding each row's file id)`;
  return undefined;
}

function parseMaxRejects(value: DatasetOptions['maxRejects']): Dataset['maxRejects'] {
  if (value === undefined) return undefined;
  if (typeof value === 'number') return { count: value };
  return { percent: Number(value.slice(0, -1)) };
}

function common(def: DatasetOptions): DatasetCommon {
  return {
    name: def.name,
    prefix: prefixOf(def),
    format: def.format,
    schema: def.schema,
    fields: Object.keys(def.schema.shape),
    chunkBytes: def.chunkBytes,
    nullValues: new Set(def.nullValues),
    maxRecordBytes: def.maxRecordBytes,
    delimiter: def.delimiter,
    quote: def.quote,
    maxExpandedBytes: def.maxExpandedBytes,
    maxExpansionRatio: def.maxExpansionRatio,
    publish: def.publish,
    maxRejects: parseMaxRejects(def.maxRejects),
    checks: def.checks,
    timeZone: def.timeZone,
  };
}

/** Field → column for every field: `columns` where it names one, else by `columnNames`. */
function columnsOf(def: DatasetOptions): Record<string, string> {
  const overrides: Record<string, string | undefined> = def.columns ?? {};
  const named = def.columnNames === 'snake_case' ? snakeCase : (f: string) => f;
  return Object.fromEntries(Object.keys(def.schema.shape).map((f) => [f, overrides[f] ?? named(f)]));
}

/** Two fields written to one column, or a field whose snake_case name is empty (`"!!"`). */
function columnProblem(columnOf: Record<string, string>): string | undefined {
  const fieldOf = new Map<string, string>();
  for (const [field, column] of Object.entries(columnOf)) {
    if (column === '') return `field "${field}" has no snake_case column name: give it one in columns`;
    const other = fieldOf.get(column);
    if (other !== undefined) return `fields "${other}" and "${field}" both write column "${column}"`;
    fieldOf.set(column, field);
  }
  return undefined;
}

function tableDataset(def: DatasetOptions, table: string, columnOf: Record<string, string>): TableDataset {
  const base = common(def);
  return {
    kind: 'table',
    ...base,
    table,
    columnOf,
    columnNames: def.columnNames ?? 'as-is',
    key: def.key ?? [],
    mode: def.mode ?? 'insert',
    onNewVersion: def.onNewVersion ?? 'append',
    sourceColumn: def.sourceColumn,
    waitForParents: def.waitForParents ?? true,
    orphanWaitSeconds: def.orphanWaitSeconds ?? DEFAULT_ORPHAN_WAIT_SECONDS,
  };
}

function targetsDataset(def: DatasetOptions, declared: Target[]): TargetsDataset {
  return {
    kind: 'targets',
    ...common(def),
    targets: orderTargets(declared).order.map((i) => declared[i] as Target),
    countedTable: (declared[0] as Target).table,
    orphanWaitSeconds: def.orphanWaitSeconds ?? DEFAULT_ORPHAN_WAIT_SECONDS,
  };
}

/**
 * The spec of one dataset: validates a definition, checks the rules between its options and resolves
 * it into a `Dataset`. The rules run only on a definition whose every option has the right shape (a
 * pipe stops at the first issue), and are reported as `dataset "<name>": …` (see `configError`).
 */
export const datasetSpec = datasetOptions.transform((def, ctx): Dataset => {
  const broken = (rule: string) => {
    ctx.addIssue({ code: 'custom', message: rule, params: { dataset: def.name } });
    return z.NEVER;
  };
  if (def.targets) {
    const declared = def.targets.map(resolveTarget);
    const problem = targetsProblem(def, declared) ?? datasetProblem(def);
    return problem === undefined ? targetsDataset(def, declared) : broken(problem);
  }
  if (def.table === undefined) return broken('needs a table (or targets)');
  const columnOf = columnsOf(def);
  const problem = datasetProblem(def) ?? columnProblem(columnOf);
  return problem === undefined ? tableDataset(def, def.table, columnOf) : broken(problem);
});

/** Where a broken rule applies, in its issue's params (a shape problem has a path instead). */
type RuleScope = { dataset: string } | { config: true };

/** The scope of a rule across datasets (a name or prefix used twice): the config itself. */
export const CONFIG_RULE: RuleScope = { config: true };

function ruleScope(issue: z.core.$ZodIssue): RuleScope | undefined {
  if (issue.code !== 'custom') return undefined;
  if (typeof issue.params?.dataset === 'string') return { dataset: issue.params.dataset };
  return issue.params?.config === true ? CONFIG_RULE : undefined;
}

/**
 * The ConfigError for a config (or definition) the spec refused: its first shape problem
 * (`<source>: <path>: …`), else its first broken rule (`<source>: dataset "<name>": …`, or
 * `<source>: …` for a config rule). Shape problems come first: the rules of a dataset with a wrongly
 * shaped option never ran, while the datasets before it were already checked.
 */
export function configError(error: z.ZodError, source: string): ConfigError {
  const issue = error.issues.find((i) => !ruleScope(i)) ?? error.issues[0];
  const scope = issue && ruleScope(issue);
  if (scope && 'dataset' in scope)
    return new ConfigError(`${source}: dataset "${scope.dataset}": ${issue.message}`);
  if (scope) return new ConfigError(`${source}: ${issue.message}`);
  return new ConfigError(`${source}: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
}

/** Validates one definition and applies every default; throws ConfigError naming the bad setting. */
export function resolveDataset(def: DatasetDefinition, source = 'config'): Dataset {
  const parsed = datasetSpec.safeParse(def);
  if (!parsed.success) throw configError(parsed.error, source);
  return parsed.data;
}

/** The dataset whose prefix is the longest one the key starts with. */
export function datasetForKey(datasets: readonly Dataset[], key: string): Dataset | undefined {
  let best: Dataset | undefined;
  for (const d of datasets) {
    if (key.startsWith(d.prefix) && (!best || d.prefix.length > best.prefix.length)) best = d;
  }
  return best;
}

/** Why a key no dataset's prefix matches is skipped: the key and every prefix there is, for the person who dropped it. */
export function noDatasetReason(datasets: readonly Dataset[], key: string): string {
  return `no dataset's prefix matches "${key}"; prefixes: ${datasets.map((d) => d.prefix).join(', ')}`;
}

/** Which schema fields a file must carry: those that do not accept a missing value. */
export function requiredFields(dataset: Dataset): string[] {
  return dataset.fields.filter((f) => !dataset.schema.shape[f]?.safeParse(undefined).success);
}
