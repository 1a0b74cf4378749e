import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { z } from 'zod';
import { type Format, type Quote, resolveDataset } from '../../shared/config/dataset.ts';
import { FileRejectedError } from '../../shared/core/errors.ts';
import { lastRecordEnd, planChunks } from '../../shared/formats/chunking.ts';
import { checkFile, openQuote } from '../../shared/formats/file-check.ts';
import { parseHeader } from '../../shared/formats/parsing.ts';

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
 * start: the checks are about its header and first record.
 */
export async function loadRefusal(file: FileToCheck): Promise<string | undefined> {
  const size = (await stat(file.path)).size;
  if (file.format === 'parquet' && size > 0) return undefined;
  const base = resolveDataset({ name: 'check', format: 'csv', table: 'check', schema: z.object({}) });
  const limit = base.maxRecordBytes;
  try {
    if (size === 0) {
      checkFile(
        base,
        { bom: false, headerLine: 1, headerOversized: false, chunks: [], records: 0, bytes: 0, lines: 0 },
        0,
      );
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
    const names = checked.header ? parseHeader(checked.header, file.delimiter, quote) : [];
    // The file's own fields: the check is about the file, not about a schema init has yet to write.
    const schema = z.object(Object.fromEntries(names.map((n) => [n, z.string().optional()])));
    const dataset = resolveDataset({
      name: 'check',
      format: file.format,
      delimiter: file.delimiter,
      quote,
      table: 'check',
      schema,
    });
    checkFile(dataset, checked, size);
    return undefined;
  } catch (err) {
    if (err instanceof FileRejectedError) return err.message;
    throw err;
  }
}
