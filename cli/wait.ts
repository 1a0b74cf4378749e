import type { Command } from 'commander';
import type { Kysely } from 'kysely';
import { type Database, FINAL_STATES, type FileRow } from '../shared/ledger/schema.ts';
import { readSnapshot } from '../shared/ledger/snapshot.ts';
import { waitSummaries } from '../shared/ledger/waiting.ts';
import { findNewestFileByKey } from '../shared/ops/rejects.ts';
import { withLedger } from './ops-resources.ts';
import { positive } from './options.ts';
import { type FileReport, renderReports, withRejects } from './report.ts';
import { runExitCode } from './run.ts';

/** How often the ledger is read: a file's state changes once per chunk commit, so a poll costs one indexed read per key. */
const POLL_MS = 500;

/**
 * Where `wait` stops watching a file: final (`loaded`, `failed`, `skipped`), `stalled` (its messages
 * are in a dead-letter queue: nothing moves it until an operator replays them) or `waiting` (its
 * chunks are done and its rows wait for parents, possibly for as long as `orphanWaitSeconds`).
 */
const SETTLED: readonly FileRow['state'][] = [...FINAL_STATES, 'stalled', 'waiting'];

export interface WaitResult {
  reports: FileReport[];
  timedOut: boolean;
  /** Keys the ledger still had no file for when the timeout passed. */
  missing: string[];
}

/**
 * Polls the ledger until the newest version of each key is settled (see SETTLED), or the timeout passes.
 * A key the ledger does not have yet is waited for until it appears.
 */
export async function waitForFiles(
  db: Kysely<Database>,
  keys: string[],
  timeoutMs: number,
): Promise<WaitResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const files = await Promise.all(keys.map((k) => findNewestFileByKey(db, k)));
    const settled = files.every((f) => f !== undefined && SETTLED.includes(f.state));
    const timedOut = !settled && Date.now() >= deadline;
    if (settled || timedOut) {
      const present = files.filter((f): f is FileRow => f !== undefined);
      // One snapshot: what rows wait for agrees with the file rows and counts (see readSnapshot).
      const reports = await readSnapshot(db, async (snap) => {
        const waits = await waitSummaries(
          snap,
          present.filter((f) => f.state === 'waiting').map((f) => f.id),
        );
        return Promise.all(
          present.map((f) =>
            withRejects(
              snap,
              f,
              10,
              waits.find((w) => w.fileId === f.id),
            ),
          ),
        );
      });
      return { reports, timedOut, missing: keys.filter((_, i) => files[i] === undefined) };
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** What `wait` prints on stderr when it gave up. */
export function timeoutLine(result: WaitResult, seconds: number): string {
  const pending = [
    ...result.reports
      .filter((r) => !SETTLED.includes(r.state as FileRow['state']))
      .map((r) => `${r.key} is ${r.state}`),
    ...result.missing.map((k) => `${k} is not in the ledger`),
  ];
  return `timed out after ${seconds}s: ${pending.join(', ')}`;
}

/** `dropload wait KEY…`: blocks until the files are settled and exits with `run`'s codes. */
export function registerWait(program: Command): void {
  program
    .command('wait')
    .description(
      'wait until the newest file of each key is loaded, failed, stalled or waiting for parents; exit as `run` does',
    )
    .argument('<keys...>', 'S3 keys of the files (a key not in the ledger yet is waited for)')
    .option('--json', 'print the files as JSON')
    .option('-t, --timeout <seconds>', 'give up waiting after this long (exit 1)', positive, 600)
    .action(async (keys: string[], opts: { json?: boolean; timeout: number }) => {
      const result = await withLedger('wait', (db) => waitForFiles(db, keys, opts.timeout * 1000));
      const { reports, timedOut } = result;
      if (opts.json) process.stdout.write(`${JSON.stringify({ files: reports, timedOut }, null, 2)}\n`);
      else if (reports.length > 0) process.stdout.write(`${renderReports(reports)}\n`);
      if (timedOut) process.stderr.write(`dropload: ${timeoutLine(result, opts.timeout)}\n`);
      process.exitCode = runExitCode(reports, timedOut);
    });
}
