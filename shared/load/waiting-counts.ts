import type { Transaction } from 'kysely';
import { moveCounts } from '../ledger/ledger.ts';
import type { Database } from '../ledger/schema.ts';
import { waitingLines } from '../ledger/waiting.ts';
import type { WriteCounts } from './write/statement.ts';

/** What the records a retry of waiting rows finished became (rejected ones are counted as they are rejected). */
export interface SettledCounts extends WriteCounts {
  unchanged: number;
}

/**
 * After a retry of a file's waiting rows (its rejects already counted): the records of `chunks` that wait
 * no more leave `waiting` for `inserted`/`updated` (the retry's records, counted as the writer counts
 * them: see `recordOutcomes`) or `unchanged`, on their chunk and the file. Which of a retry's records inserted and which
 * updated is not known per chunk: the counts go to the chunks in order, so each chunk's total is its own.
 */
export async function settleWaiting(
  trx: Transaction<Database>,
  fileId: number,
  chunks: number[],
  counted: WriteCounts,
): Promise<SettledCounts> {
  const left = { inserted: counted.inserted, updated: counted.updated };
  const total: SettledCounts = { inserted: 0, updated: 0, unchanged: 0 };
  for (const c of await waitingLines(trx, fileId, chunks)) {
    const settled = c.counted - c.now;
    if (settled === 0) continue;
    const inserted = Math.max(0, Math.min(left.inserted, settled));
    const updated = Math.max(0, Math.min(left.updated, settled - inserted));
    const unchanged = settled - inserted - updated;
    left.inserted -= inserted;
    left.updated -= updated;
    total.inserted += inserted;
    total.updated += updated;
    total.unchanged += unchanged;
    await moveCounts(trx, { fileId, chunkIdx: c.idx }, { waiting: -settled, inserted, updated, unchanged });
  }
  return total;
}
