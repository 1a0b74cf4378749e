import { sql, type Transaction } from 'kysely';
import type { Database } from '../../ledger/schema.ts';

/**
 * Has Postgres read zoneless timestamp text (`localTimestamp()` values) in the dataset's time zone for
 * the rest of the transaction: COPY and statements alike, whatever the server's or session's default.
 * `set_config(…, true)` is `SET LOCAL` with the name as a parameter.
 */
export async function useTimeZone(trx: Transaction<Database>, timeZone: string): Promise<void> {
  await sql`select set_config('TimeZone', ${timeZone}, true)`.execute(trx);
}
