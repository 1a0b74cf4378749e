import type { Dataset } from '../config/dataset.ts';
import type { FileRow } from '../ledger/schema.ts';

/** A chunk of the failing file: its index, its first line, and whether its rows were committed. */
export interface ChunkPart {
  idx: number;
  first_line: number;
  state: string;
}

/**
 * What a failure says about a file some of whose chunks had committed rows before it (a file renamed
 * or deleted while it loaded): its message alone ("… no longer exists") would read as if nothing loaded.
 * Says which chunks loaded, how many of its rows are in the table, that the rest were not, and how to
 * remove those rows: by the file id its rows carry (`sourceColumn`), or else by the lines they came from.
 */
export function partialFailure(
  dataset: Dataset | undefined,
  file: FileRow,
  chunks: ChunkPart[],
  reason: string,
): { error: string; action: string } {
  const loaded = chunks.filter((c) => c.state === 'loaded');
  const total = file.chunk_count ?? chunks.length;
  const tables = dataset?.kind === 'table' ? `table ${dataset.table}` : 'its tables';
  const rows = file.rows_inserted + file.rows_updated;
  const error =
    `${reason}; chunk(s) ${loaded.map((c) => c.idx + 1).join(', ')} of ${total} had loaded before that: ` +
    `${rows} rows of this file are in ${tables} (${file.rows_inserted} inserted, ${file.rows_updated} updated), ` +
    `the other ${total - loaded.length} chunk(s) were not loaded`;
  const remove =
    dataset?.kind === 'table' && dataset.sourceColumn
      ? `delete from ${dataset.table} where ${dataset.sourceColumn} = ${file.id}`
      : `delete its rows from lines ${lineRanges(loaded, chunks)} of the file by their keys (the rows carry no file id: no sourceColumn)`;
  const action =
    `${rows} rows of it stay in ${tables}: if it was renamed or replaced, the new key loads in full, so remove them (${remove}); ` +
    'otherwise remove them and drop the file again';
  return { error, action };
}

/** The lines of the loaded chunks, adjacent chunks as one range: a chunk ends before the next one's first line. */
function lineRanges(loaded: ChunkPart[], chunks: ChunkPart[]): string {
  const ranges: { from: number; next: ChunkPart | undefined }[] = [];
  for (const c of loaded) {
    const next = chunks.find((o) => o.idx === c.idx + 1);
    const last = ranges.at(-1);
    if (last && last.next?.idx === c.idx) last.next = next;
    else ranges.push({ from: c.first_line, next });
  }
  return ranges.map((r) => `${r.from}–${r.next ? r.next.first_line - 1 : 'end'}`).join(', ');
}
