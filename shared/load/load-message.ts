import type { SQSRecord } from 'aws-lambda';
import { type ChunkMessage, isOrphanMessage, LoadMessage, type OrphanMessage } from '../aws/messages.ts';
import type { Dataset } from '../config/dataset.ts';
import { getFile, recordChunkAttempt, recordFileAttempt } from '../ledger/ledger.ts';
import type { Delivery } from '../ledger/resumes.ts';
import { continueInOrder } from '../pipeline/chunk-queue.ts';
import { writeReceipt, writeReceiptsOf } from '../pipeline/receipts.ts';
import { deliveryOf, type FailedDelivery, type Settled, settleFailure } from '../pipeline/retries.ts';
import type { PipelineDeps } from '../pipeline/services.ts';
import { type LoadOutcome, loadChunk } from './load-service.ts';
import { type OrphanOutcome, retryOrphans } from './orphans.ts';
import { tablesOf, wakeWaiting } from './retry-chain.ts';

/**
 * What became of one chunk-queue delivery. `failed`: its failure is settled (noted, delayed or parked);
 * `retry` means the delivery must be reported as failed so SQS brings it back, `requeued` that a
 * delayed copy was sent and this one may be acknowledged.
 */
export type LoadDelivery =
  | { kind: 'chunk'; message: ChunkMessage; outcome: LoadOutcome }
  | { kind: 'orphans'; message: OrphanMessage; outcome: OrphanOutcome }
  | { kind: 'failed'; settled: Settled; error: unknown };

/** A delivery's body as a load message, or why it is none (the delivery then fails like any other). */
export function parseLoadMessage(body: string): LoadMessage | Error {
  const parsed = LoadMessage.safeParse(safeJson(body));
  return parsed.success ? parsed.data : new Error(`not a dropload message: ${parsed.error.message}`);
}

/**
 * The load stage for one delivery, as the load Lambda runs it: a chunk is loaded and the next one sent
 * (for datasets that load in order), or waiting rows are retried; a file this finished gets its receipt.
 * A failure is noted in the ledger and settled (shared/pipeline/retries.ts), then returned, not thrown.
 */
export async function handleLoadMessage(
  deps: PipelineDeps,
  record: SQSRecord,
  message: LoadMessage | Error,
): Promise<LoadDelivery> {
  try {
    if (message instanceof Error) throw message;
    if (isOrphanMessage(message))
      return { kind: 'orphans', message, outcome: await retryWaiting(deps, message) };
    return { kind: 'chunk', message, outcome: await loadOne(deps, message, deliveryOf(record)) };
  } catch (error) {
    // A body that is no chunk: nothing to note it on; retried, then parked for a person to look at.
    const note = (failure: FailedDelivery) =>
      message instanceof Error ? Promise.resolve() : noteFailure(deps, message, failure);
    return {
      kind: 'failed',
      settled: await settleFailure(deps, deps.chunkQueueUrl, record, error, note),
      error,
    };
  }
}

async function loadOne(deps: PipelineDeps, message: ChunkMessage, delivery: Delivery): Promise<LoadOutcome> {
  const outcome = await loadChunk(deps, message, delivery);
  if (outcome.result !== 'file-failed') await continueInOrder(deps, message);
  const dataset = deps.config.datasets.find((d) => d.name === message.dataset);
  // After the commit, so the retry sees the rows: files waiting on them load now, not at their next backoff.
  if (dataset && madeRowsVisible(dataset, outcome)) await wakeWaiting(deps, tablesOf(dataset));
  const file = outcome.finishedFile ?? outcome.waitingFile;
  if (file) await writeReceipt(deps, file);
  // Files whose rejects this chunk resolved: their receipts say so now.
  await writeReceiptsOf(deps, outcome.resolved?.map((r) => r.fileId) ?? []);
  return outcome;
}

/** Whether this delivery's commit put rows into the dataset's tables that rows waiting elsewhere may need. */
function madeRowsVisible(dataset: Dataset, outcome: LoadOutcome): boolean {
  if (outcome.result !== 'loaded') return false;
  // Staged rows are visible once the file publishes, in its last chunk's transaction.
  if (dataset.publish === 'file') return outcome.finishedFile?.state === 'loaded';
  // A multi-table chunk's counts are its first table's: any of its tables may have got rows.
  if (dataset.kind === 'targets') return true;
  return outcome.inserted > 0;
}

/** Rows waiting for their parents: retried (and, past their wait, rejected) in one transaction. */
async function retryWaiting(deps: PipelineDeps, message: OrphanMessage): Promise<OrphanOutcome> {
  const outcome = await retryOrphans(deps, message);
  if (outcome.finishedFile) await writeReceipt(deps, outcome.finishedFile);
  return outcome;
}

async function noteFailure(deps: PipelineDeps, message: LoadMessage, failure: FailedDelivery): Promise<void> {
  // Waiting rows are the file's, not a chunk's; the file keeps loading while they wait.
  if (isOrphanMessage(message)) {
    await recordFileAttempt(
      deps.db,
      { id: message.fileId },
      { text: `retrying its waiting rows: ${failure.text}`, parked: false },
    );
    return;
  }
  await recordChunkAttempt(deps.db, { fileId: message.fileId, index: message.index }, failure);
  // A stalled file's receipt says so, with the reason, while it waits for a replay.
  const file = failure.parked ? await getFile(deps.db, message.fileId) : undefined;
  if (file?.state === 'stalled') await writeReceipt(deps, file);
}

function safeJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}
