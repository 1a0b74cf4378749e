import type { Command } from 'commander';
import { UsageError } from '../../shared/core/errors.ts';
import { DELIMITERS } from './delimiter.ts';

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
    .option(
      '-d, --delimiter <c>',
      'delimiter of the .csv/.txt files (, ; | or tab); default: guessed per file',
    )
    .option('--json', 'print the summary as JSON')
    .action(
      async (paths: string[], opts: { schema?: string; out: string; json?: boolean; delimiter?: string }) => {
        if (opts.schema !== undefined && !SCHEMA_NAME.test(opts.schema))
          throw new UsageError(`--schema ${opts.schema}: lower-case letters, digits and _`);
        const delimiter = opts.delimiter === 'tab' || opts.delimiter === '\\t' ? '\t' : opts.delimiter;
        if (delimiter !== undefined && !DELIMITERS.includes(delimiter))
          throw new UsageError(`--delimiter ${opts.delimiter}: one of , ; | tab`);
        // Imported when run: the profiler brings the Parquet reader, which no other command's start-up needs.
        const [{ init }, { renderSummary }] = await Promise.all([
          import('./init.ts'),
          import('./summary.ts'),
        ]);
        const summary = await init(paths, {
          out: opts.out,
          schema: opts.schema,
          delimiter,
          databaseUrl: Boolean(process.env.DATABASE_URL),
        });
        process.stdout.write(
          opts.json ? `${JSON.stringify(summary, null, 2)}\n` : `${renderSummary(summary)}\n`,
        );
      },
    );
}
