import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Migration } from 'kysely/migration';
import { z } from 'zod';
import { reservedPrefixProblem } from '../core/bucket-layout.ts';
import { ConfigError } from '../core/errors.ts';
import { type Dataset, type DatasetDefinition, resolveDataset } from './dataset.ts';
import { resolveDroploadToThisCopy } from './self-reference.ts';

export interface DroploadConfig {
  datasets: DatasetDefinition[];
  /** The datasets' own migrations: a folder of timestamped files, or a record of migration modules (bundles well). */
  migrations?: string | Record<string, Migration>;
}

export interface ResolvedConfig {
  datasets: Dataset[];
  migrations?: string | Record<string, Migration>;
}

export function defineConfig(config: DroploadConfig): DroploadConfig {
  return config;
}

const identifier = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/, 'a SQL identifier');
const column = z.string().regex(/^[A-Za-z_][A-Za-z0-9_$]*$/, 'a SQL column name');
const valuePath = z.string().min(1);
const referenceShape = z.object({
  table: identifier,
  key: z.record(column, valuePath).refine((k) => Object.keys(k).length > 0, 'at least one key column'),
  column: column.optional(),
});
const targetShape = z.object({
  table: identifier,
  each: z
    .string()
    .regex(
      /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*\[\](\.?[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*\[\])*$/,
      'a path of arrays like "lines[]" or "lines[].tags[]"',
    )
    .optional(),
  columns: z.record(column, valuePath).optional(),
  references: z.record(column, referenceShape).optional(),
  key: z.array(column).min(1, 'a natural key (the columns of a unique index)'),
  mode: z.enum(['upsert', 'insert', 'insert-ignore']).optional(),
});
const datasetShape = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'lower-case letters, digits, _ and -'),
  prefix: z.string().min(1).optional(),
  format: z.enum(['csv', 'ndjson', 'parquet']),
  schema: z.custom<z.ZodObject>((v) => v instanceof z.ZodObject, 'a zod object schema (z.object({...}))'),
  table: identifier.optional(),
  targets: z.array(targetShape).min(1, 'at least one target').optional(),
  orphanWaitSeconds: z.number().int().positive().optional(),
  columns: z.record(z.string(), identifier).optional(),
  key: z.array(z.string()).optional(),
  mode: z.enum(['insert', 'upsert']).optional(),
  chunkBytes: z
    .number()
    .int()
    .min(64 * 1024)
    .optional(),
  nullValues: z.array(z.string()).optional(),
  maxRecordBytes: z.number().int().positive().optional(),
  delimiter: z.string().length(1).optional(),
  maxExpandedBytes: z.number().int().positive().optional(),
  maxExpansionRatio: z.number().min(2).optional(),
  publish: z.enum(['chunk', 'file']).optional(),
  onNewVersion: z.enum(['append', 'replace']).optional(),
  sourceColumn: identifier.optional(),
  maxRejects: z
    .union([
      z.number().int().nonnegative(),
      z.string().regex(/^\d+(\.\d+)?%$/, 'a count or a percent like "5%"'),
    ])
    .optional(),
  checks: z
    .object({ minRows: z.number().int().nonnegative().optional(), unique: z.array(z.string()).optional() })
    .optional(),
});
const configShape = z.object({
  datasets: z.array(datasetShape).min(1, 'at least one dataset'),
  migrations: z
    .union([z.string(), z.record(z.string(), z.object({ up: z.function() }).loose())], {
      error: 'a folder path, or a record of migration modules with an `up` function',
    })
    .optional(),
});

function checkTargets(d: Dataset, def: DatasetDefinition, where: string): void {
  if (def.table !== undefined) throw new ConfigError(`${where}: give either table or targets, not both`);
  for (const setting of ['columns', 'key', 'mode', 'sourceColumn', 'onNewVersion'] as const) {
    if (def[setting] !== undefined)
      throw new ConfigError(`${where}: ${setting} belongs to each target when the dataset has targets`);
  }
  // Children may wait on another file's parents: a file cannot be all-or-nothing across that wait.
  if (d.publish === 'file') throw new ConfigError(`${where}: targets need publish: "chunk"`);
  if (d.targetCycle)
    throw new ConfigError(`${where}: targets reference each other in a cycle (${d.targetCycle.join(' → ')})`);
  const tables = new Set<string>();
  for (const t of d.targets ?? []) {
    const at = `${where}: target ${t.table}`;
    if (tables.has(t.table)) throw new ConfigError(`${at}: the table is a target twice`);
    tables.add(t.table);
    const all = [...t.columns, ...t.references.map((r) => r.column)];
    if (new Set(all).size !== all.length) throw new ConfigError(`${at}: a column is given twice`);
    for (const k of t.key) {
      if (!all.includes(k)) throw new ConfigError(`${at}: key column "${k}" is not one of its columns`);
    }
    if (!t.each) {
      for (const p of [...t.paths, ...t.references.flatMap((r) => r.keyPaths)]) {
        const field = p.replace(/^\//, '').split('.')[0] ?? '';
        if (p !== '.' && !p.startsWith('../') && !d.fields.includes(field))
          throw new ConfigError(`${at}: path "${p}" names no field of the schema`);
      }
    }
    const selfRefs = t.references.filter((r) => r.self);
    if (selfRefs.length > 1) throw new ConfigError(`${at}: at most one self-reference`);
    const self = selfRefs[0];
    if (self) {
      const sameKey =
        self.keyColumns.length === t.key.length &&
        self.keyColumns.every((c) => t.key.includes(c) && t.columns.includes(c));
      if (!sameKey) {
        throw new ConfigError(
          `${at}: a self-reference must name the parent by the target's own key (${t.key.join(', ')})`,
        );
      }
    }
  }
}

function checkDataset(d: Dataset, source: string, def: DatasetDefinition): void {
  const where = `${source}: dataset "${d.name}"`;
  if (def.targets) checkTargets(d, def, where);
  else if (def.table === undefined) throw new ConfigError(`${where}: needs a table (or targets)`);
  if (def.orphanWaitSeconds !== undefined && !def.targets)
    throw new ConfigError(`${where}: orphanWaitSeconds needs targets`);
  for (const f of d.key) {
    if (!d.fields.includes(f)) throw new ConfigError(`${where}: key field "${f}" is not in its schema`);
  }
  if (d.mode === 'upsert' && d.key.length === 0) throw new ConfigError(`${where}: mode "upsert" needs a key`);
  if (!d.prefix.endsWith('/')) throw new ConfigError(`${where}: prefix "${d.prefix}" must end with "/"`);
  const reserved = reservedPrefixProblem(d.prefix);
  if (reserved) throw new ConfigError(`${where}: ${reserved}`);
  for (const f of d.checks.unique) {
    if (!d.fields.includes(f))
      throw new ConfigError(`${where}: checks.unique field "${f}" is not in its schema`);
  }
  // All-or-nothing needs the staging table: without it earlier chunks are already visible.
  if (d.publish !== 'file') {
    if (d.maxRejects) throw new ConfigError(`${where}: maxRejects needs publish: "file"`);
    if (d.checks.minRows > 0 || d.checks.unique.length > 0)
      throw new ConfigError(`${where}: checks need publish: "file"`);
    if (d.onNewVersion === 'replace')
      throw new ConfigError(`${where}: onNewVersion "replace" needs publish: "file"`);
  }
  if (d.onNewVersion === 'replace' && !d.sourceColumn) {
    throw new ConfigError(
      `${where}: onNewVersion "replace" needs sourceColumn (the column holding each row's file id)`,
    );
  }
}

/** Validates a config object and applies every default; throws ConfigError naming the bad setting. */
export function resolveConfig(config: unknown, source = 'config'): ResolvedConfig {
  const parsed = configShape.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue?.path.join('.') || '(root)';
    throw new ConfigError(`${source}: ${at}: ${issue?.message}`);
  }
  const definitions = (config as DroploadConfig).datasets;
  const datasets = definitions.map(resolveDataset);
  datasets.forEach((d, i) => {
    checkDataset(d, source, definitions[i] as DatasetDefinition);
  });
  const names = new Set<string>();
  const prefixes = new Set<string>();
  for (const d of datasets) {
    if (names.has(d.name)) throw new ConfigError(`${source}: dataset name "${d.name}" is used twice`);
    if (prefixes.has(d.prefix))
      throw new ConfigError(`${source}: prefix "${d.prefix}" is used by two datasets`);
    names.add(d.name);
    prefixes.add(d.prefix);
  }
  const migrations = (config as DroploadConfig).migrations;
  return { datasets, migrations };
}

export const DEFAULT_CONFIG_FILE = 'dropload.config.ts';

/** Loads the config module named by `--config`, else DROPLOAD_CONFIG, else ./dropload.config.ts. */
export async function loadConfig(file?: string): Promise<ResolvedConfig> {
  const chosen = file ?? process.env.DROPLOAD_CONFIG ?? DEFAULT_CONFIG_FILE;
  const absolute = path.resolve(chosen);
  if (!existsSync(absolute)) {
    const setting = file
      ? '--config'
      : process.env.DROPLOAD_CONFIG
        ? 'DROPLOAD_CONFIG'
        : 'the default config';
    throw new ConfigError(`${setting}: no config module at ${absolute}`);
  }
  resolveDroploadToThisCopy();
  const mod = (await import(pathToFileURL(absolute).href)) as { default?: unknown };
  const resolved = resolveConfig(mod.default, chosen);
  if (typeof resolved.migrations === 'string') {
    resolved.migrations = path.resolve(path.dirname(absolute), resolved.migrations);
  }
  return resolved;
}
