import { CommanderError } from 'commander';
import { ConfigError, sqlState, UsageError } from '../shared/core/errors.ts';
import { capped } from '../shared/core/text.ts';

/** What the CLI prints for an error that ended a command, and the exit code it ends with. */
export interface Outcome {
  /** One or two lines, without the `dropload: ` prefix; empty when something printed it already. */
  message: string;
  exitCode: number;
  /** Whether the stack trace helps (a bug, not a setup the message explains); shown with --verbose only. */
  unexpected: boolean;
}

interface ErrorFields {
  code?: unknown;
  port?: unknown;
  address?: unknown;
  /** An AggregateError's attempts: `localhost` refused on ::1 and on 127.0.0.1. */
  errors?: unknown;
  message?: unknown;
  cause?: unknown;
}

/** The error and its causes, outermost first (a wrapped EADDRINUSE or SQLSTATE is found under them). */
function chain(err: unknown): ErrorFields[] {
  const seen: ErrorFields[] = [];
  let e: unknown = err;
  while (e && typeof e === 'object' && !seen.includes(e as ErrorFields) && seen.length < 10) {
    seen.push(e as ErrorFields);
    e = (e as ErrorFields).cause;
  }
  return seen;
}

/** `relation "dropload.file" does not exist` (42P01) or `schema "dropload" does not exist` (3F000). */
function ledgerMissing(e: ErrorFields): boolean {
  const state = sqlState(e);
  const message = typeof e.message === 'string' ? e.message : '';
  return (
    (state === '42P01' && /relation "dropload\./.test(message)) ||
    (state === '3F000' && /schema "dropload"/.test(message))
  );
}

/**
 * The one place an error that ends a command becomes a message and an exit code: usage and
 * configuration mistakes exit 2, every other failure 1. Known setups (an unmigrated ledger, a busy port)
 * say what fixes them; anything else prints its message, and its stack under --verbose.
 */
export function outcomeOf(err: unknown): Outcome {
  // Commander printed its own message (a missing argument, an unknown option) or the help.
  if (err instanceof CommanderError) {
    return { message: '', exitCode: err.exitCode === 0 ? 0 : 2, unexpected: false };
  }
  if (err instanceof UsageError || err instanceof ConfigError) {
    return { message: err.message, exitCode: 2, unexpected: false };
  }
  for (const e of chain(err)) {
    if (ledgerMissing(e)) {
      return {
        message: 'the ledger is not set up in this database: run `npx dropload migrate` first',
        exitCode: 1,
        unexpected: false,
      };
    }
    if (e.code === 'EADDRINUSE') {
      const port = typeof e.port === 'number' ? `port ${e.port}` : 'a port dropload listens on';
      return {
        message: `${port} is in use: pass \`--port N\` or stop what holds it`,
        exitCode: 1,
        unexpected: false,
      };
    }
    if (e.code === 'ECONNREFUSED') {
      const attempt = (Array.isArray(e.errors) ? e.errors[0] : e) as ErrorFields;
      const where =
        typeof attempt.address === 'string'
          ? `${attempt.address}:${String(attempt.port)}`
          : 'the database or endpoint';
      return {
        // The same refusal comes from Postgres and from S3/SQS: the address says which.
        message: `nothing answers at ${where} (connection refused): start it, or check DATABASE_URL and AWS_ENDPOINT_URL`,
        exitCode: 1,
        unexpected: false,
      };
    }
  }
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  // One line however the message was written: the stack, under --verbose, has the rest.
  return { message: capped(message.replace(/\s*\n\s*/g, ' '), 1000), exitCode: 1, unexpected: true };
}

/** The text printed on stderr for `err`: the message, and the stack when --verbose asks for it. */
export function errorText(err: unknown, verbose: boolean): string {
  const { message, unexpected } = outcomeOf(err);
  const lines = message ? [`dropload: ${message}`] : [];
  if (verbose && err instanceof Error && err.stack && !(err instanceof CommanderError)) lines.push(err.stack);
  else if (unexpected) lines.push('dropload: run with --verbose for the stack trace');
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}
