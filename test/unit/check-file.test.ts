import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type DatasetDefinition, resolveDataset } from '../../shared/config/dataset.ts';
import { FileRejectedError } from '../../shared/core/errors.ts';
import type { FilePlan } from '../../shared/formats/chunking.ts';
import { checkFile } from '../../shared/formats/file-check.ts';
import { bytesOf, plan } from './helpers.ts';

const orders = resolveDataset({
  name: 'orders',
  format: 'csv',
  table: 'orders',
  schema: z.object({
    id: z.coerce.number(),
    amount: z.coerce.number(),
    currency: z.enum(['EUR', 'USD']),
    note: z.string().optional(),
    paid: z.stringbool().default(false),
  }),
  maxRecordBytes: 64,
});

const events = resolveDataset({
  name: 'events',
  format: 'ndjson',
  table: 'events',
  schema: z.object({ id: z.string() }),
});

async function planFor(bytes: Uint8Array, def = orders) {
  const p = await plan(bytes, {
    format: def.format,
    delimiter: def.delimiter,
    maxRecordBytes: def.maxRecordBytes,
  });
  return p;
}

/** The FileRejectedError message checkFile throws for a file. */
async function rejection(input: string | Uint8Array, def = orders): Promise<string> {
  const bytes = typeof input === 'string' ? bytesOf(input) : input;
  const p = await planFor(bytes, def);
  return rejectionOf(def, p, bytes.length);
}

function rejectionOf(def: typeof orders, p: FilePlan, size: number): string {
  try {
    checkFile(def, p, size);
  } catch (err) {
    expect(err).toBeInstanceOf(FileRejectedError);
    return (err as Error).message;
  }
  throw new Error('checkFile accepted the file');
}

describe('checkFile', () => {
  it('returns the header columns of a good file, trimmed, in file order', async () => {
    const bytes = bytesOf(' amount ,id,"currency",extra\r\n1,2,EUR,x\r\n');
    expect(checkFile(orders, await planFor(bytes), bytes.length)).toEqual([
      'amount',
      'id',
      'currency',
      'extra',
    ]);
  });

  it('reads the header of a file with a BOM and blank lines before the header', async () => {
    const bytes = bytesOf([0xef, 0xbb, 0xbf], '\r\n\nid,amount,currency\n1,2,EUR\n');
    expect(checkFile(orders, await planFor(bytes), bytes.length)).toEqual(['id', 'amount', 'currency']);
  });

  it('accepts a header-only file', async () => {
    const bytes = bytesOf('id,amount,currency');
    expect(checkFile(orders, await planFor(bytes), bytes.length)).toEqual(['id', 'amount', 'currency']);
  });

  it('rejects a header column with a NUL byte, naming it (Postgres cannot store it)', async () => {
    expect(await rejection('id,amount,currency,no\u0000te\n1,2,EUR,x\n')).toBe(
      'header column 4 ("no\uFFFDte") contains a NUL byte; remove it and drop the file again',
    );
    expect(await rejection('i\u0000d,amount,currency\n')).toBe(
      'header column 1 ("i\uFFFDd") contains a NUL byte; remove it and drop the file again',
    );
  });

  it('rejects an empty file', async () => {
    expect(await rejection('')).toBe('file is empty (0 bytes)');
    expect(await rejection('', events)).toBe('file is empty (0 bytes)');
  });

  it('rejects a CSV file of blank lines, or only a BOM, as having no header', async () => {
    expect(await rejection('\n\r\n\n')).toBe('file has no header line (only blank lines)');
    expect(await rejection(bytesOf([0xef, 0xbb, 0xbf]))).toBe('file has no header line (only blank lines)');
  });

  it('says what a file is when its content is another container, CSV or NDJSON', async () => {
    // The content as split sees it, after one gunzip: a gzip inside a gzip shows gzip's magic number.
    const inner = new Uint8Array(gzipSync('id,amount,currency\n1,2,EUR\n'));
    const zip = bytesOf('PK', [0x03, 0x04], '\n\u0000id,amount\n');
    const parquet = bytesOf('PAR1', [0x15, 0x04], '\nid\n');
    for (const def of [orders, events]) {
      expect(await rejection(inner, def)).toBe(
        'file is a gzip inside a gzip: gunzip it once before dropping',
      );
      expect(await rejection(zip, def)).toBe(
        'file is a zip archive: dropload reads CSV/NDJSON/Parquet, optionally gzipped; unzip it and drop the files',
      );
    }
    expect(await rejection(parquet)).toBe(
      'file is a Parquet file, but dataset "orders" reads CSV: drop it under a Parquet dataset\'s prefix',
    );
    expect(await rejection(parquet, events)).toBe(
      'file is a Parquet file, but dataset "events" reads NDJSON: drop it under a Parquet dataset\'s prefix',
    );
  });

  it('reads a CSV header that starts "PAR1" as a header', async () => {
    const bytes = bytesOf('PAR1,id,amount,currency\n');
    expect(checkFile(orders, await planFor(bytes), bytes.length)).toEqual([
      'PAR1',
      'id',
      'amount',
      'currency',
    ]);
  });

  it('rejects an empty gzip (an object whose content has no bytes) as that, not as blank lines', async () => {
    const empty = gzipSync('');
    const p = await planFor(new Uint8Array(0));
    expect(rejectionOf(orders, p, empty.length)).toBe('file is an empty gzip (no bytes inside)');
    expect(rejectionOf(events, await planFor(new Uint8Array(0), events), empty.length)).toBe(
      'file is an empty gzip (no bytes inside)',
    );
  });

  it('rejects an NDJSON file of blank lines as having no records', async () => {
    expect(await rejection('\n\r\n', events)).toBe('file has no records (only blank lines)');
  });

  it('returns no columns for an NDJSON file with records', async () => {
    const bytes = bytesOf('{"id":"a"}\n');
    expect(checkFile(events, await planFor(bytes, events), bytes.length)).toBeUndefined();
  });

  it('rejects a header over maxRecordBytes, naming the limit', async () => {
    const header = `${'x'.repeat(70)},id,amount,currency\n`;
    expect(await rejection(`${header}1,2,3,EUR\n`)).toBe(
      'header line is longer than maxRecordBytes (64 bytes)',
    );
  });

  it('rejects UTF-16 files, little- and big-endian', async () => {
    const le = bytesOf(
      [0xff, 0xfe],
      [...'id,amount\n'].flatMap((c) => [c.charCodeAt(0), 0]),
    );
    const be = bytesOf(
      [0xfe, 0xff],
      [...'id,amount\n'].flatMap((c) => [0, c.charCodeAt(0)]),
    );
    expect(await rejection(le)).toBe('file is UTF-16 encoded; save it as UTF-8');
    expect(await rejection(be)).toBe('file is UTF-16 encoded; save it as UTF-8');
  });

  it('rejects a header that is not valid UTF-8, with its line', async () => {
    // Latin-1 "währung" after two blank lines: the header is on line 3.
    const bytes = bytesOf('\n\nid,amount,w', [0xe4], 'hrung\n1,2,3\n');
    expect(await rejection(bytes)).toBe('header (line 3) is not valid UTF-8; save the file as UTF-8');
  });

  it('rejects a header that names a column twice, with both positions', async () => {
    expect(await rejection('id,amount,currency,amount\n')).toBe(
      'header names column "amount" twice (columns 2 and 4)',
    );
    // Names are compared trimmed.
    expect(await rejection('id, id,amount,currency\n')).toBe(
      'header names column "id" twice (columns 1 and 2)',
    );
  });

  it('names a header column that differs from a field only in case', async () => {
    expect(await rejection('id,note,Amount,currency\n1,x,2,EUR\n')).toBe(
      'header column "Amount" differs from the schema\'s field "amount" only in case',
    );
  });

  it('rejects a header that lacks required columns, listing them and what was found', async () => {
    expect(await rejection('id,note,Amt\n1,x,2\n')).toBe(
      'header lacks required column(s) "amount", "currency"; found "id", "note", "Amt"',
    );
    expect(await rejection('amount,currency;x\n')).toBe(
      'header lacks required column(s) "id", "currency"; found "amount", "currency;x"',
    );
  });

  it('does not require optional or defaulted columns', async () => {
    const bytes = bytesOf('currency,amount,id\n');
    expect(checkFile(orders, await planFor(bytes), bytes.length)).toEqual(['currency', 'amount', 'id']);
  });

  it('reads the header with the dataset delimiter', async () => {
    const semi: DatasetDefinition = {
      name: 'semi',
      format: 'csv',
      table: 'semi',
      schema: z.object({ a: z.string(), b: z.string() }),
      delimiter: ';',
    };
    const d = resolveDataset(semi);
    const bytes = bytesOf('a;"b"\n1;2\n');
    const p = await plan(bytes, { delimiter: ';' });
    expect(checkFile(d, p, bytes.length)).toEqual(['a', 'b']);
    const comma = bytesOf('a,b\n');
    expect(rejectionOf(d, await plan(comma, { delimiter: ';' }), comma.length)).toBe(
      'header lacks required column(s) "a", "b"; found "a,b"',
    );
  });
});
