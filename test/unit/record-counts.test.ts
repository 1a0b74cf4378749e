import { describe, expect, it } from 'vitest';
import { recordCounts } from '../../shared/load/write/records.ts';

describe('recordCounts (a multi-table dataset counts records)', () => {
  it('a record with rows waiting is waiting once, not loaded; the rest of the written records are unchanged', () => {
    // 10 records: lines 2 and 3 rejected, 5 and 7 wait (7 with two rows), 6 written records: 3 inserted, 1 updated.
    const counts = recordCounts(10, { inserted: 3, updated: 1 }, { rejected: [2, 3], waiting: [5, 7, 7] });
    expect(counts).toEqual({ inserted: 3, updated: 1, unchanged: 2, waiting: 2, rejected: 2 });
  });

  it('a rejected record is not waiting too', () => {
    expect(recordCounts(3, { inserted: 1, updated: 0 }, { rejected: [4], waiting: [4, 5] })).toEqual({
      inserted: 1,
      updated: 0,
      unchanged: 0,
      waiting: 1,
      rejected: 1,
    });
  });

  it('counted-table rows beyond the written records (another row of the record waits) are not counted twice', () => {
    // 4 records, 3 waiting: their counted-table rows were inserted all the same (4), but 1 record is written.
    const counts = recordCounts(4, { inserted: 4, updated: 0 }, { rejected: [], waiting: [2, 3, 4] });
    expect(counts).toEqual({ inserted: 1, updated: 0, unchanged: 0, waiting: 3, rejected: 0 });
    expect(counts.inserted + counts.updated + counts.unchanged + counts.waiting + counts.rejected).toBe(4);
  });
});
