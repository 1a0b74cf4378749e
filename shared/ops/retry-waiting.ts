import type { Kysely } from 'kysely';
import type { ResolvedConfig } from '../config/config.ts';
import { getFile, withoutNul } from '../ledger/ledger.ts';
import type { Database, FileRow } from '../ledger/schema.ts';
import { filesWithWaitingRows, type WaitSummary, waitSummaries } from '../ledger/waiting.ts';
import { type ChainDeps, retryNow, tablesOf, wakeWaiting } from '../load/retry-chain.ts';
import { newestFileByKey } from './rejects.ts';

/** What `retry-waiting` did for one file. */
export interface WaitingRetry {
  fileId: number;
  key: string;
  state: FileRow['state'];
  /** What its rows wait for; undefined when none waits. */
  waiting?: WaitSummary;
  /** A retry of its waiting rows was sent, due now. */
  enqueued: boolean;
}

/** The versions of these keys whose rows wait; a key none of whose versions waits, as its newest version. */
async function filesOf(db: Kysely<Database>, keys: string[]): Promise<FileRow[]> {
  const waiting = await filesWithWaitingRows(db);
  const out: FileRow[] = [];
  for (const key of keys) {
    const versions = waiting.filter((f) => f.key === withoutNul(key));
    out.push(...(versions.length > 0 ? versions : [await newestFileByKey(db, key)]));
  }
  return out;
}

/**
 * An immediate retry of the waiting rows of the files with these keys (of every file whose rows wait,
 * when none is given), whatever their retry chain said: a new chain, due now, for each. Idempotent: a
 * retry claims rows `for update skip locked`, so one sent twice loads nothing twice.
 */
export async function retryWaitingNow(deps: ChainDeps, keys: string[] = []): Promise<WaitingRetry[]> {
  const files = keys.length > 0 ? await filesOf(deps.db, keys) : await filesWithWaitingRows(deps.db);
  const summaries = await waitSummaries(
    deps.db,
    files.map((f) => f.id),
  );
  const steps = await retryNow(
    deps,
    summaries.map((s) => s.fileId),
  );
  const sent = new Set(steps.map((s) => s.fileId));
  deps.logger.info('waiting rows retried now', { files: [...sent] });
  return files.map((f) => ({
    fileId: f.id,
    key: f.key,
    state: f.state,
    waiting: summaries.find((s) => s.fileId === f.id),
    enqueued: sent.has(f.id),
  }));
}

/**
 * Rows of the file were loaded late (`retry-rejects`): they may be the parents other files' rows wait
 * for, which then get a retry now. Returns how many files were woken.
 */
export async function wakeAfterLateRows(
  deps: ChainDeps,
  config: ResolvedConfig,
  fileId: number,
): Promise<number> {
  const file = await getFile(deps.db, fileId);
  const dataset = config.datasets.find((d) => d.name === file?.dataset);
  return dataset ? wakeWaiting(deps, tablesOf(dataset)) : 0;
}
