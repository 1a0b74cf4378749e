import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { snakeCase, snakeIdentifier } from '../../shared/config/column-names.ts';
import { localFiles } from '../../shared/config/local-files.ts';
import { UsageError } from '../../shared/core/errors.ts';
import {
  configModule,
  datasetModule,
  GENERATED_MARK,
  type GeneratedFile,
  migrationModule,
  qualified,
} from './codegen.ts';
import { ColumnProfile } from './column-profile.ts';
import type { KeepValues } from './columns.ts';
import {
  diffTable,
  type InitState,
  mergeType,
  sameForeignKey,
  stored,
  storedForeignKey,
  widenForeignKeys,
} from './evolution.ts';
import { loadRefusal } from './file-check.ts';
import { refusalReason } from './file-error.ts';
import { type FileGroup, groupFiles } from './file-groups.ts';
import { type FileProfile, formatOfFile, isGzip } from './file-profile.ts';
import { jsonText } from './layout.ts';
import { mergeProfiles } from './profile-merge.ts';
import { profileQuoting } from './quoting.ts';
import {
  breakCycles,
  columnsOf,
  dependencyOrder,
  type Edge,
  inferRelationships,
  mayRelate,
  type Relationship,
  type Relationships,
  type TableNames,
} from './relationships.ts';
import { type InitSummary, type RefusedFile, summarize } from './summary.ts';
import { type InferredTable, inferTable } from './tables.ts';

export interface InitOptions {
  /** Output folder: dropload.config.ts, datasets/, migrations/, init-state.json. */
  out: string;
  /** Postgres schema of the tables (created by the migration); none: the search path's. */
  schema?: string;
  /** The migration's timestamp (tests pin it). */
  now?: Date;
  /** The delimiter of every `.csv`/`.txt` file; none: guessed per file from its start. */
  delimiter?: string;
  /** Whether DATABASE_URL is set: the printed `run` loads there (else into an embedded database). */
  databaseUrl?: boolean;
}

const DATA_FILE = /\.(csv|tsv|tab|txt|ndjson|jsonl|parquet)(\.gz)?$/i;
const STATE_FILE = 'init-state.json';

/** The files named: folders read recursively for data files, in name order. */
export async function dataFiles(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const info = await stat(p).catch((err: unknown) => {
      throw new UsageError(`${p}: no such file or folder`, { cause: err });
    });
    if (info.isDirectory()) {
      const entries = await readdir(p, { recursive: true });
      out.push(
        ...entries
          .filter((e) => DATA_FILE.test(e))
          .sort()
          .map((e) => path.join(p, e)),
      );
    } else out.push(p);
  }
  if (out.length === 0) throw new UsageError(`no CSV/TSV, NDJSON or Parquet files in ${paths.join(', ')}`);
  return out;
}

const stamp = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(0, 14);

async function readState(out: string): Promise<InitState | undefined> {
  const file = path.join(out, STATE_FILE);
  if (!existsSync(file)) return undefined;
  return JSON.parse(await readFile(file, 'utf8')) as InitState;
}

async function existingMigrations(out: string): Promise<string[]> {
  const dir = path.join(out, 'migrations');
  if (!existsSync(dir)) return [];
  return (await readdir(dir)).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3));
}

/** The config is rewritten only when `init` wrote it: a hand-written one is never overwritten. */
async function checkConfig(out: string): Promise<void> {
  const file = path.join(out, 'dropload.config.ts');
  if (!existsSync(file)) return;
  if (!(await readFile(file, 'utf8')).startsWith(GENERATED_MARK))
    throw new UsageError(
      `${file} exists and was not written by init: choose another folder with --out (and import its datasets into your config)`,
    );
}

/** The tables of an earlier `init` live in its schema: another `--schema` would split the dataset in two. */
function checkSchema(state: InitState | undefined, options: InitOptions): void {
  if (!state || options.schema === undefined || options.schema === state.schema) return;
  const made = state.schema ? `--schema ${state.schema}` : 'no --schema';
  const again = state.schema ? `, or with --schema ${state.schema}` : '';
  throw new UsageError(
    `${options.out} holds datasets made with ${made}: init on them again without --schema${again}`,
  );
}

/** An existing table's columns as the dataset must now read them (none dropped, types merged). */
function evolvedTable(table: InferredTable, columns: InitState['tables'][string]): InferredTable {
  const byColumn = new Map(table.columns.map((c) => [c.column, c]));
  return {
    ...table,
    columns: columns.map((s, i) => {
      const seen = byColumn.get(s.column);
      const profile = seen?.profile ?? new ColumnProfile(s.field, i);
      return { ...s, field: seen?.field ?? s.field, evidence: seen?.evidence ?? 'not in the file', profile };
    }),
  };
}

/** Whether a foreign key's child columns are new: a new table's, or a column an existing table did not have. */
function newChild(r: Relationship, state: InitState): boolean {
  const old = state.tables[r.table];
  return !old || r.columns.some((c) => !old.some((o) => o.column === c));
}

/**
 * The foreign keys a change migration writes: those whose child columns are new (a new table, a new
 * column), with the natural keys they point at. Between columns that existed before, the constraints
 * are the ones written then (or the user's): a relationship found there only now is reported, not added.
 * A new one closing a cycle with those in the database is written commented out (see `breakCycles`):
 * inference saw only the foreign keys it found today. `edges` are all of them, for the load order.
 */
function newForeignKeys(
  tables: InferredTable[],
  relations: Relationships,
  state: InitState,
): { kept: Relationships; changes: string[]; edges: Edge[] } {
  const changes: string[] = [];
  const known = state.foreignKeys ?? [];
  const relationships = relations.relationships.filter((r) => newChild(r, state));
  const inDatabase: Relationship[] = known
    .filter((k) => k.certain !== false)
    .map((k) => ({ ...k, certain: true, evidence: 'written before' }));
  const unbroken = breakCycles(tables, [...inDatabase, ...relationships], (r) => inDatabase.includes(r));
  for (const cycle of unbroken)
    changes.push(
      `${cycle.join(' → ')}: the foreign keys written before make a cycle, no load order exists (drop one of them, or make its column nullable and fill it in later)`,
    );
  for (const r of relations.relationships) {
    const name = `${columnsOf(r.table, r.columns)} → ${columnsOf(r.parentTable, r.parentColumns)}`;
    if (relationships.includes(r))
      changes.push(
        r.certain
          ? `${name}: foreign key added, with its index (${r.evidence})`
          : `${name}: foreign key written commented out, to confirm (${r.evidence})`,
      );
    else if (!known.some((k) => sameForeignKey(k, r)))
      changes.push(`${name}: not added, its columns existed before (add it by hand if wanted)`);
  }
  const pointedAt = (k: { table: string; column: string }) =>
    relationships.some((r) => r.certain && r.parentTable === k.table && r.parentColumns.join() === k.column);
  const naturalKeys = relations.naturalKeys.filter(pointedAt);
  return {
    kept: { ...relations, relationships, naturalKeys },
    changes,
    edges: [...inDatabase, ...relationships],
  };
}

/**
 * A new child column of a foreign key to an existing table takes the parent column's type as the
 * database has it, merged with what the files show now: the constraint needs comparable types, and
 * the parent keeps its stored type (a `text` key that only shows numbers today stays `text`).
 */
function alignNewChildren(tables: InferredTable[], relations: Relationships, state: InitState): void {
  const column = (table: string, name: string | undefined) =>
    tables.find((t) => t.name === table)?.columns.find((c) => c.column === name);
  for (const r of relations.relationships) {
    const parentStored = state.tables[r.parentTable];
    if (!parentStored) continue;
    for (const [i, name] of r.columns.entries()) {
      if (state.tables[r.table]?.some((o) => o.column === name)) continue;
      const parentName = r.parentColumns[i];
      const stored = parentStored.find((s) => s.column === parentName)?.type;
      const child = column(r.table, name);
      if (!stored || !child) continue;
      const now = column(r.parentTable, parentName)?.type;
      child.type = now ? mergeType(stored, now) : stored;
    }
  }
}

/** The changes for tables `init` generated before, and the migration that makes them. */
function evolve(
  tables: InferredTable[],
  relations: Relationships,
  state: InitState,
  name: string,
): {
  tables: InferredTable[];
  /** Parents first, by the foreign keys in the database and those added now. */
  order: string[];
  stored: InitState['tables'];
  /** None when the tables already are what the files need: an empty migration would only add noise. */
  migration?: GeneratedFile;
  changes: string[];
  relations: Relationships;
} {
  const schema = state.schema;
  const fresh = tables.filter((t) => !state.tables[t.name]);
  const freshNames = new Set(fresh.map((t) => t.name));
  const alters: string[] = [];
  const changes: string[] = [];
  alignNewChildren(tables, relations, state);
  const columns: InitState['tables'] = structuredClone(state.tables);
  for (const t of tables) {
    const old = state.tables[t.name];
    if (!old) {
      changes.push(`${t.name}: new table`);
      continue;
    }
    const diff = diffTable(t, old, schema);
    alters.push(...diff.alters);
    changes.push(...diff.messages);
    columns[t.name] = diff.columns;
  }
  const keys = widenForeignKeys(state.foreignKeys ?? [], state.tables, columns, schema);
  changes.push(...keys.messages);
  const evolved = tables.map((t) => {
    const now = state.tables[t.name] ? columns[t.name] : undefined;
    return now ? evolvedTable(t, now) : t;
  });
  const { kept, changes: keyChanges, edges } = newForeignKeys(tables, relations, state);
  const order = dependencyOrder(tables, edges);
  changes.push(...keyChanges);
  if (changes.length === 0) changes.push('no changes: the files fit the existing tables');
  const statements = [...keys.drops, ...alters, ...keys.alters, ...keys.readds];
  const idle = fresh.length === 0 && statements.length === 0 && kept.relationships.length === 0;
  const migration = idle
    ? undefined
    : migrationModule(
        name,
        fresh,
        kept,
        order.filter((n) => freshNames.has(n)),
        schema,
        {
          alters: statements,
          existingTables: new Set(Object.keys(state.tables)),
          sources: tables.flatMap((t) => t.file.paths.map((p) => path.basename(p))),
        },
      );
  return { tables: evolved, order, stored: columns, migration, changes, relations: kept };
}

/**
 * Writes the files whose text differs from what the folder holds, and returns their paths: init on
 * unchanged files leaves every file (and its time stamp) as it was.
 */
async function writeChanged(out: string, files: GeneratedFile[]): Promise<string[]> {
  const written: string[] = [];
  for (const f of files) {
    const target = path.join(out, f.path);
    const before = existsSync(target) ? await readFile(target, 'utf8') : undefined;
    if (before === f.text) continue;
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, f.text);
    written.push(target);
  }
  return written;
}

/** Per dataset, which columns keep distinct values: those whose names may make a key or a relationship. */
function keepers(groups: FileGroup[]): KeepValues[] {
  const names: TableNames[] = [];
  for (const g of groups)
    names.push({ table: snakeIdentifier(g.base), columns: g.fields.map(snakeIdentifier) });
  return names.map((t) => {
    // A field first seen after the first NDJSON record is kept: its name was not judged. A field's
    // position is the table's, whichever of its headers the file being read has.
    return (field) => {
      const column = snakeIdentifier(field);
      const at = t.columns.indexOf(column);
      return at < 0 || mayRelate(column, at, t.table, names);
    };
  });
}

/**
 * A field's column: the one an earlier `init` gave it, as its table has it (`müller` from before init's
 * names were plain identifiers), else a plain identifier; a name with no ASCII letter or digit keeps its
 * own letters (`Имя` → `имя`, a PostgreSQL identifier and what `columnNames` maps it to), not none.
 */
const storedColumnOr =
  (state: InitState | undefined, table: string) =>
  (field: string): string =>
    state?.tables[table]?.find((c) => c.field === field)?.column ??
    (snakeIdentifier(field) || snakeCase(field));

/** The fields of each table an earlier `init` made: a new month of one joins its files. */
const storedFields = (state: InitState | undefined): Record<string, string[]> =>
  Object.fromEntries(
    Object.entries(state?.tables ?? {}).map(([t, columns]) => [t, columns.map((c) => c.field)]),
  );

/**
 * The files the loader would refuse whole (by split's own checks), each with its reason: init writes
 * no dataset for them. None left to write: a usage error listing why.
 */
async function loadable(
  files: string[],
  delimiter?: string,
): Promise<{ files: string[]; refused: RefusedFile[] }> {
  const ok: string[] = [];
  const refused: RefusedFile[] = [];
  for (const f of files) {
    const { format, delimiter: d } = await formatOfFile(f, delimiter).catch(() => ({
      format: 'csv' as const,
      delimiter: ',',
    }));
    const gzip = await isGzip(f).catch(refusalReason);
    const reason =
      typeof gzip === 'string' ? gzip : await loadRefusal({ path: f, format, delimiter: d, gzip });
    if (reason) refused.push({ file: f, reason });
    else ok.push(f);
  }
  if (ok.length === 0) nothingToWrite(refused);
  return { files: ok, refused };
}

/** Every file refused: a usage error listing why. */
function nothingToWrite(refused: RefusedFile[]): never {
  throw new UsageError(
    `nothing to write: the loader would refuse every file: ${refused.map((r) => `${path.basename(r.file)}: ${r.reason}`).join('; ')}`,
  );
}

/**
 * Each group's files profiled (those of one header read as one). A read the file is at fault for (gzip
 * data cut short past the start the check read) refuses the files read together, not the whole run.
 */
async function profileGroups(
  groups: FileGroup[],
  keep: KeepValues[],
  delimiter: string | undefined,
  refused: RefusedFile[],
): Promise<FileProfile[]> {
  const profiles: FileProfile[] = [];
  for (const [i, g] of groups.entries()) {
    const parts: FileProfile[] = [];
    for (const [first, ...more] of g.variants as [string, ...string[]][]) {
      const profileOptions = { delimiter, more, base: g.base };
      try {
        parts.push(await profileQuoting(first, snakeIdentifier, keep[i], profileOptions));
      } catch (err) {
        const reason = refusalReason(err);
        refused.push(...[first, ...more].map((file) => ({ file, reason })));
      }
    }
    const read = g.files.filter((f) => parts.some((p) => p.paths.includes(f)));
    if (parts.length > 0) profiles.push(mergeProfiles(parts, g.fields, read));
  }
  if (profiles.length === 0) nothingToWrite(refused);
  return profiles;
}

/**
 * `dropload init`: profiles every file whole, infers tables, keys and relationships across them, and
 * writes a dataset module per file, one migration and the config. Run again on files of datasets it
 * generated, it writes the changes instead (never dropping a column or narrowing a type).
 */
export async function init(paths: string[], options: InitOptions): Promise<InitSummary> {
  const named = await dataFiles(paths);
  await checkConfig(options.out);
  const { files, refused } = await loadable(named, options.delimiter);
  const state = await readState(options.out);
  checkSchema(state, options);
  const groups = await groupFiles(files, options.delimiter, storedFields(state));
  const profiles = await profileGroups(groups, keepers(groups), options.delimiter, refused);
  const tableNames = profiles.map((p) => snakeIdentifier(p.base));
  let tables = profiles.map((p) => {
    const table = snakeIdentifier(p.base);
    const others = tableNames.filter((n) => n !== table);
    return inferTable(p, snakeIdentifier, others, storedColumnOr(state, table));
  });
  const names = new Set<string>();
  for (const t of tables) {
    if (names.has(t.name))
      throw new UsageError(`two files make the table ${t.name}: name one of them differently`);
    names.add(t.name);
  }
  const inDatabase = (r: Relationship) =>
    state?.foreignKeys?.some((k) => k.certain !== false && sameForeignKey(k, r)) ?? false;
  // A natural key a foreign key written before points at has its unique index: few rows today do not unmake it.
  const knownUnique = (table: string, column: string) =>
    state?.foreignKeys?.some(
      (k) => k.certain !== false && k.parentTable === table && k.parentColumns.join() === column,
    ) ?? false;
  const relations = inferRelationships(tables, inDatabase, knownUnique);
  let order = dependencyOrder(tables, relations.relationships);
  const schema = state ? state.schema : options.schema;
  const name = `${stamp(options.now ?? new Date())}_${state ? 'init_changes' : 'init'}`;
  let migration: GeneratedFile | undefined;
  let changes: string[] = [];
  let written = relations;
  let storedBefore = state?.tables;
  if (state)
    ({
      tables,
      order,
      stored: storedBefore,
      migration,
      changes,
      relations: written,
    } = evolve(tables, relations, state, name));
  else migration = migrationModule(name, tables, relations, order, schema);
  const datasets = tables.map((t) => datasetModule(t, schema));
  const migrations = [...new Set([...(await existingMigrations(options.out)), ...(migration ? [name] : [])])];
  const allDatasets = [...new Set([...Object.keys(state?.tables ?? {}), ...tables.map((t) => t.name)])];
  const nextState: InitState = {
    ...(schema ? { schema } : {}),
    tables: { ...storedBefore, ...Object.fromEntries(tables.map((t) => [t.name, t.columns.map(stored)])) },
    foreignKeys: [...(state?.foreignKeys ?? []), ...written.relationships.map(storedForeignKey)],
  };
  const generated: GeneratedFile[] = [
    ...datasets,
    ...(migration ? [migration] : []),
    configModule(allDatasets, migrations),
    { path: STATE_FILE, text: jsonText(nextState) },
  ];
  const wrote = await writeChanged(options.out, generated);
  const tablesIn = (t: string) => qualified(schema, t);
  return summarize(
    tables,
    relations,
    order.map(tablesIn),
    changes,
    wrote,
    // In the files' order, whichever step refused each.
    refused.sort((a, b) => named.indexOf(a.file) - named.indexOf(b.file)),
    {
      config: path.join(options.out, 'dropload.config.ts'),
      paths,
      found: await localFiles(paths),
      datasets: allDatasets,
      databaseUrl: options.databaseUrl ?? false,
    },
  );
}
