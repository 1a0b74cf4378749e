import type { TargetsDataset } from '../config/dataset.ts';
import { parseText } from '../formats/parsing.ts';
import { validateRecords } from './validation.ts';
import { type JsonMarks, type TargetRow, unitOf } from './write/relations.ts';

/** A parked record as `claimWaiting` gives it: its line as read, where it was. */
interface ParkedLine {
  raw: string;
  line: number;
  chunk_idx: number;
}

/**
 * The rows of a record parked by older code (`parkedBefore`), made anew from its line as a load reads
 * it: that code stored an NDJSON string for a json/jsonb column as read, and written so now it would be
 * JSON text (`[1,2]` the array, `ok` refused), not the JSON string a record loaded today is. Undefined
 * when the line no longer makes a record (the schema changed since): its stored rows go as they are.
 */
export function rowsReadAgain(
  dataset: TargetsDataset,
  marks: readonly JsonMarks[],
  parked: ParkedLine,
): TargetRow[][] | undefined {
  const options = { format: dataset.format, delimiter: dataset.delimiter, quote: dataset.quote };
  const records = parseText(parked.raw, { ...options, firstLine: parked.line });
  if (records.length !== 1) return undefined;
  const row = validateRecords(dataset, records).rows[0];
  if (!row) return undefined;
  try {
    return unitOf(dataset, row, parked.chunk_idx, marks).rows;
  } catch {
    // A value that cannot be written: the stored rows go, and are refused, as they would have been.
    return undefined;
  }
}
