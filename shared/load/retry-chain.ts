import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { messageBody, type OrphanMessage } from '../aws/messages.ts';
import type { Dataset, Reference } from '../config/dataset.ts';
import { TransientError } from '../core/errors.ts';
import { WAIT_RETRY } from '../core/topology.ts';
import { nextStep, type RetryStep, restartChains, restartLostChains, retrySoon } from '../ledger/waiting.ts';
import type { PipelineDeps } from '../pipeline/services.ts';

/**
 * The messages that retry waiting rows. The ledger is the memory of what waits and of each file's one
 * live retry chain (ledger/waiting.ts); this module sends what the ledger's compare-and-swap updates
 * decide, always after the transaction that made the rows visible has committed (a message for rows
 * not yet visible would find nothing). A send that is lost leaves the ledger saying a retry is due:
 * the sweep (load/sweep.ts) sees it overdue and sends another.
 *
 * - a chunk parks rows: a retry within a second, unless one is already due by then;
 * - rows are committed into tables (a chunk, a retry, retry-rejects): the files waiting on those
 *   tables get a retry now, unless one is already due now (many parents at once: one message per file);
 * - the current chain's handler is done: the next step, with backoff (1 s, 2 s, 4 s, … 15 min); within
 *   a second when its rows now wait on another table or another retry held them (load/orphans.ts);
 * - the sweep, `backfill --resume` and `retry-waiting`: a new chain now.
 */

export type ChainDeps = Pick<PipelineDeps, 'db' | 'sqs' | 'chunkQueueUrl' | 'logger' | 'waitRetry'>;

/** SQS caps DelaySeconds at 15 minutes: the longest backoff step. */
export const MAX_DELAY_SECONDS = 900;
const SQS_BATCH = 10;

/** After a chunk parked rows: a parent that committed while the chunk ran is found by this retry. */
export const PARKED_RETRY_SECONDS = 1;

export function orphanDelaySeconds(attempt: number): number {
  return Math.min(MAX_DELAY_SECONDS, 2 ** Math.max(0, attempt - 1));
}

/** A table as the ledger records parents: schema-qualified (`customers` is `public.customers`). */
export function qualifiedTable(table: string): string {
  return table.includes('.') ? table : `public.${table}`;
}

/** Every table a dataset writes rows into: a commit of it may be the parent rows others wait for. */
export function tablesOf(dataset: Dataset): string[] {
  return (dataset.kind === 'targets' ? dataset.targets.map((t) => t.table) : [dataset.table]).map(
    qualifiedTable,
  );
}

/** The parent a waiting row waits on, as the ledger records it, from the reference its column names. */
export function parentOf(references: readonly Reference[], column: string) {
  const ref = references.find((r) => r.column === column);
  return { parentTable: qualifiedTable(ref?.table ?? ''), parentKey: ref?.keyColumns.join(', ') ?? '' };
}

/** Sends the steps' messages; a step's delay is whole seconds, as SQS takes it. */
export async function sendSteps(deps: ChainDeps, steps: RetryStep[], attempt = 1): Promise<void> {
  for (let i = 0; i < steps.length; i += SQS_BATCH) {
    const batch = steps.slice(i, i + SQS_BATCH);
    const res = await deps.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: deps.chunkQueueUrl,
        Entries: batch.map((s, j) => {
          const message: OrphanMessage = { kind: 'orphans', fileId: s.fileId, attempt, token: s.token };
          const delay = Math.max(0, Math.min(MAX_DELAY_SECONDS, Math.ceil(s.delaySeconds)));
          return { Id: String(j), MessageBody: messageBody(message), DelaySeconds: delay };
        }),
      }),
    );
    if (res.Failed && res.Failed.length > 0) {
      throw new TransientError(
        `chunk queue refused ${res.Failed.length} retry message(s): ${res.Failed[0]?.Message}`,
      );
    }
  }
}

const times = (deps: ChainDeps) => deps.waitRetry ?? WAIT_RETRY;

/** A chunk of the file parked rows (or found rows of it waiting): their retry within a second. */
export async function retryParked(deps: ChainDeps, fileId: number): Promise<void> {
  const steps = await retrySoon(deps.db, { ids: [fileId] }, PARKED_RETRY_SECONDS, times(deps));
  await sendSteps(deps, steps);
}

/**
 * Rows were committed into `tables`: retry now the files whose rows wait on one of them (but `except`,
 * whose own retry wrote them). Best effort: a failure here loses no row (the file's chain, or the
 * sweep, retries it later), so it is logged, never thrown into the commit's delivery.
 */
export async function wakeWaiting(deps: ChainDeps, tables: string[], except?: number): Promise<number> {
  try {
    const steps = await retrySoon(deps.db, { waitingOn: tables, except }, 0, times(deps));
    await sendSteps(deps, steps);
    return steps.length;
  } catch (err) {
    deps.logger.warn('could not wake the rows waiting on these tables (the sweep will)', {
      tables,
      error: String(err),
    });
    return 0;
  }
}

/** The current chain's handler is done: the next retry in `delaySeconds`, if rows still wait. */
export async function continueChain(
  deps: ChainDeps,
  fileId: number,
  token: number,
  attempt: number,
  delaySeconds: number,
): Promise<RetryStep | undefined> {
  const step = await nextStep(deps.db, fileId, token, delaySeconds);
  if (step) await sendSteps(deps, [step], attempt);
  return step;
}

/** A retry now for these files' waiting rows (every file's, when undefined), whatever their chain said. */
export async function retryNow(deps: ChainDeps, fileIds?: number[]): Promise<RetryStep[]> {
  const steps = await restartChains(deps.db, fileIds);
  await sendSteps(deps, steps);
  return steps;
}

/** A retry now for the files whose chain is broken (message lost, handler dead). */
export async function restartLost(deps: ChainDeps): Promise<RetryStep[]> {
  const steps = await restartLostChains(deps.db, times(deps));
  await sendSteps(deps, steps);
  return steps;
}
