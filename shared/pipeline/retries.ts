import { ChangeMessageVisibilityCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import {
  budgetText,
  MIN_VISIBILITY_SECONDS,
  maxReceiveCount,
  RETRY_POLICY,
  retryDelaySeconds,
} from '../core/backoff.ts';
import { errorMessage } from '../core/errors.ts';
import type { Delivery } from '../ledger/resumes.ts';
import type { PipelineDeps } from './services.ts';

/** Which delivery of its message a record is, as SQS counts them. */
export function deliveryOf(record: SQSRecord): Delivery {
  return {
    count: Number(record.attributes.ApproximateReceiveCount) || 1,
    firstReceivedAt: new Date(Number(record.attributes.ApproximateFirstReceiveTimestamp) || Date.now()),
  };
}

/** What one failed delivery is noted as, where an operator looks; `parked`: its retry budget is spent. */
export interface FailedDelivery {
  deliveries: number;
  text: string;
  parked: boolean;
}

/**
 * `retry`: the message comes back after its backoff (or, parked, goes on to its dead-letter queue);
 * `requeued`: a delayed copy was sent and this delivery may be acknowledged.
 */
export type Settled = 'retry' | 'requeued';

/**
 * Decides what becomes of a message whose handling failed, whatever the cause: it comes back after
 * the policy's backoff, and the failure is noted in the ledger (`note`) so `status` and the receipt
 * say what is happening. When the budget is spent the message is parked in its dead-letter queue —
 * but only once the ledger knows it: if the note cannot be written (the database is the thing that
 * is down) nobody would learn of the parked message, so a delayed copy goes back on the queue instead
 * and the cycle starts again; loads are idempotent, so a copy is never a double.
 */
export async function settleFailure(
  deps: PipelineDeps,
  queueUrl: string,
  record: SQSRecord,
  err: unknown,
  note: (failure: FailedDelivery) => Promise<void>,
): Promise<Settled> {
  const policy = deps.retry ?? RETRY_POLICY;
  const deliveries = deliveryOf(record).count;
  const max = maxReceiveCount(policy);
  const parked = deliveries >= max;
  const delay = parked ? MIN_VISIBILITY_SECONDS : retryDelaySeconds(policy, deliveries);
  const reason = errorMessage(err);
  const text = parked
    ? `failed ${deliveries} deliveries over at least ${budgetText(policy)}; its message is in the dead-letter queue: ${reason}`
    : `delivery ${deliveries} of ${max} failed; next try within ${delay} s: ${reason}`;
  try {
    await note({ deliveries, text, parked });
  } catch (noteErr) {
    deps.logger.warn('could not note the failure in the ledger', {
      error: errorMessage(noteErr),
      reason,
      delivery: deliveries,
      maxDeliveries: max,
      // What becomes of the message: a parked one is not parked unnoted (below).
      next: parked
        ? `budget spent: a delayed copy goes back on the queue, tried again in ${policy.capSeconds} s`
        : `tried again within ${delay} s`,
    });
    if (parked) {
      const again = policy.capSeconds;
      await deps.sqs.send(
        new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: record.body, DelaySeconds: again }),
      );
      deps.logger.error('retry budget spent while the ledger is unreachable; sent a delayed copy', {
        reason,
        deliveries,
        nextTryInSeconds: again,
      });
      return 'requeued';
    }
  }
  // Parked: visible again almost at once, so the queue's redrive moves it on now rather than after its timeout.
  await deps.sqs
    .send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queueUrl,
        ReceiptHandle: record.receiptHandle,
        VisibilityTimeout: delay,
      }),
    )
    .catch((visErr: unknown) =>
      deps.logger.warn('could not delay the retry', { error: errorMessage(visErr) }),
    );
  return 'retry';
}
