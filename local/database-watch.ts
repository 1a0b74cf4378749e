import { describeRetries, type RetryPolicy } from '../shared/core/backoff.ts';
import { isConnectionLoss } from '../shared/core/errors.ts';
import { errorText } from './failure-text.ts';

/**
 * What `dev` says about the database being away: once when it goes (loads are retrying, for how long),
 * once when it is back, nothing in between. During an outage every sweep and every load fails the same
 * way; a line per failure would bury the one fact that matters (hundreds of lines a minute).
 */
export interface DatabaseWatch {
  /** A database operation failed: true when it was the database being unreachable (told, or told already). */
  failed(err: unknown): boolean;
  /** A database operation succeeded: if the database was away, it is back. */
  succeeded(): void;
}

export function watchDatabase(
  tell: (line: string, err: unknown) => void,
  retry: RetryPolicy,
  now: () => number = Date.now,
): DatabaseWatch {
  let awaySince: number | undefined;
  return {
    failed(err) {
      if (!isConnectionLoss(err)) return false;
      if (awaySince === undefined) {
        awaySince = now();
        tell(
          `the database is unreachable (${errorText(err)}): loads and the sweep of waiting rows are retrying, each message ${describeRetries(retry)}; a message is parked only once the database can record it`,
          err,
        );
      }
      return true;
    },
    succeeded() {
      if (awaySince === undefined) return;
      const seconds = Math.round((now() - awaySince) / 1000);
      awaySince = undefined;
      tell(`the database is reachable again (unreachable for ${seconds} s): loads go on`, undefined);
    },
  };
}
