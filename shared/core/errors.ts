/**
 * dropload's error taxonomy. Every failure is classified once, by `classifyError`, into what the
 * pipeline does with it: retry it (transient), reject the rows it names (data), fail the file with a
 * reason (file), or let the message go on to its dead-letter queue (anything else: a bug or a setup
 * problem an operator must fix).
 */

/** Bad configuration: raised at start-up, naming the setting. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** A command used wrongly (an unknown dataset, a bad option value): the CLI prints it and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A ledger or dataset migration failed: the database is not at the schema the code expects. */
export class MigrationError extends Error {
  override name = 'MigrationError';
}

/** What to do about a failed file none of whose rows loaded: a new drop of it loads from scratch. */
export const DROP_AGAIN = 'nothing of it was loaded: fix what the error says and drop the file again';

/**
 * The file itself cannot be loaded (empty, wrong header, no dataset, gone). Recorded on the file with
 * its `action`, what whoever dropped it should do (each class has its own); never retried.
 */
export class FileRejectedError extends Error {
  override name = 'FileRejectedError';
  readonly action: string;
  constructor(message: string, options?: ErrorOptions & { action?: string }) {
    super(message, options);
    this.action = options?.action ?? DROP_AGAIN;
  }
}

/**
 * The object was overwritten after its split: the version announced is gone and a newer version of its
 * key loads on its own. What that newer version does to rows this one committed depends on the dataset
 * (shared/pipeline/partial-failure.ts).
 */
export class OverwrittenError extends FileRejectedError {
  override name = 'OverwrittenError';
}

/** The table is missing or lacks a column the dataset writes: fails the file (drop it again once migrated). */
export class TableShapeError extends FileRejectedError {
  override name = 'TableShapeError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, {
      ...options,
      action:
        'nothing of it was loaded: create or migrate the table (`npx dropload migrate`), then drop the file again',
    });
  }
}

/** A request to `dropload console` it will not serve (a foreign origin, a bad body): answered with `status`. */
export class RequestRefusedError extends Error {
  override name = 'RequestRefusedError';
  readonly status: number;
  constructor(status: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
  }
}

/** Worth another try later: connection trouble, serialization failures, throttling. */
export class TransientError extends Error {
  override name = 'TransientError';
}

export type ErrorClass = 'transient' | 'data' | 'file' | 'fatal';

/** SQLSTATEs that say "try again": connection exceptions, serialization/deadlock, resources, shutdown, lock timeouts. */
const TRANSIENT_SQLSTATE = /^(08...|40001|40P01|53...|57P0[123]|55P03|57014)$/;
/** SQLSTATE classes 22 (data exception) and 23 (integrity constraint): a row's values are at fault. */
const DATA_SQLSTATE = /^(22...|23...)$/;
const TRANSIENT_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);
const TRANSIENT_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|socket hang up/i;

interface ErrorFields {
  code?: unknown;
  name?: unknown;
  message?: unknown;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: number };
}

export function sqlState(err: unknown): string | undefined {
  const code = (err as ErrorFields | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

export function classifyError(err: unknown): ErrorClass {
  if (err instanceof TransientError) return 'transient';
  if (err instanceof FileRejectedError) return 'file';
  const e = (err ?? {}) as ErrorFields;
  // Before the SQLSTATE test: EPIPE is five capitals too, and would read as an unknown (fatal) SQLSTATE.
  if (typeof e.code === 'string' && TRANSIENT_NODE_CODES.has(e.code)) return 'transient';
  const state = sqlState(err);
  if (state) {
    if (TRANSIENT_SQLSTATE.test(state)) return 'transient';
    if (DATA_SQLSTATE.test(state)) return 'data';
    return 'fatal';
  }
  if (e.$retryable || (e.$metadata?.httpStatusCode ?? 0) >= 500) return 'transient';
  if (typeof e.name === 'string' && /Throttl|SlowDown|RequestTimeout|TimeoutError/.test(e.name))
    return 'transient';
  if (typeof e.message === 'string' && TRANSIENT_MESSAGES.test(e.message)) return 'transient';
  return 'fatal';
}

/** SQLSTATE classes 08 (connection exception) and 57P01–03 (the server shutting down or starting). */
const UNREACHABLE_SQLSTATE = /^(08...|57P0[123])$/;

/**
 * The database (or the network to it) is not there, rather than refusing one statement: a connection
 * refused, reset or timed out. What an outage looks like from any query, whatever it was for.
 */
export function isConnectionLoss(err: unknown): boolean {
  const e = (err ?? {}) as ErrorFields;
  if (typeof e.code === 'string' && TRANSIENT_NODE_CODES.has(e.code)) return true;
  const state = sqlState(err);
  if (state) return UNREACHABLE_SQLSTATE.test(state);
  return typeof e.message === 'string' && TRANSIENT_MESSAGES.test(e.message);
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
