import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { init } from '../../cli/init/init.ts';
import { renderSummary } from '../../cli/init/summary.ts';
import { tempFolder } from '../support/temp-folder.ts';

// Exports bigger than the 200,000 distinct values `init` once kept per column: keys and foreign keys are
// still checked on every value (see cli/init/distinct-values.ts). The files are generated here.

const temp = tempFolder('dropload-init-big-');

const ORDERS = 300_000;
const LINES = 450_000;

/** Writes the files into a folder of their own and runs `init` on it (serially: no threads below 64 MB). */
async function summaryOf(name: string, files: Record<string, string[]>): Promise<string[]> {
  const data = path.join(temp.dir, name);
  await mkdir(data);
  for (const [file, lines] of Object.entries(files))
    await writeFile(path.join(data, file), `${lines.join('\n')}\n`);
  const text = renderSummary(await init([data], { out: path.join(temp.dir, `${name}-out`) }));
  return text.split('\n');
}

/** The summary's key lines and its relationship and rejected sections. */
const keysAndRelationships = (lines: string[]) => [
  ...lines.filter((l) => l.startsWith('  primary key:')),
  ...lines.slice(
    lines.indexOf('relationships:'),
    lines.findIndex((l) => l.startsWith('load order')),
  ),
];

/** `ORDERS` orders keyed by `key(i)`, and `LINES` order lines pointing at them (every order used). */
function shop(key: (i: number) => string, keyName = 'order_id') {
  const orders = [`${keyName},customer,total`];
  for (let i = 0; i < ORDERS; i++) orders.push(`${key(i)},customer ${i % 977},${(i % 500) + 0.25}`);
  const lines = [`line_id,${keyName},qty`];
  for (let i = 0; i < LINES; i++) lines.push(`${i + 1},${key(i % ORDERS)},${(i % 9) + 1}.5`);
  return { 'orders.csv': orders, 'order_lines.csv': lines };
}

describe('init keys and relationships past 200,000 rows', () => {
  it('whole-number keys: the primary key and the foreign key are found', async () => {
    const lines = keysAndRelationships(
      await summaryOf(
        'numbers',
        shop((i) => String(i + 1)),
      ),
    );
    expect(lines).toEqual([
      '  primary key: line_id (line_id: 450000 values, all distinct, none null)',
      '  primary key: order_id (order_id: 300000 values, all distinct, none null)',
      'relationships:',
      '  order_lines.order_id → orders.order_id: same column name; 300000 distinct values, all among the 300000 of orders.order_id',
    ]);
  }, 120_000);

  it('whole numbers too big for the bitmap (kept as 64-bit keys) and text keys (hashed)', async () => {
    const big = keysAndRelationships(
      await summaryOf(
        'big-numbers',
        shop((i) => String(5_000_000_000 + i)),
      ),
    );
    expect(big).toContain('  primary key: order_id (order_id: 300000 values, all distinct, none null)');
    expect(big).toContain(
      '  order_lines.order_id → orders.order_id: same column name; 300000 distinct values, all among the 300000 of orders.order_id',
    );
    const text = keysAndRelationships(
      await summaryOf(
        'texts',
        shop((i) => `ORD-${String(i).padStart(7, '0')}`, 'order_code'),
      ),
    );
    expect(text).toEqual([
      '  primary key: line_id (line_id: 450000 values, all distinct, none null)',
      '  primary key: order_code (order_code: 300000 values, all distinct, none null)',
      'relationships:',
      '  order_lines.order_code → orders.order_code: same column name; 300000 distinct values, all among the 300000 of orders.order_code',
    ]);
  }, 240_000);

  it('a duplicate past row 200,000 refutes the key; values missing from the parent refute the foreign key', async () => {
    const files = shop((i) => `ORD-${String(i).padStart(7, '0')}`, 'order_code');
    // Row 250,001's key repeats row 7's; two lines point at orders that do not exist, both far down the file.
    files['orders.csv'][250_001] = files['orders.csv'][250_001]?.replace('ORD-0250000', 'ORD-0000006') ?? '';
    files['order_lines.csv'][300_001] = '300001,ORD-9999999,1.5';
    files['order_lines.csv'][400_001] = '400001,ORD-8888888,1.5';
    const lines = keysAndRelationships(await summaryOf('duplicates', files));
    expect(lines).toEqual([
      '  primary key: line_id (line_id: 450000 values, all distinct, none null)',
      '  primary key: — (none: no id-like column or pair of them is unique and never null)',
      'relationships:',
      '  none found',
    ]);
  }, 120_000);

  it('names the values missing from the parent: examples among the first kept as text, else how many', async () => {
    const files = shop((i) => String(i + 1));
    files['order_lines.csv'][5] = '5,700001,1.5';
    files['order_lines.csv'][300_001] = '300001,900001,1.5';
    const early = keysAndRelationships(await summaryOf('missing-early', files));
    expect(early.at(-1)).toBe(
      '  order_lines.order_id → orders.order_id: same column name, but values are missing from orders.order_id (e.g. "700001")',
    );
    files['order_lines.csv'][5] = '5,5,1.5';
    const late = keysAndRelationships(await summaryOf('missing-late', files));
    expect(late.at(-1)).toBe(
      '  order_lines.order_id → orders.order_id: same column name, but values are missing from orders.order_id (1 value)',
    );
  }, 240_000);
});
