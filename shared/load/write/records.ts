import type { WriteCounts } from './statement.ts';

/**
 * What became of records (lines) of a multi-table dataset written together, in records, as `read` counts
 * them: rejected, waiting (a row of the record waits for its parent), or written. A written record counts
 * as inserted when one of its rows was inserted, else updated when one was updated, else unchanged
 * (`counted`: the writer's records, see `recordOutcomes` in relations.ts), whatever the order of the
 * targets; what each table got is counted apart, in rows. read = inserted + updated + unchanged +
 * waiting + rejected holds.
 */
export interface RecordCounts extends WrittenCounts {
  waiting: number;
  rejected: number;
}

/** Written records: inserted, updated or unchanged. */
export interface WrittenCounts extends WriteCounts {
  unchanged: number;
}

/**
 * `written` records, as many inserted and then updated as the writer counted (`counted`, at most), the
 * rest unchanged: how both a chunk (`recordCounts`) and a retry of waiting rows (`settleWaiting`) share
 * the writer's counts out over records.
 */
export function writtenAs(written: number, counted: WriteCounts): WrittenCounts {
  const inserted = Math.max(0, Math.min(counted.inserted, written));
  const updated = Math.max(0, Math.min(counted.updated, written - inserted));
  return { inserted, updated, unchanged: written - inserted - updated };
}

export function recordCounts(
  records: number,
  counted: WriteCounts,
  lines: { rejected: Iterable<number>; waiting: Iterable<number> },
): RecordCounts {
  const rejected = new Set(lines.rejected);
  const waiting = new Set([...lines.waiting].filter((line) => !rejected.has(line)));
  const written = Math.max(0, records - rejected.size - waiting.size);
  return { ...writtenAs(written, counted), waiting: waiting.size, rejected: rejected.size };
}
