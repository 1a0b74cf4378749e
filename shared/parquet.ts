import type { S3Client } from '@aws-sdk/client-s3';
import {
  type AsyncBuffer,
  type FileMetaData,
  parquetMetadataAsync,
  parquetRead,
  parquetSchema,
  type RowGroup,
  toJson,
} from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import type { ChunkPlan, FilePlan } from './chunking.ts';
import type { Dataset } from './dataset.ts';
import { FileRejectedError } from './errors.ts';
import { headObject, type PinnedObject, readRange } from './object-store.ts';
import type { RecordCursor } from './parsing.ts';

// Parquet keeps its schema and row-group index in a footer, so the split step reads only the footer
// (ranged GETs) and cuts chunks at row-group boundaries; a load worker fetches its row groups' bytes in
// one ranged GET and decodes them with hyparquet. A record's "line" is its row number in the file (1-based).

/** The object as hyparquet reads it: every slice a ranged GET, except those inside `held` (bytes already fetched). */
function objectBuffer(
  s3: S3Client,
  object: PinnedObject,
  size: number,
  held?: { start: number; bytes: Uint8Array },
): AsyncBuffer {
  return {
    byteLength: size,
    async slice(start: number, end = size): Promise<ArrayBuffer> {
      const bytes =
        held && start >= held.start && end <= held.start + held.bytes.length
          ? held.bytes.subarray(start - held.start, end - held.start)
          : await readRange(s3, object, start, end);
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    },
  };
}

async function metadataOf(file: AsyncBuffer): Promise<FileMetaData> {
  try {
    return await parquetMetadataAsync(file);
  } catch (err) {
    if (err instanceof FileRejectedError) throw err;
    throw new FileRejectedError(`not a readable Parquet file: ${(err as Error).message}`);
  }
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

/**
 * The split step for Parquet: the footer, read with ranged GETs (the row data is never read), gives the
 * columns and the row groups; chunks are runs of whole row groups of about `chunkBytes` compressed.
 */
export async function planParquet(
  s3: S3Client,
  object: PinnedObject,
  size: number,
  dataset: Dataset,
): Promise<FilePlan> {
  if (size === 0) throw new FileRejectedError('file is empty (0 bytes)');
  const metadata = await metadataOf(objectBuffer(s3, object, size));
  const chunks: ChunkPlan[] = [];
  let row = 0;
  let open: ChunkPlan | undefined;
  for (const group of metadata.row_groups) {
    const rows = Number(group.num_rows);
    const span = rowGroupSpan(group);
    if (rows === 0) continue;
    if (open && span.start >= open.end && span.end - open.start <= dataset.chunkBytes) {
      open.end = span.end;
      open.records += rows;
    } else {
      open = {
        index: chunks.length,
        start: span.start,
        end: span.end,
        firstLine: row + 1,
        records: rows,
        oversized: false,
        unterminated: false,
      };
      chunks.push(open);
    }
    row += rows;
  }
  return {
    bom: false,
    headerLine: 0,
    headerOversized: false,
    columns: columnNames(metadata),
    chunks,
    records: row,
    bytes: size,
    lines: row,
  };
}

/** One chunk of a Parquet file: its rows, decoded, numbered from `firstRow` (1-based). */
export interface ParquetRows {
  rows: Record<string, unknown>[];
  firstRow: number;
}

/**
 * A load worker's read: the footer (ranged GETs), then the chunk's row groups in one ranged GET,
 * decoded to rows of the columns the dataset reads.
 */
export async function readParquetChunk(
  s3: S3Client,
  object: PinnedObject,
  chunk: { start: number; end: number; firstLine: number },
  fields: readonly string[],
): Promise<ParquetRows> {
  const { size } = await headObject(s3, object.bucket, object.key, object.versionId);
  const footer = objectBuffer(s3, object, size);
  const metadata = await metadataOf(footer);
  let rowStart = 0;
  let rowEnd = 0;
  let row = 0;
  for (const group of metadata.row_groups) {
    const span = rowGroupSpan(group);
    const rows = Number(group.num_rows);
    if (span.start < chunk.start) rowStart = row + rows;
    if (span.end <= chunk.end) rowEnd = row + rows;
    row += rows;
  }
  if (rowStart + 1 !== chunk.firstLine) {
    throw new FileRejectedError(
      `the Parquet file's row groups do not match the split's plan (rows from ${rowStart + 1}, planned ${chunk.firstLine})`,
    );
  }
  const held = { start: chunk.start, bytes: await readRange(s3, object, chunk.start, chunk.end) };
  const present = new Set(columnNames(metadata));
  const columns = fields.filter((f) => present.has(f));
  let rows: Record<string, unknown>[] = [];
  await parquetRead({
    file: objectBuffer(s3, object, size, held),
    metadata,
    columns,
    rowStart,
    rowEnd,
    compressors,
    rowFormat: 'object',
    onComplete: (out) => {
      rows = out;
    },
  });
  return { rows, firstRow: rowStart + 1 };
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
  #at = -1;

  constructor(chunk: ParquetRows) {
    this.#chunk = chunk;
  }

  next(): boolean {
    const row = this.#chunk.rows[++this.#at];
    if (!row) return false;
    this.line = this.#chunk.firstRow + this.#at;
    this.fields = plain(row);
    return true;
  }

  raw(): string {
    return JSON.stringify(toJson(this.fields));
  }
}
