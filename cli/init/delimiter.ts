import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import Papa from 'papaparse';

/** The delimiters a `.csv`/`.txt` file may use: Excel in a decimal-comma locale writes `;`. */
export const DELIMITERS = [',', ';', '\t', '|'];
/** Enough of the start of a file for the header and its first records. */
const SAMPLE_BYTES = 64 * 1024;
const SAMPLE_RECORDS = 20;

async function head(file: string, gzip: boolean): Promise<string> {
  const source = createReadStream(file, gzip ? {} : { end: SAMPLE_BYTES - 1 });
  const stream = gzip ? source.pipe(createGunzip()) : source;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= SAMPLE_BYTES) break;
    }
  } catch {
    // A truncated gzip still has a head to guess from; the profile reports the file's own error.
  } finally {
    source.destroy();
  }
  return Buffer.concat(chunks).subarray(0, SAMPLE_BYTES).toString('utf8');
}

/**
 * The delimiter of a text file, guessed by papaparse from its header and first records (the one that
 * gives every record the same number of fields, more than one); `,` when none does.
 */
export async function guessDelimiter(file: string, gzip: boolean): Promise<string> {
  const text = await head(file, gzip);
  const result = Papa.parse(text, { delimitersToGuess: DELIMITERS, preview: SAMPLE_RECORDS });
  return DELIMITERS.includes(result.meta.delimiter) ? result.meta.delimiter : ',';
}
