import { Buffer } from 'node:buffer';
import type { Format, Quote } from '../config/dataset.ts';

const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;

export interface RecordSpan {
  /** Byte offsets [start, end) in the stream, end including the line terminator. */
  start: number;
  end: number;
  /** Physical line (1-based) the record starts on; quoted newlines make a record span several. */
  line: number;
  /** The record ran to end of input inside an open quote. */
  unterminated: boolean;
  /** Physical lines the record covers: more than one when quoted fields hold newlines. */
  lines: number;
}

/** How a text file's records are read: NDJSON lines, or CSV with its delimiter and quote (`'"'` when not given). */
export interface TextFormat {
  format: Format;
  delimiter: string;
  quote?: Quote;
}

export interface ScannerOptions extends TextFormat {
  /** Byte offset of the first byte fed (after a BOM, say) and the line it is on. */
  offset?: number;
  line?: number;
}

/** What to do about a quote that opens a field and never closes properly: said wherever one is reported. */
export const STRAY_QUOTE_HINT =
  'a stray quote? if the file has no quoting, set `quote: false` in its dataset';

/** Whether quotes group a file's text: a CSV file's, unless it has none (`quote: false`). */
export const quoted = (text: TextFormat): boolean => text.format === 'csv' && text.quote !== false;

/**
 * Finds record boundaries in a byte stream without decoding it: a newline ends a record unless it is
 * inside a quoted CSV field. A quote opens a field only at the field's start, as RFC 4180 and the
 * load step's CSV parser read it, and the next quote not doubled closes it, whatever follows: a record
 * is never longer than RFC 4180 allows (`"Weird" Al` is a malformed field, not a field that runs on to the
 * next well-placed quote). Blank lines are not records.
 */
export class RecordScanner {
  readonly #csv: boolean;
  readonly #delimiter: number;
  readonly #onRecord: (span: RecordSpan) => void;
  #pos: number;
  #line: number;
  #recordStart: number;
  #recordLine: number;
  #inQuote = false;
  #fieldStart = true;
  #justClosed = false;
  #blank = true;
  #lastWasLf = false;

  constructor(options: ScannerOptions, onRecord: (span: RecordSpan) => void) {
    this.#csv = quoted(options);
    this.#delimiter = options.delimiter.charCodeAt(0);
    this.#onRecord = onRecord;
    this.#pos = options.offset ?? 0;
    this.#line = options.line ?? 1;
    this.#recordStart = this.#pos;
    this.#recordLine = this.#line;
  }

  get position(): number {
    return this.#pos;
  }

  /** The physical line the scanner is on (1-based). */
  get line(): number {
    return this.#line;
  }

  push(bytes: Uint8Array): void {
    const base = this.#pos;
    const csv = this.#csv;
    const delimiter = this.#delimiter;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if (this.#inQuote) {
        if (b === QUOTE) {
          this.#inQuote = false;
          this.#justClosed = true;
        } else if (b === LF) this.#line++;
        continue;
      }
      if (b === LF) {
        this.#line++;
        this.#endRecord(base + i + 1, false);
        continue;
      }
      if (csv && b === QUOTE && (this.#fieldStart || this.#justClosed)) {
        // `""` inside a quoted field closes and reopens: the same as an escaped quote.
        this.#inQuote = true;
        this.#blank = false;
        this.#fieldStart = false;
        this.#justClosed = false;
        continue;
      }
      this.#justClosed = false;
      if (b === delimiter) {
        this.#fieldStart = true;
        this.#blank = false;
      } else {
        // A CR starts no quote after it (`\r"a` is text to the parser too), but a line of CRs alone is blank.
        this.#fieldStart = false;
        if (b !== CR) this.#blank = false;
      }
    }
    this.#pos = base + bytes.length;
    if (bytes.length > 0) this.#lastWasLf = bytes[bytes.length - 1] === LF;
  }

  /** Flushes a last record that has no trailing newline. */
  end(): void {
    this.#endRecord(this.#pos, this.#inQuote, this.#lastWasLf ? 0 : 1);
  }

  #endRecord(end: number, unterminated: boolean, unfinishedLine = 0): void {
    if (!this.#blank || unterminated) {
      const lines = this.#line - this.#recordLine + unfinishedLine;
      this.#onRecord({ start: this.#recordStart, end, line: this.#recordLine, unterminated, lines });
    }
    this.#recordStart = end;
    this.#recordLine = this.#line;
    this.#inQuote = false;
    this.#fieldStart = true;
    this.#justClosed = false;
    this.#blank = true;
  }
}

/** Bytes the scanner reads at a time while it looks for one record's end: it stops once that record has ended. */
const SPAN_STEP = 64 * 1024;

/** The first record of `bytes` as the scanner cuts it; at the end of the input (`final`), also one without a line break. */
export function firstSpan(bytes: Uint8Array, text: TextFormat, final = true): RecordSpan | undefined {
  let span: RecordSpan | undefined;
  const scanner = new RecordScanner(text, (s) => {
    span ??= s;
  });
  for (let at = 0; at < bytes.length && !span; at += SPAN_STEP)
    scanner.push(bytes.subarray(at, at + SPAN_STEP));
  if (!span && final) scanner.end();
  return span;
}

export interface ChunkPlan {
  index: number;
  start: number;
  end: number;
  firstLine: number;
  records: number;
  /** One record over the size limit, to be rejected without being read. */
  oversized: boolean;
  /** For an unterminated record: the physical lines it swallowed. */
  lines?: number;
  unterminated: boolean;
}

export interface FilePlan {
  /** UTF-8 byte order mark present (skipped). */
  bom: boolean;
  /** The header record's bytes (CSV), undefined for NDJSON or an empty file. */
  header?: Uint8Array;
  /** Column names a self-describing file declares (Parquet's schema). */
  columns?: string[];
  headerLine: number;
  headerOversized: boolean;
  /** The content's first bytes (after any gunzip, up to 5): another format's magic number shows in them. */
  leading?: Uint8Array;
  chunks: ChunkPlan[];
  records: number;
  bytes: number;
  /** Physical lines in the file (a last line without a newline counts). */
  lines: number;
}

/** Why a record over `maxRecordBytes` is rejected unread: the load's reason, and `init`'s for its misfit. */
export const oversizedReason = (size: number, maxRecordBytes: number): string =>
  `record is ${size} bytes, over the limit of ${maxRecordBytes} bytes (maxRecordBytes)`;

/**
 * Stretches of `bytes` between two record ends (or from the start) longer than `limit`, found along the
 * way by `lastRecordEnd`: only in them can a record be longer than `limit`. Not every record end is
 * visited (a stretch without quotes counts as one), so a stretch may hold many records.
 */
export interface WideStretches {
  limit: number;
  found: [start: number, end: number][];
}

/**
 * Where the last whole record of `bytes` ends (past its line break), read as `RecordScanner` reads
 * them, `bytes` starting at a record's start; 0 when no record ends in them. Jumps from quote to quote
 * with native searches instead of visiting every byte: what a reader that cuts a stream into blocks of
 * whole records needs, at a fraction of the scanner's cost. `wide` collects the stretches where a record
 * longer than its limit may be, at no extra search.
 */
export function lastRecordEnd(bytes: Uint8Array, text: TextFormat, wide?: WideStretches): number {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  let last = 0;
  const ended = (end: number) => {
    if (wide && end - last > wide.limit) wide.found.push([last, end]);
    last = end;
  };
  if (!quoted(text)) {
    ended(b.lastIndexOf(LF) + 1);
    return last;
  }
  const delim = text.delimiter.charCodeAt(0);
  let pos = 0;
  /** A quote right after a closing one reopens the field (`""` inside quotes). */
  let closedAt = -2;
  for (;;) {
    const quote = b.indexOf(QUOTE, pos);
    const stop = quote === -1 ? b.length : quote;
    // No quote in [pos, stop): every line break there ends a record.
    const lf = stop > pos ? b.lastIndexOf(LF, stop - 1) : -1;
    if (lf >= pos) ended(lf + 1);
    if (quote === -1) return last;
    if (quote === closedAt + 1 || opensField(b, quote, last, delim)) {
      const close = b.indexOf(QUOTE, quote + 1);
      if (close === -1) return last; // the quote is still open: its record has not ended
      closedAt = close;
      pos = close + 1;
    } else pos = quote + 1;
  }
}

/** A quote outside quotes opens a field at the field's start: right after a delimiter or at the record's start. */
function opensField(b: Uint8Array, quote: number, recordStart: number, delimiter: number): boolean {
  return quote === recordStart || b[quote - 1] === delimiter;
}

export interface PlanOptions extends TextFormat {
  chunkBytes: number;
  maxRecordBytes: number;
  /**
   * Called (and awaited: reading waits for it) after a piece of input that cut one or more chunks, with
   * the plan so far: its chunks cut, numbered, and its header, `bytes` and `lines` as far as read. What
   * only the whole file tells (an open quote at its end, no records at all) shows only in the result.
   */
  onChunks?: (plan: FilePlan) => Promise<void>;
}

const BOM = [0xef, 0xbb, 0xbf];

/** The longest magic number looked for (Parquet's, with the byte after it). */
const MAGIC_BYTES = 5;

/**
 * Streams a file once and cuts it into chunks of whole records, each about `chunkBytes` long, so a
 * load worker can fetch its chunk with one ranged GET. Memory stays bounded by one input buffer.
 */
export async function planChunks(source: AsyncIterable<Uint8Array>, options: PlanOptions): Promise<FilePlan> {
  const chunks: ChunkPlan[] = [];
  const plan: FilePlan = {
    bom: false,
    headerLine: 1,
    headerOversized: false,
    chunks,
    records: 0,
    bytes: 0,
    lines: 0,
  };
  const wantHeader = options.format === 'csv';
  let headerSpan: RecordSpan | undefined;
  const headerBytes: Uint8Array[] = [];
  let current: ChunkPlan | undefined;

  // Numbered as they are cut: `onChunks` sees them so.
  const cut = (chunk: ChunkPlan) => {
    chunk.index = chunks.length;
    chunks.push(chunk);
  };
  const close = () => {
    if (current && current.records > 0) cut(current);
    current = undefined;
  };
  const onRecord = (span: RecordSpan) => {
    if (wantHeader && !headerSpan) {
      headerSpan = span;
      plan.headerLine = span.line;
      plan.headerOversized = span.end - span.start > options.maxRecordBytes;
      return;
    }
    plan.records++;
    const oversized = span.end - span.start > options.maxRecordBytes;
    if (oversized || span.unterminated) {
      // Isolated in a chunk of its own so that no other record shares its fate.
      close();
      cut({
        index: 0,
        start: span.start,
        end: span.end,
        firstLine: span.line,
        records: 1,
        oversized,
        unterminated: span.unterminated,
        ...(span.unterminated ? { lines: span.lines } : {}),
      });
      return;
    }
    current ??= {
      index: 0,
      start: span.start,
      end: span.start,
      firstLine: span.line,
      records: 0,
      oversized: false,
      unterminated: false,
    };
    current.end = span.end;
    current.records++;
    if (current.end - current.start >= options.chunkBytes) close();
  };

  let scanner: RecordScanner | undefined;
  let dataOffset = 0;
  let collected = 0;
  // CR and LF bytes before the header's first character: blank lines the header starts after.
  let lead = 0;
  let leading = wantHeader;
  const feed = (bytes: Uint8Array) => {
    if (leading) {
      let i = 0;
      while (i < bytes.length && (bytes[i] === LF || bytes[i] === CR)) i++;
      lead += i;
      leading = i === bytes.length;
    }
    // Keep the bytes up to the end of the header, no more than the record limit allows; the limit counts
    // from where the header starts, or a header after blank lines is cut short.
    const limit = options.maxRecordBytes + lead;
    if (wantHeader && !headerSpan && collected <= limit) {
      headerBytes.push(bytes.subarray(0, limit + 2));
      collected += bytes.length;
    }
    scanner?.push(bytes);
  };
  const start = (prelude: Uint8Array): RecordScanner => {
    plan.bom = prelude.length >= 3 && BOM.every((b, i) => prelude[i] === b);
    plan.leading = prelude.slice(0, MAGIC_BYTES);
    dataOffset = plan.bom ? 3 : 0;
    scanner = new RecordScanner({ ...options, offset: dataOffset }, onRecord);
    feed(prelude.subarray(dataOffset));
    return scanner;
  };
  /** The plan as far as `read` has read: its header once the header has ended. */
  const sofar = (read: RecordScanner) => {
    plan.bytes = read.position;
    plan.lines = read.line;
    if (headerSpan && !plan.headerOversized && !plan.header) {
      const all = concat(...headerBytes);
      plan.header = all.subarray(headerSpan.start - dataOffset, headerSpan.end - dataOffset);
    }
  };
  let reported = 0;
  let prelude: Uint8Array = new Uint8Array(0);
  for await (const piece of source) {
    if (scanner) feed(piece);
    else {
      // The BOM and magic-number checks need the first bytes, which may arrive in separate pieces.
      prelude = concat(prelude, piece);
      if (prelude.length >= MAGIC_BYTES) start(prelude);
    }
    if (scanner && options.onChunks && chunks.length > reported) {
      reported = chunks.length;
      sofar(scanner);
      await options.onChunks(plan);
    }
  }
  const done = scanner ?? start(prelude);
  done.end();
  close();
  sofar(done);
  return plan;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1 && parts[0]) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
