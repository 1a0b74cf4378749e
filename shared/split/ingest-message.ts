import type { SQSRecord } from 'aws-lambda';
import { type ObjectRef, objectRefsFromBody } from '../aws/s3-events.ts';
import { isOwnKey } from '../core/bucket-layout.ts';
import { ConfigError } from '../core/errors.ts';
import { getFile, recordFileAttempt } from '../ledger/ledger.ts';
import { splitFailureText } from '../ledger/resumes.ts';
import { FINAL_STATES } from '../ledger/schema.ts';
import { replayCommand, writeReceipt } from '../pipeline/receipts.ts';
import { type FailedDelivery, type Settled, settleFailure } from '../pipeline/retries.ts';
import type { PipelineDeps } from '../pipeline/services.ts';
import { type SplitOutcome, splitObject } from './split-service.ts';

/**
 * What became of one ingest-queue delivery: the objects split before it ended (all of them unless it
 * failed) and, when it failed, how the failure was settled: `retry` means the delivery must be reported
 * as failed so SQS brings it back, `requeued` that a delayed copy was sent and this one may be acknowledged.
 */
export interface IngestDelivery {
  splits: SplitOutcome[];
  failed?: { settled: Settled; error: unknown };
}

/** A delivery's body as the objects its S3 event announces, or why it is none (the delivery then fails). */
export function parseIngestMessage(body: string): ObjectRef[] | Error {
  try {
    return objectRefsFromBody(body);
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/**
 * The split stage for one delivery, as the split Lambda runs it: each announced object is split into
 * chunks, and one that is finished already (failed, skipped, or with no rows) gets its receipt. A failure is noted in
 * the ledger and settled (shared/pipeline/retries.ts), then returned rather than thrown.
 */
export async function handleIngestMessage(
  deps: PipelineDeps,
  record: SQSRecord,
  refs: ObjectRef[] | Error,
): Promise<IngestDelivery> {
  const splits: SplitOutcome[] = [];
  try {
    if (refs instanceof Error) throw refs;
    for (const ref of refs.filter((r) => !isOwnKey(r.key))) splits.push(await splitOne(deps, ref));
    return { splits };
  } catch (error) {
    const note = (failure: FailedDelivery) =>
      refs instanceof Error ? Promise.resolve() : noteFailure(deps, refs, failure);
    return {
      splits,
      failed: { settled: await settleFailure(deps, ingestQueue(deps), record, error, note), error },
    };
  }
}

/**
 * A file that finished in the split step gets its receipt here: failed, skipped, or loaded with no
 * chunk (a header and no rows), which no load step will ever see. A duplicate's was written already.
 */
async function splitOne(deps: PipelineDeps, ref: ObjectRef): Promise<SplitOutcome> {
  const outcome = await splitObject(deps, ref);
  const final =
    outcome.result === 'failed' ||
    outcome.result === 'skipped' ||
    (outcome.result === 'split' && outcome.chunks === 0);
  const file = final ? await getFile(deps.db, outcome.fileId) : undefined;
  if (file && FINAL_STATES.includes(file.state)) await writeReceipt(deps, file);
  return outcome;
}

/**
 * Noted on each announced file the ledger has (one that never registered has no row to note it on).
 * Parked, the message is in the ingest queue's DLQ, even when the split had planned chunks; the stalled
 * file's receipt says so.
 */
async function noteFailure(deps: PipelineDeps, refs: ObjectRef[], failure: FailedDelivery): Promise<void> {
  for (const { etag, ...ref } of refs) {
    if (!etag) continue;
    const replay = replayCommand(ref.key, 'ingest');
    const text = splitFailureText(failure.text);
    const file = await recordFileAttempt(deps.db, { ...ref, etag }, { ...failure, text, replay });
    if (failure.parked && file?.state === 'stalled') await writeReceipt(deps, file);
  }
}

function ingestQueue(deps: PipelineDeps): string {
  if (!deps.ingestQueueUrl) throw new ConfigError('DROPLOAD_INGEST_QUEUE_URL is not set');
  return deps.ingestQueueUrl;
}
