import { type Dataset, requiredFields } from '../config/dataset.ts';
import { FileRejectedError } from '../core/errors.ts';
import { withoutNul } from '../core/text.ts';
import { type FilePlan, STRAY_QUOTE_HINT } from './chunking.ts';
import { parseHeader } from './parsing.ts';

/*
 * The checks that refuse a whole file before any row loads: split runs them on every file, and
 * `dropload init` on the files it is given, so both say the same thing about one file.
 */

const decoder = new TextDecoder('utf-8', { fatal: true });

/** The record of a plan that opens a quote and never closes it, taking every line after it along. */
export const openQuote = (plan: FilePlan) => plan.chunks.find((c) => c.unterminated && (c.lines ?? 1) > 1);

/**
 * File-level checks before any row loads; returns the CSV header. Throws FileRejectedError with the reason.
 * `sentBefore`: chunks of the file were sent to load before its end was read (the split sends a plain
 * text file's while it cuts it), so a reason only its end tells cannot say that nothing was loaded.
 */
export function checkFile(
  dataset: Dataset,
  plan: FilePlan,
  size: number,
  sentBefore = false,
): string[] | undefined {
  if (size === 0) throw new FileRejectedError('file is empty (0 bytes)');
  if (dataset.format === 'parquet') return checkColumns(dataset, plan.columns ?? [], 'Parquet schema');
  checkContainer(dataset, plan, size);
  if (dataset.format === 'ndjson') {
    if (plan.records === 0) throw new FileRejectedError('file has no records (only blank lines)');
    return undefined;
  }
  const open = openQuote(plan);
  if (open) {
    // Loading the rows before it and rejecting "one record" would silently drop every line after the quote.
    const loaded = sentBefore
      ? 'they were not loaded: close the quote'
      : 'nothing was loaded: close the quote and drop the file again';
    throw new FileRejectedError(
      `line ${open.firstLine}: a quoted field opened here is never closed, so the remaining ${open.lines} lines (${open.end - open.start} bytes) would read as one value; ${loaded} (${STRAY_QUOTE_HINT})`,
    );
  }
  if (plan.headerOversized) {
    throw new FileRejectedError(
      `header line is longer than maxRecordBytes (${dataset.maxRecordBytes} bytes)`,
    );
  }
  if (!plan.header) throw new FileRejectedError('file has no header line (only blank lines)');
  const head = plan.header;
  if ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)) {
    throw new FileRejectedError('file is UTF-16 encoded; save it as UTF-8');
  }
  try {
    decoder.decode(head);
  } catch {
    throw new FileRejectedError(
      `header (line ${plan.headerLine}) is not valid UTF-8; save the file as UTF-8`,
    );
  }
  if (plan.records === 0 && /\r[^\n]/.test(new TextDecoder().decode(head))) {
    throw new FileRejectedError(
      'file uses CR-only line endings (classic Mac); save it with LF or CRLF line endings',
    );
  }
  return checkColumns(dataset, parseHeader(head, dataset.delimiter, dataset.quote), 'header');
}

/** Magic numbers of what is often dropped by mistake as text, each with what to do about it. */
const CONTAINERS: { magic: number[]; what: (dataset: Dataset) => string }[] = [
  { magic: [0x1f, 0x8b], what: () => 'a gzip inside a gzip: gunzip it once before dropping' },
  {
    magic: [0x50, 0x4b, 0x03, 0x04],
    what: () =>
      'a zip archive: dropload reads CSV/NDJSON/Parquet, optionally gzipped; unzip it and drop the files',
  },
  {
    // "PAR1" and the first page header's first byte (Thrift: field 1, an i32): a CSV header may start "PAR1".
    magic: [0x50, 0x41, 0x52, 0x31, 0x15],
    what: (d) =>
      `a Parquet file, but dataset "${d.name}" reads ${d.format === 'csv' ? 'CSV' : 'NDJSON'}: drop it under a Parquet dataset's prefix`,
  },
];

/**
 * A CSV or NDJSON dataset's file whose content is no text at all (checked after any gunzip): said as
 * what it is, rather than as the header's encoding or blank lines it would otherwise fail on.
 */
function checkContainer(dataset: Dataset, plan: FilePlan, size: number): void {
  // Bytes in the object, none in its content: only a gzip expands to nothing.
  if (plan.bytes === 0 && size > 0) throw new FileRejectedError('file is an empty gzip (no bytes inside)');
  const leading = plan.leading ?? new Uint8Array(0);
  const found = CONTAINERS.find(({ magic }) => magic.every((b, i) => leading[i] === b));
  if (found) throw new FileRejectedError(`file is ${found.what(dataset)}`);
}

/** The file's columns (a CSV header, a Parquet schema) against the dataset's fields. */
function checkColumns(dataset: Dataset, columns: string[], where: 'header' | 'Parquet schema'): string[] {
  const nul = columns.findIndex((c) => c.includes('\u0000'));
  if (nul >= 0) {
    // Postgres text cannot hold NUL: such a name could be neither matched nor stored as the file's columns.
    throw new FileRejectedError(
      `${where} column ${nul + 1} ("${withoutNul(columns[nul] as string)}") contains a NUL byte; remove it and drop the file again`,
    );
  }
  const seen = new Map<string, number>();
  columns.forEach((c, i) => {
    const first = seen.get(c);
    if (first !== undefined) {
      throw new FileRejectedError(`${where} names column "${c}" twice (columns ${first + 1} and ${i + 1})`);
    }
    seen.set(c, i);
  });
  const missing = requiredFields(dataset).filter((f) => !seen.has(f));
  const unknown = columns.filter((c) => !dataset.fields.includes(c));
  // A column that differs from a field only in case or spacing is a typo, not an extra column.
  for (const field of dataset.fields.filter((f) => !seen.has(f))) {
    const near = unknown.find((c) => c.toLowerCase() === field.toLowerCase());
    if (near !== undefined) {
      throw new FileRejectedError(
        `${where} column "${near}" differs from the schema's field "${field}" only in case`,
      );
    }
  }
  if (missing.length > 0) {
    throw new FileRejectedError(
      `${where} lacks required column(s) ${missing.map((m) => `"${m}"`).join(', ')}; found ${columns.map((c) => `"${c}"`).join(', ')}`,
    );
  }
  return columns;
}
