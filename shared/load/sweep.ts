import type { RetryStep } from '../ledger/waiting.ts';
import { type ChainDeps, restartLost, retryNow } from './retry-chain.ts';

/**
 * The sweep of waiting rows: the files whose rows wait with no live retry chain (its message lost with a
 * purged queue, an emulator that kept nothing, a dead-lettered message; its handler dead) get a retry
 * now. That retry loads what it can and, past `orphanWaitSeconds`, turns rows into rejects, so a wait
 * ends even when every message was lost. On AWS a scheduled function runs it once a minute
 * (functions/sweep.ts); the local runner runs it every few seconds.
 */

export interface SweepOutcome {
  /** The files re-driven, with their new chains' tokens. */
  redriven: RetryStep[];
}

/**
 * `everything`: every file with waiting rows, whatever its chain says: for a runner whose queue
 * started empty (an in-memory emulator), where no message of an earlier run survived.
 */
export async function sweepWaiting(
  deps: ChainDeps,
  options: { everything?: boolean } = {},
): Promise<SweepOutcome> {
  const redriven = options.everything ? await retryNow(deps) : await restartLost(deps);
  if (redriven.length > 0)
    deps.logger.info('waiting rows re-driven', { files: redriven.map((s) => s.fileId) });
  return { redriven };
}
