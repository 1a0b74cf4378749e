import type { S3Client } from '@aws-sdk/client-s3';
import {
  type AsyncBuffer,
  type FileMetaData,
  type ParquetParsers,
  parquetMetadataAsync,
  parquetRead,
  parquetSchema,
  type RowGroup,
  type SchemaElement,
  toJson,
} from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { headObject, type PinnedObject, readRange } from '../aws/object-store.ts';
import type { Dataset } from '../config/dataset.ts';
import { FileRejectedError } from '../core/errors.ts';
import { boundHeapGrowth } from '../core/heap-growth.ts';
import type { ChunkPlan, FilePlan } from './chunking.ts';
import { MAX_NESTING_DEPTH, type RecordCursor } from './parsing.ts';

// Parquet keeps its schema and row-group index in a footer, so the split step reads only the footer
// (ranged GETs) and cuts chunks at row-group boundaries; a load worker fetches its row groups' bytes in
// one ranged GET and decodes them with hyparquet. A record's "line" is its row number in the file (1-based).

/**
 * The object as hyparquet reads it: every slice a ranged GET, except those inside `held` (bytes already
 * fetched). It remembers a failed GET, so that a read error is not taken for a format error.
 */
class ObjectBuffer implements AsyncBuffer {
  fetchError: unknown;
  readonly byteLength: number;
  readonly #s3: S3Client;
  readonly #object: PinnedObject;
  readonly #held: { start: number; bytes: Uint8Array } | undefined;

  constructor(s3: S3Client, object: PinnedObject, size: number, held?: { start: number; bytes: Uint8Array }) {
    this.#s3 = s3;
    this.#object = object;
    this.byteLength = size;
    this.#held = held;
  }

  async slice(start: number, end = this.byteLength): Promise<ArrayBuffer> {
    const held = this.#held;
    let bytes: Uint8Array;
    if (held && start >= held.start && end <= held.start + held.bytes.length) {
      bytes = held.bytes.subarray(start - held.start, end - held.start);
    } else {
      try {
        bytes = await readRange(this.#s3, this.#object, start, end);
      } catch (err) {
        this.fetchError = err;
        throw err;
      }
    }
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }
}

/**
 * Runs a hyparquet read. A failed GET is rethrown as it was (transient or not, as classified
 * elsewhere); any other failure means the bytes are not readable Parquet, which no retry mends.
 */
async function readParquet<T>(
  file: AsyncBuffer & { fetchError?: unknown },
  what: string,
  read: () => Promise<T>,
): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (file.fetchError !== undefined) throw file.fetchError;
    if (err instanceof FileRejectedError) throw err;
    throw new FileRejectedError(`${what}: ${(err as Error).message}`, { cause: err });
  }
}

async function metadataOf(file: AsyncBuffer & { fetchError?: unknown }): Promise<FileMetaData> {
  const metadata = await readParquet(file, 'not a readable Parquet file', () => parquetMetadataAsync(file));
  // Reading the schema as a tree, decoding rows and writing them as JSON all recurse per level.
  const depth = schemaDepth(metadata);
  if (depth > MAX_NESTING_DEPTH) {
    throw new FileRejectedError(
      `Parquet schema nests ${depth} levels deep, over the limit of ${MAX_NESTING_DEPTH} levels`,
    );
  }
  return metadata;
}

/**
 * How deep the schema's groups nest (the root with flat columns is 1), from the footer's flat list of
 * elements in depth-first order, without recursion. A row's values nest at most this deep.
 */
function schemaDepth(metadata: FileMetaData): number {
  const open: number[] = []; // children still to come, per open group
  let deepest = 0;
  for (const element of metadata.schema) {
    while (open.length > 0 && open[open.length - 1] === 0) open.pop();
    if (open.length > 0) open[open.length - 1] = (open[open.length - 1] as number) - 1;
    const children = element.num_children ?? 0;
    if (children > 0) {
      open.push(children);
      deepest = Math.max(deepest, open.length);
    }
  }
  return deepest;
}

/** Bytes [start, end) a row group's column chunks occupy. */
function rowGroupSpan(group: RowGroup): { start: number; end: number } {
  let start = Number.POSITIVE_INFINITY;
  let end = 0;
  for (const column of group.columns) {
    const meta = column.meta_data;
    if (!meta) continue;
    const dictionary = meta.dictionary_page_offset;
    // Some writers put 0 here for "no dictionary page".
    const first = Number(dictionary && dictionary > 0n ? dictionary : meta.data_page_offset);
    start = Math.min(start, first);
    end = Math.max(end, first + Number(meta.total_compressed_size));
  }
  return { start: Number.isFinite(start) ? start : 0, end };
}

/** Top-level column names, in file order. */
function columnNames(metadata: FileMetaData): string[] {
  return parquetSchema(metadata).children.map((c) => c.element.name);
}

/** The columns of a Parquet file's footer, refused as split refuses them (not Parquet, nested too deep). */
export async function parquetColumns(file: AsyncBuffer): Promise<string[]> {
  return columnNames(await metadataOf(file));
}

/** What chunking needs of a row group: its rows, its decoded size, and where its bytes are. */
export interface RowGroupInfo {
  rows: number;
  /** Uncompressed bytes: what decoding it costs in memory. */
  bytes: number;
  start: number;
  end: number;
}

function rowGroups(metadata: FileMetaData): RowGroupInfo[] {
  return metadata.row_groups.map((g) => ({
    rows: Number(g.num_rows),
    bytes: Number(g.total_byte_size),
    ...rowGroupSpan(g),
  }));
}

/**
 * A Parquet file's chunks: runs of whole row groups of at most `chunkBytes` uncompressed; a row group
 * larger than that (writers default to 64–128 MB) is cut into row ranges of about `chunkBytes` each,
 * so what a worker decodes stays near `chunkBytes` whatever the writer chose. A chunk's byte range is
 * its row groups' bytes; `firstLine` is its first row (1-based).
 */
export function parquetChunks(groups: readonly RowGroupInfo[], chunkBytes: number): ChunkPlan[] {
  const chunks: ChunkPlan[] = [];
  const add = (start: number, end: number, firstLine: number, records: number) => {
    const chunk = {
      index: chunks.length,
      start,
      end,
      firstLine,
      records,
      oversized: false,
      unterminated: false,
    };
    chunks.push(chunk);
    return chunk;
  };
  let row = 0;
  let run: { chunk: ChunkPlan; bytes: number } | undefined;
  for (const g of groups) {
    if (g.rows === 0) continue;
    if (g.bytes > chunkBytes) {
      run = undefined;
      const parts = Math.ceil(g.bytes / chunkBytes);
      const per = Math.ceil(g.rows / parts);
      for (let at = 0; at < g.rows; at += per) add(g.start, g.end, row + at + 1, Math.min(per, g.rows - at));
    } else if (run && g.start >= run.chunk.end && run.bytes + g.bytes <= chunkBytes) {
      run.chunk.end = g.end;
      run.chunk.records += g.rows;
      run.bytes += g.bytes;
    } else {
      run = { chunk: add(g.start, g.end, row + 1, g.rows), bytes: g.bytes };
    }
    row += g.rows;
  }
  return chunks;
}

/**
 * The split step for Parquet: the footer, read with ranged GETs (the row data is never read), gives the
 * columns and the row groups to cut into chunks.
 */
export async function planParquet(
  s3: S3Client,
  object: PinnedObject,
  size: number,
  dataset: Dataset,
): Promise<FilePlan> {
  if (size === 0) throw new FileRejectedError('file is empty (0 bytes)');
  const metadata = await metadataOf(new ObjectBuffer(s3, object, size));
  const chunks = parquetChunks(rowGroups(metadata), dataset.chunkBytes);
  const records = Number(metadata.num_rows);
  return {
    bom: false,
    headerLine: 0,
    headerOversized: false,
    columns: columnNames(metadata),
    chunks,
    records,
    bytes: size,
    lines: records,
  };
}

/** Decoded values of one column for rows [rowStart, rowEnd) of the file (0-based): a page run or a row group's. */
interface ColumnPart {
  rowStart: number;
  rowEnd: number;
  data: ArrayLike<unknown>;
}

/**
 * One chunk of a Parquet file, decoded column by column (values as hyparquet makes them) and never
 * made into row objects all at once: a cursor makes each row as it is read, and the row dies young.
 * hyparquet's row objects for a whole chunk came on top of the columns it builds them from, all of it
 * long-lived; made here, a row can also turn its dates from numbers as it is read (issue 14: the
 * Parquet worker's peak RSS).
 */
export interface ParquetRows {
  /**
   * The columns read, in file order, each its parts in row order. `dates`: the column's values are
   * epoch milliseconds, made a `Date` as each row is read (see `msParsers`).
   */
  columns: { name: string; parts: ColumnPart[]; dates: boolean }[];
  /** The chunk's first row (1-based) and its row count. */
  firstRow: number;
  records: number;
}

/**
 * hyparquet's parsers for dates and timestamps, giving the epoch milliseconds its own parsers make a
 * `Date` of (the same truncation): a column of 100,000 `Date`s held 10 MB of heap for a chunk, 0.9 MB
 * as numbers; the cursor makes each row's `Date` as it reads the row.
 */
const msParsers: Partial<ParquetParsers> = {
  timestampFromMilliseconds: (millis) => Number(millis),
  timestampFromMicroseconds: (micros) => Number(micros / 1000n),
  timestampFromNanoseconds: (nanos) => Number(nanos / 1000000n),
  dateFromDays: (days) => days * 86400000,
};

/** Whether hyparquet decodes a column to `Date`s: the cases its `convert` hands to the parsers above. */
function decodesToDate(e: SchemaElement): boolean {
  const ctype = e.converted_type;
  if (ctype === 'DATE' || ctype === 'TIMESTAMP_MILLIS' || ctype === 'TIMESTAMP_MICROS') return true;
  return (e.type === 'INT96' && !ctype) || e.logical_type?.type === 'TIMESTAMP';
}

/**
 * A load worker's read: the footer (ranged GETs), then the chunk's row groups in one ranged GET,
 * decoded to rows of the columns the dataset reads. The chunk's rows come from the same plan the
 * split step made.
 */
export async function readParquetChunk(
  s3: S3Client,
  object: PinnedObject,
  chunk: { start: number; end: number; firstLine: number },
  dataset: Pick<Dataset, 'fields' | 'chunkBytes'>,
): Promise<ParquetRows> {
  // A chunk's decoded columns stay alive while it is written: bound how far the heap grows past them.
  boundHeapGrowth();
  const { size } = await headObject(s3, object.bucket, object.key, object.versionId);
  const metadata = await metadataOf(new ObjectBuffer(s3, object, size));
  const groups = rowGroups(metadata);
  const planned = parquetChunks(groups, dataset.chunkBytes).find(
    (c) => c.start === chunk.start && c.end === chunk.end && c.firstLine === chunk.firstLine,
  );
  if (!planned) {
    throw new FileRejectedError(
      `no chunk of this Parquet file starts at row ${chunk.firstLine} (bytes ${chunk.start}–${chunk.end}): was chunkBytes changed after the file was split? Announce the file again`,
    );
  }
  // Whole row groups come in one GET; a slice of a big one reads only the pages it needs, where the
  // file has an offset index (else hyparquet reads the row group's columns).
  const slice = groups.some(
    (g) => g.start === planned.start && g.end === planned.end && g.rows > planned.records,
  );
  const held = slice
    ? undefined
    : { start: chunk.start, bytes: await readRange(s3, object, chunk.start, chunk.end) };
  const wanted = new Set(dataset.fields);
  const read = parquetSchema(metadata).children.filter((c) => wanted.has(c.element.name));
  const names = read.map((c) => c.element.name);
  // Only a flat read may take the parsers that leave timestamps as numbers: inside a struct, list or
  // variant a number could not be told from a timestamp afterwards.
  const flat = read.every((c) => c.children.length === 0);
  const dates = new Set(flat ? read.filter((c) => decodesToDate(c.element)).map((c) => c.element.name) : []);
  const parts = new Map<string, ColumnPart[]>(names.map((n) => [n, []]));
  const file = new ObjectBuffer(s3, object, size, held);
  const rowStart = planned.firstLine - 1;
  const rowEnd = rowStart + planned.records;
  await readParquet(file, `rows ${rowStart + 1}–${rowEnd} are not readable Parquet`, () =>
    parquetRead({
      file,
      metadata,
      columns: names,
      rowStart,
      rowEnd,
      useOffsetIndex: true,
      compressors,
      parsers: dates.size > 0 ? msParsers : undefined,
      // Columns as they are decoded (whole pages, so a part may reach outside the chunk's rows).
      onChunk: ({ columnName, columnData, rowStart, rowEnd }) => {
        parts.get(columnName)?.push({ rowStart, rowEnd, data: columnData });
      },
    }),
  );
  const columns = names.map((name) => ({
    name,
    parts: (parts.get(name) ?? []).sort((a, b) => a.rowStart - b.rowStart),
    dates: dates.has(name),
  }));
  return { columns, firstRow: planned.firstLine, records: planned.records };
}

/** Nested values (structs, lists, maps) as JSON-able values: what a json/jsonb column and zod objects take. */
function plain(row: Record<string, unknown>): Record<string, unknown> {
  for (const name in row) {
    const v = row[name];
    if (v !== null && typeof v === 'object' && !(v instanceof Date)) row[name] = toJson(v);
  }
  return row;
}

/** The rows of a Parquet chunk as records: fields by name (JSON nulls read as no value), raw as JSON. */
export class ParquetCursor implements RecordCursor {
  line = 0;
  values = undefined;
  fields: Record<string, unknown> | undefined;
  error = undefined;
  readonly #chunk: ParquetRows;
  /** Per column, the part the current row is in: rows are read in order. */
  readonly #part: number[];
  #at = -1;

  constructor(chunk: ParquetRows) {
    this.#chunk = chunk;
    this.#part = chunk.columns.map(() => 0);
  }

  next(): boolean {
    const chunk = this.#chunk;
    if (this.#at + 1 >= chunk.records) return false;
    this.#at++;
    const row = chunk.firstRow - 1 + this.#at;
    const fields: Record<string, unknown> = {};
    for (let c = 0; c < chunk.columns.length; c++) {
      const { name, parts, dates } = chunk.columns[c] as ParquetRows['columns'][number];
      let p = this.#part[c] as number;
      while (p < parts.length - 1 && row >= (parts[p] as ColumnPart).rowEnd) p++;
      this.#part[c] = p;
      const part = parts[p];
      const value =
        part && row >= part.rowStart && row < part.rowEnd ? part.data[row - part.rowStart] : undefined;
      fields[name] = dates && typeof value === 'number' ? new Date(value) : value;
    }
    this.line = row + 1;
    this.fields = plain(fields);
    return true;
  }

  raw(): string {
    return JSON.stringify(this.fields, exactJson);
  }
}

/** ES2024's `JSON.rawJSON` (Node 21 and later), which TypeScript's library here does not declare. */
const rawJson = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

/**
 * A row's values as JSON the way hyparquet's `toJson` writes them, but a 64-bit integer as its exact
 * digits: `toJson` makes it a double, and a reject's stored line then says 9007199254740992 for
 * 9007199254740993. Dates go through their own `toJSON` first.
 */
function exactJson(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return rawJson(value.toString());
  if (value instanceof Uint8Array) return Array.from(value);
  return value;
}
