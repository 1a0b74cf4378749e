import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import { asyncBufferFromFile, parquetMetadataAsync, parquetRead, parquetSchema, toJson } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import type { Format, Quote } from '../../shared/config/dataset.ts';
import { DEFAULT_MAX_RECORD_BYTES } from '../../shared/config/dataset.ts';
import { UsageError } from '../../shared/core/errors.ts';
import {
  firstSpan,
  lastRecordEnd,
  oversizedReason,
  RecordScanner,
  type RecordSpan,
  type WideStretches,
} from '../../shared/formats/chunking.ts';
import { parseHeader, type RecordCursor, type Skim, textCursor } from '../../shared/formats/parsing.ts';
import { ColumnProfile, PairProfile } from './column-profile.ts';
import { guessDelimiter } from './delimiter.ts';
import { oversizedRecords } from './oversized.ts';
import { isNullToken, keyText, NULL_TOKEN_MAX_LENGTH } from './values.ts';

/** A row `init` could not read as a record of the header's fields, as the loader would reject it. */
export interface Misfit {
  line: number;
  reason: string;
  /** The file's name, when the dataset is read from several files. */
  file?: string;
}

/** One file read whole: its format, its columns' profiles, and the rows that do not fit. */
export interface FileProfile {
  path: string;
  /** Every file read into this profile, the first being `path` (monthly exports of one table). */
  paths: string[];
  /** The file name without folders and extensions (`.csv`, `.gz`, …). */
  base: string;
  format: Format;
  delimiter: string;
  /** How the file was read: quoted (`"`), or without quoting (see `quoting.ts`). */
  quote: Quote;
  /** The first record whose quoted reading failed on its quotes (`RecordError.quote`). */
  quoteMisfit?: Misfit;
  /** Why the file is read without quoting (`quoting.ts`). */
  quoting?: string;
  gzip: boolean;
  rows: number;
  columns: ColumnProfile[];
  pairs: PairProfile[];
  misfits: Misfit[];
  misfitCount: number;
}

/** Misfit rows listed per file; the rest are counted. */
const MISFITS_SHOWN = 20;
/** Decoded text handed to the parser at once: whole records, about this many bytes. */
const BLOCK_BYTES = 4 * 1024 * 1024;
/**
 * Bytes read from the file at a time: 1 MB, not the stream's default 64 KB, so a 1 GB file takes a thousand
 * trips through the thread pool and event loop instead of sixteen thousand (each one a wait on a busy machine).
 */
const READ_BYTES = 1024 * 1024;
const GZIP_MAGIC = [0x1f, 0x8b];
const BOM = [0xef, 0xbb, 0xbf];
/** Names that say "identifier": key candidates, and the columns whose pairs are followed as a link table's composite key. */
export const ID_LIKE = /(^id$|_id$|_code$|_key$|_no$)/;
/** Natural keys: `isbn`, `sku`, `email`, … (a link table of books and authors is `(isbn, author_id)`). */
const NATURAL_KEY = /(^|_)(isbn|issn|sku|ean|upc|gtin|email|code|slug|username|login|uuid|guid|iban|vin)$/;

/**
 * Whether a column's name makes it a key candidate among its file's columns (snake_case): an id-like
 * name, or a natural key's in a file with no key of its own (no `id`, no first column `…_id`). A
 * `users (id, email)` file keeps no set of its emails: hashing them would be most of its pass, for a
 * key the `id` already is.
 */
export function keyLike(column: string, columns: readonly string[]): boolean {
  if (ID_LIKE.test(column)) return true;
  if (!NATURAL_KEY.test(column)) return false;
  return !columns.some((c, i) => c === 'id' || (i === 0 && c.endsWith('_id')));
}

/** The file name without folders and extensions: its dataset's and table's name before snake_case. */
export const baseName = (file: string): string => formatOf(file).base;

interface FileFormat {
  format: Format;
  delimiter: string;
  gzipName: boolean;
  base: string;
  /** A `.csv`/`.txt`: its delimiter is guessed from its start (or forced), not known by its name. */
  guess?: boolean;
}

function formatOf(file: string): FileFormat {
  let name = path.basename(file);
  const gzipName = name.endsWith('.gz');
  if (gzipName) name = name.slice(0, -3);
  const ext = path.extname(name).toLowerCase();
  const base = name.slice(0, name.length - ext.length);
  if (ext === '.csv' || ext === '.txt') return { format: 'csv', delimiter: ',', gzipName, base, guess: true };
  if (ext === '.tsv' || ext === '.tab') return { format: 'csv', delimiter: '\t', gzipName, base };
  if (ext === '.ndjson' || ext === '.jsonl') return { format: 'ndjson', delimiter: ',', gzipName, base };
  if (ext === '.parquet') return { format: 'parquet', delimiter: ',', gzipName, base };
  throw new UsageError(`${file}: not a CSV/TSV, NDJSON or Parquet file (by its extension)`);
}

/** The file's format, with the delimiter of a `.csv`/`.txt` forced (`--delimiter`) or guessed from its start. */
export async function formatOfFile(file: string, delimiter?: string): Promise<FileFormat> {
  const format = formatOf(file);
  if (!format.guess) return format;
  return { ...format, delimiter: delimiter ?? (await guessDelimiter(file, await isGzip(file))) };
}

export async function isGzip(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const head = new Uint8Array(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0);
    return bytesRead === 2 && GZIP_MAGIC.every((b, i) => head[i] === b);
  } finally {
    await handle.close();
  }
}

/**
 * The file's field names, read before its rows: the CSV header (as the loader reads it), the first
 * NDJSON record's keys, the Parquet schema's columns. Reads only the start of the file.
 */
export async function fieldNames(file: string, forced?: string): Promise<string[]> {
  const { format, delimiter } = await formatOfFile(file, forced);
  if (format === 'parquet') {
    const metadata = await parquetMetadataAsync(await asyncBufferFromFile(file));
    return parquetSchema(metadata).children.map((c) => c.element.name);
  }
  const first = await firstRecord(file, format, delimiter);
  if (!first) return [];
  if (format === 'csv') return parseHeader(first, delimiter);
  const cursor = textCursor(new TextDecoder().decode(first), { format, delimiter, firstLine: 1 });
  return cursor.next() ? Object.keys(cursor.fields ?? {}) : [];
}

/** The bytes of the file's first record (after a BOM, blank lines skipped), as the record scanner cuts it. */
async function firstRecord(file: string, format: Format, delimiter: string): Promise<Uint8Array | undefined> {
  const source = createReadStream(file);
  const stream = (await isGzip(file)) ? source.pipe(createGunzip()) : source;
  let span: RecordSpan | undefined;
  let scanner: RecordScanner | undefined;
  const chunks: Uint8Array[] = [];
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let bytes: Uint8Array = chunk;
      if (!scanner) {
        bytes = bytes.subarray(bomLength(bytes));
        scanner = new RecordScanner({ format, delimiter }, (s) => {
          span ??= s;
        });
      }
      chunks.push(bytes);
      scanner.push(bytes);
      if (span) break;
    }
    if (!span) scanner?.end();
  } finally {
    source.destroy();
  }
  if (!span) return undefined;
  return Buffer.concat(chunks).subarray(span.start, span.end);
}

const bomLength = (bytes: Uint8Array): number => (BOM.every((b, i) => bytes[i] === b) ? BOM.length : 0);

/** Whether a column (by field name and position) may be a key or relate to another file: else it keeps no distinct set. */
export type KeepValues = (field: string, position: number) => boolean;

export interface ProfileOptions {
  /** The delimiter of a `.csv`/`.txt` (`--delimiter`); none: guessed. */
  delimiter?: string;
  /** More files of the same table, with the same header: read after the first into the same profile. */
  more?: string[];
  /** The dataset's name before snake_case, when not the file's (the common stem of `more`). */
  base?: string;
  /** `false`: read the file without quoting. */
  quote?: Quote;
}

/** Reads whole files, streaming, and profiles every column. `snake` names the columns as the tables will. */
export async function profileFile(
  file: string,
  snake: (name: string) => string,
  keep: KeepValues = () => true,
  options: ProfileOptions = {},
): Promise<FileProfile> {
  const { format, delimiter, base } = await formatOfFile(file, options.delimiter);
  const gzip = await isGzip(file);
  const paths = [file, ...(options.more ?? [])];
  const profile: FileProfile = {
    path: file,
    paths,
    base: options.base ?? base,
    format,
    delimiter,
    quote: options.quote ?? '"',
    gzip,
    rows: 0,
    columns: [],
    pairs: [],
    misfits: [],
    misfitCount: 0,
  };
  const columns = new Columns(profile, snake, keep);
  for (const f of paths) {
    columns.file = paths.length > 1 ? path.basename(f) : undefined;
    if (format === 'parquet') await readParquetFile(f, columns);
    else await readTextFile(f, await isGzip(f), columns);
  }
  if (format !== 'parquet') hintDelimiter(profile);
  return profile;
}

/** Every row of a CSV misfitting its header says the file is split on the wrong character, not that rows are bad. */
function hintDelimiter(profile: FileProfile): void {
  if (profile.format !== 'csv' || profile.rows === 0 || profile.misfitCount < profile.rows) return;
  const name = profile.delimiter === '\t' ? 'tab' : `"${profile.delimiter}"`;
  const hint = `; every row misfits: is the delimiter not ${name}? pass --delimiter`;
  profile.misfits = profile.misfits.map((m) => ({ ...m, reason: `${m.reason}${hint}` }));
}

function misfit(profile: FileProfile, line: number, reason: string, file?: string): void {
  profile.misfitCount++;
  if (profile.misfits.length < MISFITS_SHOWN)
    profile.misfits.push({ line, reason, ...(file ? { file } : {}) });
}

/** Columns in first-seen order; pairs of id-like columns followed for composite keys. */
class Columns {
  readonly byName = new Map<string, ColumnProfile>();
  /** Records read into the profiles (misfits are not). */
  records = 0;
  #pairsFollowed = false;
  /** The file being read, named in its misfits when the profile reads several. */
  file: string | undefined;
  readonly profile: FileProfile;
  readonly snake: (name: string) => string;
  readonly keep: KeepValues;

  constructor(profile: FileProfile, snake: (name: string) => string, keep: KeepValues) {
    this.profile = profile;
    this.snake = snake;
    this.keep = keep;
  }

  column(name: string): ColumnProfile {
    let col = this.byName.get(name);
    if (!col) {
      col = new ColumnProfile(name, this.byName.size);
      if (!this.keep(name, col.position)) col.nameless = 'no name relates it to a key or another file';
      // A field first seen after some records was missing (null) in all of them.
      col.nulls = this.records;
      this.byName.set(name, col);
      this.profile.columns.push(col);
    }
    return col;
  }

  /** Fixes the pairs once the header (or the first record) has named the columns. */
  followPairs(): void {
    if (this.#pairsFollowed) return;
    this.#pairsFollowed = true;
    const names = this.profile.columns.map((c) => this.snake(c.name));
    const ids = this.profile.columns.filter((_, i) => keyLike(names[i] ?? '', names)).slice(0, 8);
    for (let i = 0; i < ids.length; i++)
      for (let j = i + 1; j < ids.length; j++)
        this.profile.pairs.push(new PairProfile([ids[i]?.name ?? '', ids[j]?.name ?? '']));
  }

  /**
   * The columns a block's parse may skim: settled as text, keeping no distinct values, in no pair. Their
   * values only count as values or nulls, and no null token is longer than the longest kept whole.
   */
  skim(): Skim {
    const paired = new Set(this.profile.pairs.flatMap((p) => p.columns));
    return {
      fields: this.profile.columns.map((c) => c.settled && !paired.has(c.name)),
      upTo: NULL_TOKEN_MAX_LENGTH,
    };
  }

  /** A record's key texts for the pairs (undefined for a null). */
  addPairs(keyOf: (name: string) => string | undefined): void {
    for (const pair of this.profile.pairs) pair.add(keyOf(pair.columns[0]), keyOf(pair.columns[1]));
  }
}

async function readTextFile(file: string, gzip: boolean, columns: Columns): Promise<void> {
  const { profile } = columns;
  const onHeader = (header: string[]) => {
    for (const name of header) columns.column(name);
    columns.followPairs();
  };
  const onBlock = (cursor: RecordCursor) => {
    while (cursor.next()) {
      profile.rows++;
      if (cursor.error) {
        misfit(profile, cursor.line, misfitReason(cursor.error.reason, profile.delimiter), columns.file);
        if (cursor.error.quote)
          profile.quoteMisfit ??= {
            line: cursor.line,
            reason: cursor.error.reason,
            ...(columns.file ? { file: columns.file } : {}),
          };
      } else if (cursor.values) addCsvRecord(columns, cursor.values);
      else if (cursor.fields) addJsonRecord(columns, cursor.fields);
    }
  };
  // Rejected unread by the load (the dataset's default limit, which the generated datasets keep).
  const onOversized = (line: number, size: number) => {
    profile.rows++;
    misfit(profile, line, oversizedReason(size, DEFAULT_MAX_RECORD_BYTES), columns.file);
  };
  await scanBlocks(file, gzip, profile, { onHeader, onBlock, onOversized }, () => columns.skim());
}

/** The loader's reason, and for a row with more fields than the header, the usual cause. */
function misfitReason(reason: string, delimiter: string): string {
  const more = /^row has (\d+) fields, the header has (\d+)$/.exec(reason);
  if (!more) return reason;
  return `${more[1]} fields, header has ${more[2]} (unquoted ${delimiter === ',' ? 'comma' : 'delimiter'}?)`;
}

function addCsvRecord(columns: Columns, values: string[]): void {
  columns.records++;
  const cols = columns.profile.columns;
  for (let i = 0; i < values.length; i++) cols[i]?.addText(values[i] ?? '');
  if (columns.profile.pairs.length === 0) return;
  columns.addPairs((name) => {
    const col = columns.byName.get(name);
    const text = col ? values[col.position] : undefined;
    return text === undefined || isNullToken(text) ? undefined : text;
  });
}

function addJsonRecord(columns: Columns, fields: Record<string, unknown>): void {
  for (const name of Object.keys(fields)) columns.column(name);
  columns.followPairs();
  columns.records++;
  for (const col of columns.profile.columns) {
    const value = fields[col.name];
    col.addValue(value, keyText(value));
  }
  columns.addPairs((name) => {
    const value = fields[name];
    return value === null || value === undefined ? undefined : keyText(value);
  });
}

interface BlockHandlers {
  onHeader: (header: string[]) => void;
  onBlock: (cursor: RecordCursor) => void;
  /** A record over `maxRecordBytes`, not parsed: its line and size in bytes. */
  onOversized: (line: number, size: number) => void;
}

/**
 * Streams the file's bytes (gunzipped when gzip) through the loader's own parser, a block of whole
 * records at a time, cut where the record scanner ends a record (`lastRecordEnd`), so `init` reads
 * records and misfits exactly as a load would.
 */
async function scanBlocks(
  file: string,
  gzip: boolean,
  profile: FileProfile,
  on: BlockHandlers,
  skim: () => Skim,
): Promise<void> {
  const { format, delimiter, quote } = profile;
  let pending: Uint8Array[] = [];
  let held = 0;
  /** Bytes held before the next cut is tried: doubles while one record outgrows it, so a huge record is searched a few times, not once a read. */
  let threshold = BLOCK_BYTES;
  let header: string[] | undefined = format === 'csv' ? undefined : [];
  let line = 1;
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  const flush = (final: boolean) => {
    let bytes = Buffer.concat(pending);
    if (!header) {
      const span = firstSpan(bytes, profile, final);
      if (!span) return hold([bytes], final);
      header = parseHeader(bytes.subarray(span.start, span.end), delimiter, quote);
      on.onHeader(header);
      line = span.line + span.lines;
      bytes = bytes.subarray(span.end);
    }
    const wide: WideStretches = { limit: DEFAULT_MAX_RECORD_BYTES, found: [] };
    const ended = lastRecordEnd(bytes, profile, wide);
    const cut = final ? bytes.length : ended;
    // The file's last record may end without a line break.
    if (cut - ended > wide.limit) wide.found.push([ended, cut]);
    const parse = (records: Uint8Array) => {
      if (records.length === 0) return;
      const cursor = textCursor(decoder.decode(records), {
        format,
        delimiter,
        quote,
        columns: header,
        firstLine: line,
        skim: skim(),
      });
      on.onBlock(cursor);
      line = cursor.nextLine;
    };
    // The records the load would reject unread are cut out of the parse: their values are no evidence.
    let from = 0;
    for (const o of oversizedRecords(bytes, wide, profile)) {
      parse(bytes.subarray(from, o.start));
      on.onOversized(line, o.end - o.start);
      line += o.lines;
      from = o.end;
    }
    parse(bytes.subarray(from, cut));
    hold([bytes.subarray(cut)], final || cut > 0);
  };
  const hold = (rest: Uint8Array[], cut: boolean) => {
    pending = rest;
    held = rest.reduce((n, b) => n + b.length, 0);
    threshold = cut ? BLOCK_BYTES : Math.max(BLOCK_BYTES, 2 * held);
  };
  const source = createReadStream(file, { highWaterMark: READ_BYTES });
  const stream = gzip ? source.pipe(createGunzip()) : source;
  let first = true;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const bytes = first ? chunk.subarray(bomLength(chunk)) : chunk;
    first = false;
    pending.push(bytes);
    held += bytes.length;
    if (held >= threshold) flush(false);
  }
  flush(true);
}

async function readParquetFile(file: string, columns: Columns): Promise<void> {
  const { profile } = columns;
  const buffer = await asyncBufferFromFile(file);
  const metadata = await parquetMetadataAsync(buffer);
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    await parquetRead({
      file: buffer,
      metadata,
      rowStart,
      rowEnd,
      compressors,
      rowFormat: 'object',
      onComplete: (rows: Record<string, unknown>[]) => {
        for (const row of rows) {
          profile.rows++;
          const fields: Record<string, unknown> = {};
          for (const [name, value] of Object.entries(row))
            fields[name] =
              value !== null && typeof value === 'object' && !(value instanceof Date) ? toJson(value) : value;
          addJsonRecord(columns, fields);
        }
      },
    });
    rowStart = rowEnd;
  }
}
