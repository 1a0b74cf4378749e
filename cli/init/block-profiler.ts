import { type RecordCursor, textCursor } from '../../shared/formats/parsing.ts';
import { type Columns, type Share, WHOLE } from './columns.ts';
import type { BlockEvent } from './text-blocks.ts';

/**
 * Reads a text file's blocks (`textBlocks`) into its columns' profiles, in file order: each block
 * parsed with the load's own parser from the line the previous one ended on, its records classified
 * for the share of the columns this reader has (all of them, unless on a profiling thread).
 */
export class BlockProfiler {
  readonly columns: Columns;
  share: Share;
  #line = 1;
  #header: string[] | undefined;
  readonly #decoder = new TextDecoder('utf-8', { ignoreBOM: true });

  constructor(columns: Columns, share: Share = WHOLE) {
    this.columns = columns;
    this.share = share;
  }

  /** The next file of the same table (`file`: its name, for its misfits when the table has several). */
  startFile(file: string | undefined): void {
    this.columns.file = file;
    this.#line = 1;
    this.#header = undefined;
  }

  take(event: BlockEvent): void {
    if (event.kind === 'header') this.#takeHeader(event.header, event.line);
    else if (event.kind === 'oversized') {
      this.columns.oversized(this.#line, event.size);
      this.#line += event.lines;
    } else this.#parse(event.bytes);
  }

  #takeHeader(header: string[], line: number): void {
    this.#header = header;
    this.#line = line;
    for (const name of header) this.columns.column(name);
    this.columns.followPairs();
  }

  #parse(records: Uint8Array): void {
    const { columns } = this;
    const { format, delimiter, quote } = columns.profile;
    const cursor = textCursor(this.#decoder.decode(records), {
      format,
      delimiter,
      quote,
      columns: this.#header,
      firstLine: this.#line,
      skim: columns.skim(this.share),
    });
    this.#read(cursor);
    this.#line = cursor.nextLine;
  }

  #read(cursor: RecordCursor): void {
    const { columns, share } = this;
    const { profile } = columns;
    while (cursor.next()) {
      profile.rows++;
      if (cursor.error) {
        columns.misfit(cursor.line, misfitReason(cursor.error.reason, profile.delimiter));
        if (cursor.error.quote) columns.quoteMisfit(cursor.line, cursor.error.reason);
      } else if (cursor.values) columns.addCsvRecord(cursor.values, share);
      else if (cursor.fields) columns.addJsonRecord(cursor.fields);
    }
  }
}

/** The loader's reason, and for a row with more fields than the header, the usual cause. */
function misfitReason(reason: string, delimiter: string): string {
  const more = /^row has (\d+) fields, the header has (\d+)$/.exec(reason);
  if (!more) return reason;
  return `${more[1]} fields, header has ${more[2]} (unquoted ${delimiter === ',' ? 'comma' : 'delimiter'}?)`;
}
