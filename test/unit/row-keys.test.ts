import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { linesOption, parseLines } from '../../cli/ops.ts';
import { type DatasetDefinition, resolveDataset } from '../../shared/config/dataset.ts';
import type { Reject } from '../../shared/ledger/ledger.ts';
import { keyPaths, keyText, withRowKeys } from '../../shared/load/row-keys.ts';

const schema = z.object({ region: z.string(), id: z.string(), note: z.string() });
const COLUMNS = ['region', 'id', 'note'];

function orders(extra: Partial<DatasetDefinition> = {}) {
  return resolveDataset({
    name: 'orders',
    format: 'csv',
    table: 'orders',
    mode: 'upsert',
    key: ['region', 'id'],
    schema,
    ...extra,
  });
}

const reject = (raw: string, kind: Reject['kind'] = 'invalid'): Reject => ({
  line: 2,
  column: null,
  kind,
  reason: 'r',
  raw,
});

describe('a reject’s key', () => {
  it('is the key fields’ text as the file has it, by header position even in a ragged line', () => {
    const keyed = withRowKeys(orders(), COLUMNS, [
      reject('eu,7,fine'),
      reject('eu,007'), // too few fields: the key is still there
      reject('"e,u",8,x,extra'), // too many, quoted
      reject('eu'), // the key's second field is missing
      reject(',9,x'), // a key field with no value
      reject('eu,"1"0,x', 'malformed'), // not well formed
      reject('eu,11,x', 'unreadable'), // the stored text is not the line
    ]);
    expect(keyed.map((r) => r.rowKey)).toEqual([
      '["eu","7"]',
      '["eu","007"]',
      '["e,u","8"]',
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('reads quoted fields as papaparse does: doubled quotes, a delimiter or a line break inside, a quote closing the line', () => {
    const keyed = withRowKeys(orders(), COLUMNS, [
      reject('"e""u",12,"a ""b"", c"'),
      reject('eu,"1\n3","x"'),
      reject('"eu" ,14,x'), // text after the closing quote: papaparse's to read
      reject('eu,15,"x'), // a quote left open
      reject('eu,1"6,x'), // a quote inside an unquoted field is text
    ]);
    expect(keyed.map((r) => r.rowKey)).toEqual([
      '["e\\"u","12"]',
      '["eu","1\\n3"]',
      '["eu","14"]',
      undefined,
      '["eu","1\\"6"]',
    ]);
  });

  it('reads JSON values of an NDJSON line as text, and none from a line that is no object', () => {
    const dataset = orders({ format: 'ndjson' });
    const keyed = withRowKeys(dataset, undefined, [
      reject('{"region":"eu","id":7,"note":""}'),
      reject('{"region":"eu","id":7'),
      reject('[1,2]'),
    ]);
    expect(keyed.map((r) => r.rowKey)).toEqual(['["eu","7"]', undefined, undefined]);
  });

  it('is not stored for a dataset that has no key or publishes whole files', () => {
    const unkeyed = orders({ mode: 'insert', key: undefined });
    const byFile = orders({ publish: 'file' });
    expect([keyPaths(unkeyed), keyPaths(byFile), keyPaths(orders())]).toEqual([
      undefined,
      undefined,
      ['region', 'id'],
    ]);
    expect(withRowKeys(unkeyed, COLUMNS, [reject('eu,7,x')])[0]?.rowKey).toBeUndefined();
  });

  it('of a multi-table dataset is its counted table’s key, a referenced parent by its natural key', () => {
    const lines = resolveDataset({
      name: 'lines',
      format: 'csv',
      schema: z.object({ order_no: z.string(), line_no: z.string(), sku: z.string() }),
      targets: [
        {
          table: 'order_lines',
          columns: { line_no: 'line_no', sku: 'sku' },
          references: { order_id: { table: 'orders', key: { order_no: 'order_no' } } },
          key: ['order_id', 'line_no'],
        },
      ],
    });
    expect(keyPaths(lines)).toEqual(['order_no', 'line_no']);
    expect(keyText(['SO-1', 2, new Date('2026-01-02T03:04:05Z')], new Set(['']))).toBe(
      '["SO-1","2","2026-01-02T03:04:05.000Z"]',
    );
    expect(keyText(['SO-1', 'NULL'], new Set(['NULL']))).toBeNull();
  });
});

describe('--lines', () => {
  it('takes numbers and ranges, each line once, in order', () => {
    expect(parseLines('7-9,3, 8')).toEqual([3, 7, 8, 9]);
    expect(linesOption([3, 7, 8, 9, 11])).toBe('3,7-9,11');
  });

  it('refuses anything else', () => {
    for (const bad of ['', '0', '3-', '9-7', 'x', '1,,2', '1-2000000'])
      expect(() => parseLines(bad), bad).toThrow('expected line numbers and ranges, such as 3,7-9');
  });
});
