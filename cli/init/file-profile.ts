import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import { asyncBufferFromFile, parquetMetadataAsync, parquetRead, parquetSchema, toJson } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import type { Format, Quote } from '../../shared/config/dataset.ts';
import { fileBase } from '../../shared/config/file-names.ts';
import { UsageError } from '../../shared/core/errors.ts';
import { RecordScanner, type RecordSpan } from '../../shared/formats/chunking.ts';
import { parseHeader, textCursor } from '../../shared/formats/parsing.ts';
import { BlockProfiler } from './block-profiler.ts';
import type { ColumnProfile, PairProfile } from './column-profile.ts';
import { Columns, type KeepValues } from './columns.ts';
import { guessDelimiter } from './delimiter.ts';
import { profileOnThreads, threadsFor } from './profile-threads.ts';
import { bomLength, textBlocks } from './text-blocks.ts';

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

const GZIP_MAGIC = [0x1f, 0x8b];

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
  const gzipName = file.endsWith('.gz');
  const ext = path.extname(gzipName ? file.slice(0, -3) : file).toLowerCase();
  const base = fileBase(file);
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

export interface ProfileOptions {
  /** The delimiter of a `.csv`/`.txt` (`--delimiter`); none: guessed. */
  delimiter?: string;
  /** More files of the same table, with the same header: read after the first into the same profile. */
  more?: string[];
  /** The dataset's name before snake_case, when not the file's (the common stem of `more`). */
  base?: string;
  /** Threads to profile a CSV/TSV on (0: none, on the main thread); default by the files' size (`threadsFor`). */
  threads?: number;
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
  const fileName = (f: string) => (paths.length > 1 ? path.basename(f) : undefined);
  const threads = format === 'csv' ? (options.threads ?? threadsFor(await totalBytes(paths))) : 0;
  if (threads > 0)
    await profileOnThreads(
      paths.map((f) => ({ path: f, name: fileName(f) })),
      columns,
      threads,
    );
  else if (format === 'parquet')
    for (const f of paths) {
      columns.file = fileName(f);
      await readParquetFile(f, columns);
    }
  else {
    const profiler = new BlockProfiler(columns);
    for (const f of paths) {
      profiler.startFile(fileName(f));
      for await (const event of textBlocks(f, await isGzip(f), profile)) profiler.take(event);
    }
  }
  if (format !== 'parquet') hintDelimiter(profile);
  return profile;
}

async function totalBytes(paths: string[]): Promise<number> {
  let n = 0;
  for (const f of paths) n += (await stat(f)).size;
  return n;
}

/** Every row of a CSV misfitting its header says the file is split on the wrong character, not that rows are bad. */
function hintDelimiter(profile: FileProfile): void {
  if (profile.format !== 'csv' || profile.rows === 0 || profile.misfitCount < profile.rows) return;
  const name = profile.delimiter === '\t' ? 'tab' : `"${profile.delimiter}"`;
  const hint = `; every row misfits: is the delimiter not ${name}? pass --delimiter`;
  profile.misfits = profile.misfits.map((m) => ({ ...m, reason: `${m.reason}${hint}` }));
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
          columns.addJsonRecord(fields);
        }
      },
    });
    rowStart = rowEnd;
  }
}
