import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { resolveDataset } from '../../shared/config/dataset.ts';
import { chunkRows } from '../../shared/load/chunk-rows.ts';

// A chunk read for one load is handed over: its bytes are freed once decoded, not when a full collection
// finds them dead (issue 14: `run` held several old chunks' bytes beside the ones it was loading).

const dataset = resolveDataset({
  name: 'handed',
  format: 'csv',
  table: 'handed',
  schema: z.object({ id: z.coerce.number(), name: z.string() }),
});
const options = { format: 'csv' as const, delimiter: ',', columns: ['id', 'name'], firstLine: 2 };
const TEXT = '1,Ada\n2,Grace\n3,Émile\n';

/** The text's bytes in a buffer of their own, as a chunk read from the bucket is. */
function ownBytes(text: string): Uint8Array<ArrayBuffer> {
  const encoded = new TextEncoder().encode(text);
  const bytes = new Uint8Array(new ArrayBuffer(encoded.length));
  bytes.set(encoded);
  return bytes;
}

function rowsOf(pass: { next(): unknown[] | undefined }): unknown[][] {
  const out: unknown[][] = [];
  for (let values = pass.next(); values; values = pass.next()) out.push(values);
  return out;
}

const WANT = [
  [1, 'Ada'],
  [2, 'Grace'],
  [3, 'Émile'],
];

describe('a chunk’s bytes handed over to chunkRows', () => {
  it('are freed once the first pass has decoded them, and every pass still reads the rows', () => {
    const bytes = ownBytes(TEXT);
    const rows = chunkRows(dataset, { handedOver: bytes }, options);
    expect(bytes.byteLength).toBe(TEXT.length + 1);
    expect(rowsOf(rows())).toEqual(WANT);
    expect(bytes.buffer.detached).toBe(true);
    expect(bytes.byteLength).toBe(0);
    // A fallback's second pass reads the decoded text, not the freed bytes.
    expect(rowsOf(rows())).toEqual(WANT);
  });

  it('are kept when only lent: a caller may read them again', () => {
    const bytes = ownBytes(TEXT);
    const rows = chunkRows(dataset, bytes, options);
    expect(rowsOf(rows())).toEqual(WANT);
    expect(bytes.buffer.detached).toBe(false);
    expect(new TextDecoder().decode(bytes)).toBe(TEXT);
  });

  it('are kept when they are part of a bigger buffer: the rest of it is someone else’s', () => {
    const whole = ownBytes(`${TEXT}9,other\n`);
    const bytes = whole.subarray(0, new TextEncoder().encode(TEXT).length);
    expect(rowsOf(chunkRows(dataset, { handedOver: bytes }, options)())).toEqual(WANT);
    expect(whole.buffer.detached).toBe(false);
    expect(new TextDecoder().decode(whole)).toBe(`${TEXT}9,other\n`);
  });

  it('that are not UTF-8 stay readable for every pass', () => {
    const bytes = ownBytes('1,Ada\n2,x\n');
    bytes[8] = 0xff;
    const rows = chunkRows(dataset, { handedOver: bytes }, options);
    const first = rows();
    const firstRows = rowsOf(first);
    expect(firstRows).toEqual([[1, 'Ada']]);
    expect(first.rejects.map((r) => r.line)).toEqual([3]);
    expect(bytes.buffer.detached).toBe(false);
    expect(rowsOf(rows())).toEqual([[1, 'Ada']]);
  });
});
