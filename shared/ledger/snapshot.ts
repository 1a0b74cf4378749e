import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';

/**
 * Runs `read` on one snapshot of the ledger (a REPEATABLE READ, READ ONLY transaction): what it reads in
 * several statements (a file's row, then its open rejects) agrees, though chunks commit meanwhile; read
 * apart, a chunk committing between them shows counts no moment had (`rejected 52, open 53`). Inside a
 * transaction already, `read` runs in that one.
 */
export async function readSnapshot<T>(
  db: Kysely<Database>,
  read: (snapshot: Kysely<Database>) => Promise<T>,
): Promise<T> {
  if (db.isTransaction) return read(db);
  return db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(read);
}
