/**
 * How long dropload keeps retrying a message that fails, stated in time and derived in one place for
 * the CDK stack, the local runner, the handlers and the CLI's messages.
 *
 * A failed delivery comes back after an exponential backoff with "equal jitter": a delay drawn from
 * [ceiling / 2, ceiling], so the retries of one message always take at least the sum of the halves.
 * The queue's `maxReceiveCount` is the smallest number of deliveries whose guaranteed delays add up
 * to the budget: an outage shorter than the budget is outlived by the last delivery, without a replay.
 */
export interface RetryPolicy {
  /** Ceiling of the first delay. */
  readonly baseSeconds: number;
  /** Largest ceiling: how long a message may wait after the cause is gone. */
  readonly capSeconds: number;
  /** Failures for at least this long before a message is parked in its dead-letter queue. */
  readonly budgetSeconds: number;
}

/** dropload's: it outlives a database outage (a failover, a restart, a maintenance window) of 15 minutes. */
export const RETRY_POLICY: RetryPolicy = { baseSeconds: 2, capSeconds: 60, budgetSeconds: 15 * 60 };

/** SQS caps a visibility change or a message delay at these; the policy stays below them. */
export const MAX_SQS_DELAY_SECONDS = 900;

/**
 * The shortest visibility dropload asks for when it hands a received message back ("again soon"), never
 * 0: fauxqs keeping its state on disk (`dev`) loses a message whose visibility is changed to 0 (its
 * SQLite row refuses the NULL receive count it writes, after the message left the in-flight list and
 * before it is queued again). One second changes nothing that matters on SQS.
 */
export const MIN_VISIBILITY_SECONDS = 1;

const ceiling = (policy: RetryPolicy, receiveCount: number): number =>
  Math.min(policy.capSeconds, policy.baseSeconds * 2 ** Math.max(0, receiveCount - 1));

/** The least delay after the nth delivery (1-based) fails. */
export const minRetryDelaySeconds = (policy: RetryPolicy, receiveCount: number): number =>
  Math.max(1, Math.ceil(ceiling(policy, receiveCount) / 2));

/** The delay after the nth delivery (1-based) fails: whole seconds in [ceiling / 2, ceiling]. */
export function retryDelaySeconds(
  policy: RetryPolicy,
  receiveCount: number,
  random: () => number = Math.random,
): number {
  const low = minRetryDelaySeconds(policy, receiveCount);
  const high = Math.max(low, Math.round(ceiling(policy, receiveCount)));
  return Math.min(MAX_SQS_DELAY_SECONDS, low + Math.floor(random() * (high - low + 1)));
}

/** Deliveries before SQS parks a message: the fewest whose guaranteed delays cover the budget. */
export function maxReceiveCount(policy: RetryPolicy): number {
  let waited = 0;
  let deliveries = 1;
  while (waited < policy.budgetSeconds) {
    waited += minRetryDelaySeconds(policy, deliveries);
    deliveries++;
  }
  return deliveries;
}

/** The budget in words: "15 min", "8 s". */
export function budgetText(policy: RetryPolicy): string {
  const s = policy.budgetSeconds;
  return s % 60 === 0 ? `${s / 60} min` : `${s} s`;
}

/** "for at least 15 min (35 deliveries, backoff 2 s doubling to 60 s)": for messages and the README. */
export function describeRetries(policy: RetryPolicy): string {
  return `for at least ${budgetText(policy)} (${maxReceiveCount(policy)} deliveries, backoff ${policy.baseSeconds} s doubling to ${policy.capSeconds} s)`;
}
