import type { WriteCounts } from './statement.ts';

/**
 * What became of records (lines) of a multi-table dataset written together, in records, as `read` counts
 * them: rejected, waiting (a row of the record waits for its parent), or written. A written record counts
 * as inserted or updated by its counted (first declared) table's row, else unchanged. The counted
 * table's counts can exceed the written records (its row landed while another row of the same record
 * waits, or a target with `each` writes several rows per record): the excess is not counted again, so
 * read = inserted + updated + unchanged + waiting + rejected holds.
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
