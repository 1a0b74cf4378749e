import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Migration } from 'kysely/migration';
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';
import { CONFIG_RULE, configError, type Dataset, type DatasetDefinition, datasetSpec } from './dataset.ts';
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

const configSpec = z
  .object({
    datasets: z.array(datasetSpec).min(1, 'at least one dataset'),
    migrations: z
      .union([z.string(), z.record(z.string(), z.object({ up: z.function() }).loose())], {
        error: 'a folder path, or a record of migration modules with an `up` function',
      })
      .optional(),
  })
  // Rules across datasets; like a dataset's rules, they run only once everything has the right shape.
  .transform(({ datasets }, ctx): Dataset[] => {
    const names = new Set<string>();
    const prefixes = new Set<string>();
    for (const d of datasets) {
      const rule = names.has(d.name)
        ? `dataset name "${d.name}" is used twice`
        : prefixes.has(d.prefix)
          ? `prefix "${d.prefix}" is used by two datasets`
          : undefined;
      if (rule) {
        ctx.addIssue({ code: 'custom', message: rule, params: CONFIG_RULE });
        return z.NEVER;
      }
      names.add(d.name);
      prefixes.add(d.prefix);
    }
    return datasets;
  });

/** Validates a config object and applies every default; throws ConfigError naming the bad setting. */
export function resolveConfig(config: unknown, source = 'config'): ResolvedConfig {
  const parsed = configSpec.safeParse(config);
  if (!parsed.success) throw configError(parsed.error, source);
  // The migrations as given: the spec checks their shape, and its copy would not be the user's modules.
  const migrations = (config as DroploadConfig).migrations;
  return { datasets: parsed.data, migrations };
}

export const DEFAULT_CONFIG_FILE = 'dropload.config.ts';

/** The config module's absolute path: `--config`, else DROPLOAD_CONFIG, else ./dropload.config.ts. */
export function configPath(file?: string): string {
  return path.resolve(file ?? process.env.DROPLOAD_CONFIG ?? DEFAULT_CONFIG_FILE);
}

/** Loads the config module named by `--config`, else DROPLOAD_CONFIG, else ./dropload.config.ts. */
export async function loadConfig(file?: string): Promise<ResolvedConfig> {
  const chosen = file ?? process.env.DROPLOAD_CONFIG ?? DEFAULT_CONFIG_FILE;
  const absolute = configPath(file);
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
