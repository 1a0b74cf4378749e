import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Migration } from 'kysely/migration';
import { z } from 'zod';
import { type Dataset, type DatasetDefinition, resolveDataset } from './dataset.ts';
import { ConfigError } from './errors.ts';

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
const datasetShape = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'lower-case letters, digits, _ and -'),
  prefix: z.string().min(1).optional(),
  format: z.enum(['csv', 'ndjson']),
  schema: z.custom<z.ZodObject>((v) => v instanceof z.ZodObject, 'a zod object schema (z.object({...}))'),
  table: identifier,
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
  migrations: z.union([z.string(), z.record(z.string(), z.any())]).optional(),
});

function checkDataset(d: Dataset, source: string): void {
  const where = `${source}: dataset "${d.name}"`;
  for (const f of d.key) {
    if (!d.fields.includes(f)) throw new ConfigError(`${where}: key field "${f}" is not in its schema`);
  }
  if (d.mode === 'upsert' && d.key.length === 0) throw new ConfigError(`${where}: mode "upsert" needs a key`);
  if (!d.prefix.endsWith('/')) throw new ConfigError(`${where}: prefix "${d.prefix}" must end with "/"`);
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
  const datasets = (config as DroploadConfig).datasets.map(resolveDataset);
  for (const d of datasets) checkDataset(d, source);
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
  const mod = (await import(pathToFileURL(absolute).href)) as { default?: unknown };
  const resolved = resolveConfig(mod.default, chosen);
  if (typeof resolved.migrations === 'string') {
    resolved.migrations = path.resolve(path.dirname(absolute), resolved.migrations);
  }
  return resolved;
}
