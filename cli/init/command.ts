import type { Command } from 'commander';
import { UsageError } from '../../shared/core/errors.ts';

const SCHEMA_NAME = /^[a-z_][a-z0-9_]*$/;

export function registerInit(program: Command): void {
  program
    .command('init')
    .description(
      'read whole files (CSV/TSV, NDJSON, Parquet, folders, .gz) and write datasets, a migration with keys and foreign keys, and the config',
    )
    .argument('<paths...>', 'files or folders')
    .option('-s, --schema <name>', 'Postgres schema for the tables (the migration creates it)')
    .option('-o, --out <dir>', 'folder for dropload.config.ts, datasets/ and migrations/', '.')
    .option('--json', 'print the summary as JSON')
    .action(async (paths: string[], opts: { schema?: string; out: string; json?: boolean }) => {
      if (opts.schema !== undefined && !SCHEMA_NAME.test(opts.schema))
        throw new UsageError(`--schema ${opts.schema}: lower-case letters, digits and _`);
      // Imported when run: the profiler brings the Parquet reader, which no other command's start-up needs.
      const [{ init }, { renderSummary }] = await Promise.all([import('./init.ts'), import('./summary.ts')]);
      const summary = await init(paths, { out: opts.out, schema: opts.schema });
      process.stdout.write(
        opts.json ? `${JSON.stringify(summary, null, 2)}\n` : `${renderSummary(summary)}\n`,
      );
    });
}
