import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { asyncBufferFromFile } from 'hyparquet';
import { z } from 'zod';
import { type Format, type Quote, resolveDataset } from '../../shared/config/dataset.ts';
import { lastRecordEnd, planChunks } from '../../shared/formats/chunking.ts';
import { checkFile, openQuote } from '../../shared/formats/file-check.ts';
import { parquetColumns } from '../../shared/formats/parquet.ts';
import { refusalReason } from './file-error.ts';

export interface FileToCheck {
  path: string;
  format: Format;
  delimiter: string;
  gzip: boolean;
}

/** The start of the file (expanded), as far as its last whole record, and whether that is all of it. */
async function head(file: FileToCheck, bytes: number): Promise<{ bytes: Uint8Array; whole: boolean }> {
  const source = createReadStream(file.path);
  const stream = file.gzip ? source.pipe(createGunzip()) : source;
  const chunks: Buffer[] = [];
  let size = 0;
  let whole = true;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      if (size > bytes) {
        whole = false;
        break;
      }
    }
  } finally {
    source.destroy();
  }
  const all = Buffer.concat(chunks);
  if (whole) return { bytes: all, whole };
  const end = lastRecordEnd(all, file);
  // No record ends in it: a record (the header, say) longer than the limit, which the check reports.
  return { bytes: end > 0 ? all.subarray(0, end) : all, whole };
}

/**
 * Why the loader would refuse the whole file, by its own check (split's `checkFile`: empty file,
 * header not UTF-8, a column named twice, an unclosed quote, …), or undefined. Reads only the file's
 * start: the checks are about its header and first record. A file it cannot read (gzip data cut short)
 * is refused with the loader's message too.
 */
export async function loadRefusal(file: FileToCheck): Promise<string | undefined> {
  // No fields: the check is about the file (its header's names as they are, an empty one too), not a schema.
  const base = {
    name: 'check',
    format: file.format,
    delimiter: file.delimiter,
    table: 'check',
    schema: z.object({}),
  };
  const limit = resolveDataset(base).maxRecordBytes;
  try {
    const size = (await stat(file.path)).size;
    if (size === 0 || file.format === 'parquet') {
      // Only the footer: what split reads of a Parquet file.
      const columns = size === 0 ? [] : await parquetColumns(await asyncBufferFromFile(file.path));
      const nothing = {
        bom: false,
        headerLine: 1,
        headerOversized: false,
        chunks: [],
        records: 0,
        bytes: 0,
        lines: 0,
      };
      checkFile(resolveDataset(base), { ...nothing, columns }, size);
      return undefined;
    }
    const { bytes } = await head(file, limit + 64 * 1024);
    const plan = async (quote: Quote) =>
      planChunks(
        (async function* () {
          yield bytes;
        })(),
        {
          format: file.format,
          delimiter: file.delimiter,
          quote,
          chunkBytes: bytes.length + 1,
          maxRecordBytes: limit,
        },
      );
    const quoted = await plan('"');
    // A quote never closed may be a stray one in a file without quoting: checked so, and the profile decides.
    const quote = openQuote(quoted) ? false : '"';
    const checked = quote === false ? await plan(false) : quoted;
    checkFile(resolveDataset({ ...base, quote }), checked, size);
    return undefined;
  } catch (err) {
    return refusalReason(err);
  }
}
