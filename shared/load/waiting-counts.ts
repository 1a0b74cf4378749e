import type { Transaction } from 'kysely';
import { moveCounts } from '../ledger/ledger.ts';
import type { Database } from '../ledger/schema.ts';
import { waitingLines } from '../ledger/waiting.ts';
import { type WrittenCounts, writtenAs } from './write/records.ts';
import type { WriteCounts } from './write/statement.ts';

/**
 * After a retry of a file's waiting rows (its rejects already counted): the records of `chunks` that
 * wait no more leave `waiting` for `inserted`/`updated` (the retry's records, counted as the writer
 * counts them: see `recordOutcomes`) or `unchanged`, on their chunk and the file; returns what they
 * became. Which of a retry's records inserted and which updated is not known per chunk: the counts go to
 * the chunks in order, so each chunk's total is its own.
 */
export async function settleWaiting(
  trx: Transaction<Database>,
  fileId: number,
  chunks: number[],
  counted: WriteCounts,
): Promise<WrittenCounts> {
  const left = { inserted: counted.inserted, updated: counted.updated };
  const total: WrittenCounts = { inserted: 0, updated: 0, unchanged: 0 };
  for (const c of await waitingLines(trx, fileId, chunks)) {
    const settled = c.counted - c.now;
    if (settled === 0) continue;
    const { inserted, updated, unchanged } = writtenAs(settled, left);
    left.inserted -= inserted;
    left.updated -= updated;
    total.inserted += inserted;
    total.updated += updated;
    total.unchanged += unchanged;
    await moveCounts(trx, { fileId, chunkIdx: c.idx }, { waiting: -settled, inserted, updated, unchanged });
  }
  return total;
}
