import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ColumnProfile, PairProfile } from '../../cli/init/column-profile.ts';
import type { KeepValues } from '../../cli/init/columns.ts';
import { type FileProfile, type ProfileOptions, profileFile } from '../../cli/init/file-profile.ts';
import { threadsFor } from '../../cli/init/profile-threads.ts';
import { snakeIdentifier } from '../../shared/config/column-names.ts';
import { tempFolder } from '../support/temp-folder.ts';

const temp = tempFolder('dropload-init-threads-');
const file = temp.file;

/** Maps and Sets as entry lists: their order (kinds first seen, distinct values) is part of the profile. */
const listed = (value: unknown): unknown =>
  value instanceof Map || value instanceof Set ? [...value] : value;

/** Everything a profile holds, private counts included, in a form deep equality compares whole. */
function view(profile: FileProfile) {
  return {
    ...profile,
    columns: profile.columns.map((c) => ({
      profile: c instanceof ColumnProfile,
      settled: c.settled,
      unique: c.unique,
      ...Object.fromEntries(Object.entries(c.state()).map(([k, v]) => [k, listed(v)])),
    })),
    pairs: profile.pairs.map((p) => ({
      pair: p instanceof PairProfile,
      unique: p.unique,
      ...p.state(),
      seen: listed(p.seen),
    })),
  };
}

/** The profile on threads (2 and 3) against the serial one. */
async function expectSameOnThreads(
  first: string,
  keep: KeepValues = () => true,
  options: ProfileOptions = {},
  counts = [2, 3],
): Promise<FileProfile> {
  const serial = await profileFile(first, snakeIdentifier, keep, { ...options, threads: 0 });
  for (const threads of counts) {
    const threaded = await profileFile(first, snakeIdentifier, keep, { ...options, threads });
    expect(view(threaded)).toEqual(view(serial));
  }
  return serial;
}

const FIXTURES = path.resolve('test/fixtures/init');

describe('init profiling on threads (split by columns)', () => {
  it('gives fixture CSVs/TSVs the serial profile exactly: pairs, mixed kinds, nulls, distinct sets', async () => {
    const files = [
      'shop/order_details.csv', // a composite key's pair, decimals
      'shop/employee_territories.csv', // a link table: pairs only
      'shop/customers.csv', // quoted commas, text settled and skimmed
      'shop/orders.csv', // timestamps, nulls, mixed kinds
      'hr/people.csv', // uuids, leading zeros, offset timestamps, booleans
      'hr/offices.tsv',
      'hr-changes/people.csv', // null tokens, a column only this export has
      'library/members.csv', // self-reference, dates in a text layout
      'spaced/visits.csv',
    ].map((f) => path.join(FIXTURES, f));
    // Some columns keep no text values (as `init` decides by name), so they settle and are skimmed.
    const keep: KeepValues = (field) => /id$|no$|code$/i.test(field);
    const profiles = await Promise.all(files.map((f) => expectSameOnThreads(f, keep, {}, [2])));
    expect(profiles.reduce((n, p) => n + p.pairs.length, 0)).toBeGreaterThan(0);
  }, 60_000);

  it('the same with misfits, an oversized record, gzip, quoted line breaks and CRLF', async () => {
    const manyLines = `${'x'.repeat(1000)}\n`.repeat(2100);
    const long = 'y'.repeat(1_100_000);
    const text = `id,note,order_id\r\n1,a,5\r\n2,"${manyLines}",6\r\n3,b,7,extra\r\n4,${long},8\r\n5,"c\r\nd",9\r\n6,NULL\r\n`;
    const profile = await expectSameOnThreads(await file('odd.csv.gz', gzipSync(text)));
    expect([profile.rows, profile.misfitCount, profile.pairs.length]).toEqual([6, 4, 1]);
  });

  it('the same for a TSV with a stray quote, read quoted (its first quote misfit kept) and unquoted', async () => {
    const tsv = path.join(FIXTURES, 'imdb/titles.tsv');
    const quoted = await expectSameOnThreads(tsv);
    expect(quoted.quoteMisfit?.line).toBe(50);
    const plain = await expectSameOnThreads(tsv, () => true, { quote: false });
    expect([plain.rows, plain.misfitCount, plain.quoteMisfit]).toEqual([200, 0, undefined]);
  });

  it('the same for monthly exports of one table read into one profile, misfits named by file', async () => {
    const jan = await file('orders-2024-01.csv', 'order_id,total,note\n1,10.50,hello\n2,x,\n3,1,2,3\n');
    const feb = await file('orders-2024-02.csv', 'order_id,total,note\n4,1.00,NULL\n4,2,again\n');
    const profile = await expectSameOnThreads(jan, () => true, { more: [feb], base: 'orders' });
    expect([profile.rows, profile.misfits.map((m) => m.file)]).toEqual([5, ['orders-2024-01.csv']]);
  });

  it('the same over many blocks, columns settling as text mid-file and skimmed from the next block', async () => {
    const lines = ['id,product_id,order_id,note,created_at,qty,code'];
    const rows = 300_000;
    for (let i = 1; i <= rows; i++) {
      const at = `2026-01-${String((i % 28) + 1).padStart(2, '0')}T10:00:00Z`;
      // `created_at` turns text at row 150,000 and `qty` at 200,000: both are skimmed after the block that says so.
      const created = i === 150_000 ? 'not a time at all' : at;
      const qty = i === 200_000 ? 'many' : String(i % 97);
      const note =
        i % 1000 === 0 ? `"a note, with a comma\nand a line break ${i}"` : `plain note number ${i}`;
      const line = `${i},${i % 5000},${Math.floor(i / 3)},${note},${created},${qty},C${i % 50}`;
      lines.push(i % 77_777 === 0 ? `${line},extra` : line);
    }
    const p = await file('big.csv', `${lines.join('\n')}\n`);
    const keep: KeepValues = (field) => field !== 'note';
    const profile = await expectSameOnThreads(p, keep);
    expect(profile.rows).toBe(rows);
    expect(profile.misfitCount).toBe(3);
    expect(profile.pairs.map((x) => x.columns.join('+'))).toEqual([
      'id+product_id',
      'id+order_id',
      'product_id+order_id',
    ]);
    const kinds = Object.fromEntries(profile.columns.map((c) => [c.name, [...c.kinds]]));
    expect(kinds.created_at).toEqual([
      ['timestamptz', rows - 4],
      ['text', 1],
    ]);
    expect(kinds.qty?.[1]).toEqual(['text', 1]);
  }, 120_000);
});

describe('init profiling on threads past 200,000 distinct values', () => {
  it('keeps whole-number, big-number and text keys and pairs as the serial pass does, moved from the threads whole', async () => {
    const lines = ['id,order_code,event_id,customer_id'];
    for (let i = 1; i <= 250_000; i++)
      lines.push(`${i},ORD-${i},${5_000_000_000 + i},${i === 240_000 ? 'CUST-7' : `CUST-${i}`}`);
    const p = await file('keys.csv', `${lines.join('\n')}\n`);
    const profile = await expectSameOnThreads(p);
    expect(profile.columns.map((c) => [c.name, c.distinct?.size, c.unique])).toEqual([
      ['id', 250_000, true],
      ['order_code', 250_000, true],
      ['event_id', 250_000, true],
      ['customer_id', 249_999, false],
    ]);
    expect(profile.pairs.map((x) => [x.columns.join('+'), x.seen?.size, x.unique])).toContainEqual([
      'id+customer_id',
      250_000,
      true,
    ]);
  }, 120_000);

  it('the same for months merged: a key repeated across months is a duplicate', async () => {
    const month = (from: number) =>
      [
        'order_id,order_code',
        ...Array.from({ length: 120_000 }, (_, i) => `${from + i},ORD-${from + i}`),
      ].join('\n');
    const jan = await file('big-2024-01.csv', `${month(1)}\n`);
    const feb = await file('big-2024-02.csv', `${month(120_000)}\n`);
    const profile = await expectSameOnThreads(jan, () => true, { more: [feb], base: 'big' });
    expect(profile.columns.map((c) => [c.name, c.distinct?.size, c.duplicates])).toEqual([
      ['order_id', 239_999, 1],
      ['order_code', 239_999, 1],
    ]);
  }, 120_000);
});

describe('threadsFor', () => {
  it('takes DROPLOAD_INIT_THREADS when set, else none for a small file', () => {
    expect(threadsFor(10 ** 12, { DROPLOAD_INIT_THREADS: '0' })).toBe(0);
    expect(threadsFor(10, { DROPLOAD_INIT_THREADS: '2' })).toBe(2);
    expect(threadsFor(1024, {})).toBe(0);
    expect(() => threadsFor(10, { DROPLOAD_INIT_THREADS: 'two' })).toThrow(/DROPLOAD_INIT_THREADS/);
  });
});
