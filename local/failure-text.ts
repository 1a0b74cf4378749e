import type { SQSRecord } from 'aws-lambda';
import { isOrphanMessage } from '../shared/aws/messages.ts';
import { parseLoadMessage } from '../shared/load/load-message.ts';
import { parseIngestMessage } from '../shared/split/ingest-message.ts';
import { RECEIVE_AGAIN_MS, type SourceFailure } from './event-source.ts';
import type { QueuePair } from './local-stack.ts';

/** A queue the local runner consumes, as its failures name it. */
export type FailingQueue = Pick<QueuePair, 'visibilityTimeoutSeconds' | 'maxReceiveCount'> & {
  name: 'ingest' | 'chunks';
};

const STAGE = { ingest: 'split', chunks: 'load' } as const;

/** What a record's message is about: the file (and chunk) it names, as an operator looks them up. */
export function recordSubject(queue: FailingQueue['name'], record: SQSRecord): string {
  if (queue === 'ingest') {
    const refs = parseIngestMessage(record.body);
    if (refs instanceof Error) return 'a message that is no S3 event';
    return refs.map((r) => `s3://${r.bucket}/${r.key}`).join(', ');
  }
  const message = parseLoadMessage(record.body);
  if (message instanceof Error) return 'a message that is no dropload message';
  if (isOrphanMessage(message))
    return `the waiting rows of file ${message.fileId} (retry ${message.attempt})`;
  return `s3://${message.bucket}/${message.key} chunk ${message.index + 1} of ${message.count}`;
}

/** An error as one line: its name (TimeoutError, …) and message. */
export const errorText = (err: unknown) =>
  err instanceof Error ? `${err.name}: ${err.message}` : String(err);

/**
 * An event source's failure in words, a line per record it concerns: which file and chunk, what failed,
 * and what happens next (received again, retried when the message comes back, and for how long).
 */
export function sourceFailureText(err: unknown, failure: SourceFailure, queue: FailingQueue): string[] {
  const why = errorText(err);
  const back = `its message comes back after the visibility timeout (${queue.visibilityTimeoutSeconds} s)`;
  if (failure.stage === 'receive')
    return [
      `could not receive from the ${queue.name} queue (${why}): receiving again in ${RECEIVE_AGAIN_MS / 1000} s; its messages stay queued`,
    ];
  if (failure.stage === 'delete')
    return failure.records.map(
      (r) =>
        `${STAGE[queue.name]} of ${recordSubject(queue.name, r)} finished, but its message could not be deleted (${why}): ${back} and is then found done`,
    );
  return failure.records.map((r) => {
    const delivery = Number(r.attributes.ApproximateReceiveCount);
    const next =
      delivery < queue.maxReceiveCount
        ? `retried: ${back} (delivery ${delivery} of ${queue.maxReceiveCount} before it is parked in the dead-letter queue)`
        : `not retried: this was its last delivery (${delivery} of ${queue.maxReceiveCount}), its message goes to the dead-letter queue`;
    return `${STAGE[queue.name]} of ${recordSubject(queue.name, r)} failed (${why}); ${next}`;
  });
}
