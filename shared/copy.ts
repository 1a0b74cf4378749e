import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CompiledQuery, sql, type Transaction } from 'kysely';
import { from as copyFrom } from 'pg-copy-streams';
import type { Database } from './db/schema.ts';

/**
 * `COPY … FROM STDIN` on a Kysely transaction's own connection. Kysely does not hand out its pg
 * client, but it passes a compiled query's `sql` straight to `client.query`, and pg runs any object
 * with a `submit` method as the query itself: so the COPY stream rides through Kysely as a query and
 * lands, in order, on the transaction's connection.
 */

/** PGlite over its socket does not refuse COPY FROM STDIN: it drops the connection. Ask once per database. */
const support = new WeakMap<object, Promise<boolean>>();

async function probe(trx: Transaction<Database>): Promise<boolean> {
  const { rows } = await sql<{ v: string }>`select version() as v`.execute(trx);
  return !/PGlite|emscripten/i.test(rows[0]?.v ?? '');
}

export function copySupported(trx: Transaction<Database>): Promise<boolean> {
  // The adapter is created once per Kysely instance and shared by its transactions: a per-database key.
  const key = trx.getExecutor().adapter;
  let known = support.get(key);
  if (!known) {
    known = probe(trx);
    known.catch(() => support.delete(key));
    support.set(key, known);
  }
  return known;
}

const SPECIAL = /[\\\t\n\r]/;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** One value in COPY's text format: `\N` for null; backslash, tab, newline and CR escaped. */
export function copyValue(value: string | null): string {
  if (value === null) return '\\N';
  return SPECIAL.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c] as string) : value;
}

/**
 * Streams `data` (COPY text-format lines, in pieces) into `statement` on the transaction's connection;
 * resolves to the rows copied. A refused COPY rejects with the server's error (SQLSTATE in `code`).
 */
export async function copyIn(
  trx: Transaction<Database>,
  statement: string,
  data: Iterable<string>,
): Promise<number> {
  const stream = copyFrom(statement);
  const query = { ...CompiledQuery.raw(statement), sql: stream } as unknown as CompiledQuery;
  const submitted = trx.executeQuery(query);
  try {
    // Both must settle: `submitted` fails if the COPY never reached the server, the pipeline if it refused the data.
    await Promise.all([submitted, pipeline(Readable.from(data, { objectMode: false }), stream)]);
  } catch (err) {
    stream.destroy();
    throw err;
  } finally {
    // pg may report the same failure again (a dropped connection errors every query it holds); the
    // caller already has it, and a second 'error' with no listener would crash the process.
    stream.on('error', () => {});
  }
  return stream.rowCount;
}
