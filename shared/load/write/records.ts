import type { WriteCounts } from './statement.ts';

/**
 * What became of records (lines) of a multi-table dataset written together, in records, as `read` counts
 * them: rejected, waiting (a row of the record waits for its parent), or written. A written record counts
 * as inserted when one of its rows was inserted, else updated when one was updated, else unchanged
 * (`counted`: the writer's records, see `recordOutcomes` in relations.ts), whatever the order of the
 * targets; what each table got is counted apart, in rows. read = inserted + updated + unchanged +
 * waiting + rejected holds.
 */
export interface RecordCounts extends WriteCounts {
  unchanged: number;
  waiting: number;
  rejected: number;
}

export function recordCounts(
  records: number,
  counted: WriteCounts,
  lines: { rejected: Iterable<number>; waiting: Iterable<number> },
): RecordCounts {
  const rejected = new Set(lines.rejected);
  const waiting = new Set([...lines.waiting].filter((line) => !rejected.has(line)));
  const written = Math.max(0, records - rejected.size - waiting.size);
  const inserted = Math.min(counted.inserted, written);
  const updated = Math.min(counted.updated, written - inserted);
  return {
    inserted,
    updated,
    unchanged: written - inserted - updated,
    waiting: waiting.size,
    rejected: rejected.size,
  };
}
