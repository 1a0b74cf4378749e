/** SQS caps a message's visibility timeout at 12 hours; retries of a transient failure stay well below. */
const MAX_BACKOFF_SECONDS = 15 * 60;

/** Exponential backoff with full jitter for the nth receive of a message (1-based). */
export function backoffSeconds(
  receiveCount: number,
  baseSeconds = 2,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(MAX_BACKOFF_SECONDS, baseSeconds * 2 ** Math.max(0, receiveCount - 1));
  return Math.max(1, Math.round(ceiling * random()));
}
