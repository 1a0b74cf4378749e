#!/usr/bin/env node
import path from 'node:path';
import { Command } from 'commander';
import type { ObjectRef } from '../shared/aws/s3-events.ts';
import type { ResolvedConfig } from '../shared/config/config.ts';
import { registerConsole } from './console.ts';
import { errorText, outcomeOf } from './errors.ts';
import { registerInit } from './init/command.ts';
import { registerOpsCommands } from './ops.ts';
import { positive } from './options.ts';
import type { FileReport } from './report.ts';
import { registerWait } from './wait.ts';

// A command imports what it runs when it runs (`--help` and `status` load no pipeline, emulator or
// migrations): start-up is mostly loading modules.

const program = new Command('dropload')
  .description('Load CSV / NDJSON files dropped into S3 into PostgreSQL, validated row by row.')
  .option('-c, --config <file>', 'config module (default: DROPLOAD_CONFIG, else ./dropload.config.ts)')
  .option('-v, --verbose', 'log every split and chunk, and print the stack trace of an error')
  // Usage errors reach the one handler below (exit 2) instead of commander's own exit (1).
  .exitOverride();

function globals() {
  return program.opts<{ config?: string; verbose?: boolean }>();
}

/** Live per-file progress on stderr, redrawn in place; cleared before the report is printed. */
function progressPrinter() {
  let drawn = 0;
  const started = Date.now();
  const clear = () => {
    if (drawn > 0) process.stderr.write(`\x1b[${drawn}A\x1b[J`);
    drawn = 0;
  };
  const draw = (reports: FileReport[]) => {
    const seconds = (Date.now() - started) / 1000;
    const lines = reports.map((r) => {
      const rate = seconds > 0 ? Math.round(r.rows.read / seconds) : 0;
      return `  ${r.key}  ${r.state}  chunks ${r.chunks.done}/${r.chunks.total ?? '?'}  rows ${r.rows.read}  ${rate} rows/s`;
    });
    process.stderr.write(
      `${drawn > 0 ? `\x1b[${drawn}A` : ''}${lines.map((l) => `\x1b[2K${l}`).join('\n')}\n`,
    );
    drawn = lines.length;
  };
  return { draw, clear };
}

program
  .command('run')
  .description('upload files, run the pipeline until each is finished, print a report')
  .argument(
    '<files...>',
    'files or folders; a file goes to --dataset, else to the dataset its nearest folder is named after, else to the one named after the file (order_details.csv → order_details; orders-2024-01.csv.gz → orders, without a trailing date or number)',
  )
  .option('-d, --dataset <name>', 'dataset for every file')
  .option('--json', 'print the report as JSON')
  .option(
    '-w, --workers <n>',
    'load workers at once (default: one per CPU core, at most the connection budget)',
    positive,
  )
  .option('-t, --timeout <seconds>', 'give up waiting after this long', positive, 600)
  .action(
    async (
      files: string[],
      opts: { dataset?: string; json?: boolean; workers?: number; timeout: number },
    ) => {
      const [
        { configPath, loadConfig },
        { startPipeline },
        { planUploads, runExitCode, runFiles },
        { renderReports },
      ] = await Promise.all([
        import('../shared/config/config.ts'),
        import('../local/local-pipeline.ts'),
        import('./run.ts'),
        import('./report.ts'),
      ]);
      const config = await loadConfig(globals().config);
      const uploads = await planUploads(files, config, opts.dataset);

      const pipeline = await startPipeline({
        config,
        configFile: configPath(globals().config),
        workers: opts.workers,
        logLevel: globals().verbose ? 'INFO' : 'WARN',
      });
      try {
        const progress = !opts.json && process.stderr.isTTY ? progressPrinter() : undefined;
        const { reports, timedOut } = await runFiles(pipeline, uploads, {
          timeoutMs: opts.timeout * 1000,
          rejectsShown: 10,
          onProgress: progress?.draw,
        });
        progress?.clear();
        if (opts.json) process.stdout.write(`${JSON.stringify({ files: reports, timedOut }, null, 2)}\n`);
        else process.stdout.write(`${renderReports(reports)}\n`);
        if (timedOut) process.stderr.write(`timed out after ${opts.timeout}s waiting for files to finish\n`);
        process.exitCode = runExitCode(reports, timedOut);
      } finally {
        await pipeline.stop();
      }
    },
  );

/** Where `dev` keeps the embedded emulator's and database's state unless --state-dir says otherwise. */
const DEV_STATE_DIR = '.dropload/dev';

/** What `dev` prints when an object arrives: a key no dataset's prefix matches is skipped, and says why. */
function arrivalLine(
  config: ResolvedConfig,
  { datasetForKey, noDatasetReason }: typeof import('../shared/config/dataset.ts'),
  ref: ObjectRef,
  resumed: boolean,
): string {
  const url = `s3://${ref.bucket}/${ref.key}`;
  if (resumed) return `resumed ${url} (not finished when the stack last stopped)`;
  if (!datasetForKey(config.datasets, ref.key))
    return `skipped ${url}: ${noDatasetReason(config.datasets, ref.key)}`;
  return `received ${url}`;
}

/** A connection URL fit to print: its password, if any, as `****`. */
function redacted(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = '****';
    return parsed.toString();
  } catch {
    return '(DATABASE_URL, not shown)';
  }
}

program
  .command('dev')
  .description('keep the local stack running; files dropped under a dataset prefix load as they arrive')
  .option('-p, --port <port>', 'emulator port; the embedded Postgres listens on the next one', positive, 4566)
  .option(
    '-s, --state-dir <dir>',
    "folder for the embedded emulator's queues and objects and the embedded database (kept across restarts)",
    DEV_STATE_DIR,
  )
  .action(async (opts: { port: number; stateDir: string }) => {
    const [{ configPath, loadConfig }, { startPipeline }, datasets, { PID_FILE }] = await Promise.all([
      import('../shared/config/config.ts'),
      import('../local/local-pipeline.ts'),
      import('../shared/config/dataset.ts'),
      import('../local/local-stack.ts'),
    ]);
    const config = await loadConfig(globals().config);
    const pipeline = await startPipeline({
      config,
      configFile: configPath(globals().config),
      port: opts.port,
      databasePort: opts.port + 1,
      stateDir: opts.stateDir,
      logLevel: globals().verbose ? 'INFO' : 'WARN',
      // Told beside the arrivals, in words: the file and chunk, and whether and when it is retried.
      onFailure: (line) => process.stdout.write(`${line}\n`),
    });
    const { stack } = pipeline;
    const example = config.datasets[0];
    const key = `${example?.prefix ?? 'incoming/'}my-file.${example?.format ?? 'csv'}`;
    const { emulator, database } = stack.embedded;
    process.stdout.write(
      [
        `dropload dev: S3/SQS endpoint ${stack.endpoint}${emulator ? ' (embedded fauxqs on loopback only; it checks no credentials)' : ''}`,
        `  bucket     ${stack.bucket}`,
        `  datasets   ${config.datasets.map((d) => `${d.name} → s3://${stack.bucket}/${d.prefix}`).join(', ')}`,
        database
          ? `  database   ${stack.databaseUrl} (embedded PGlite on loopback only; it has no password: anyone on this machine can connect)`
          : `  database   ${redacted(stack.databaseUrl)} (DATABASE_URL)`,
        ...(stack.stateDir
          ? [
              `  state      ${stack.stateDir} (kept across restarts, even kill -9; delete the folder to start empty)`,
            ]
          : []),
        // `npx dropload dev &` makes $! npm's pid: npm runs sh, which runs this node, and a kill -9 of npm leaves it running.
        `  pid        ${process.pid} (this process, the one to stop or kill${stack.stateDir ? `; also in ${path.join(stack.stateDir, PID_FILE)}` : ''})`,
        '',
        'Drop a file (any S3 client; credentials are not checked):',
        `  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test aws --endpoint-url ${stack.endpoint} s3 cp ./my-file s3://${stack.bucket}/${key}`,
        'Watch it:',
        database
          ? `  DATABASE_URL=${stack.databaseUrl} npx dropload status --watch`
          : '  npx dropload status --watch   (with your DATABASE_URL)',
        '',
      ].join('\n'),
    );
    const stopWatching = pipeline.watchBucket((ref, resumed) =>
      process.stdout.write(`${arrivalLine(config, datasets, ref, resumed)}\n`),
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    stopWatching();
    await pipeline.stop();
  });

program
  .command('status')
  .description('every known file with its state, chunks and row counts')
  .option('--json', 'print JSON')
  .option('--watch', 'refresh every second until interrupted')
  .option('-n, --limit <n>', 'newest files to show', positive, 50)
  .action(async (opts: { json?: boolean; watch?: boolean; limit: number }) => {
    const [{ withLedger }, { renderReports, statusReports }, { FINAL_STATES }] = await Promise.all([
      import('./ops-resources.ts'),
      import('./report.ts'),
      import('../shared/ledger/schema.ts'),
    ]);
    await withLedger('status', async (db) => {
      for (;;) {
        const reports = await statusReports(db, opts.limit);
        if (opts.json) process.stdout.write(`${JSON.stringify({ files: reports }, null, 2)}\n`);
        else process.stdout.write(`${opts.watch ? '\x1b[2J\x1b[H' : ''}${renderReports(reports)}\n`);
        if (!opts.watch) break;
        if (reports.every((r) => FINAL_STATES.includes(r.state as never)) && !process.stdout.isTTY) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
    });
  });

program
  .command('migrate')
  .description("apply the ledger's and the datasets' migrations to DATABASE_URL")
  .action(async () => {
    const [{ loadConfig }, { migrateToLatest }, { withLedger }] = await Promise.all([
      import('../shared/config/config.ts'),
      import('../shared/ledger/migrate.ts'),
      import('./ops-resources.ts'),
    ]);
    const config = await loadConfig(globals().config);
    const { applied } = await withLedger('migrate', (db) => migrateToLatest(db, config.migrations));
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'already up to date\n');
  });

registerOpsCommands(program, globals);
registerWait(program);
registerConsole(program, globals);
registerInit(program);

/**
 * A reader that stops early (`dropload rejects KEY | head`) closes the pipe: that ends the command
 * quietly, exit 0, as it does for other Unix tools. Any other stdout error is a failure like the rest.
 */
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  process.stderr.write(errorText(err, Boolean(globals().verbose)));
  process.exit(1);
});

program.parseAsync().catch((err: unknown) => {
  process.stderr.write(errorText(err, Boolean(globals().verbose)));
  process.exitCode = outcomeOf(err).exitCode;
});
