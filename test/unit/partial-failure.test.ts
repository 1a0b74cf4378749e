import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { resolveDataset } from '../../shared/config/dataset.ts';
import { FileRejectedError, OverwrittenError } from '../../shared/core/errors.ts';
import type { FileRow } from '../../shared/ledger/schema.ts';
import { partialFailure } from '../../shared/pipeline/partial-failure.ts';

/*
 * What a multi-table file overwritten mid-load is told to remove: the tables the newer version upserts are
 * its rows now (deleting them by key loses its data); only where it inserts do this version's rows stay.
 * (The single-table cases run against Postgres in test/integration/reliability.test.ts.)
 */

const schema = z.object({ sku: z.string(), price: z.string() });
const products = (priceMode: 'upsert' | 'insert' | 'insert-ignore') =>
  resolveDataset({
    name: 'products',
    format: 'csv',
    schema,
    targets: [
      { table: 'shop.products', columns: { sku: 'sku' }, key: ['sku'] },
      {
        table: 'shop.prices',
        columns: { sku: 'sku', price: 'price' },
        key: ['sku', 'price'],
        mode: priceMode,
      },
    ],
  });

const file = {
  id: 7,
  key: 'incoming/shop/products/prod.csv',
  chunk_count: 3,
  rows_inserted: 14148,
  rows_updated: 0,
} as FileRow;
const chunks = [
  { idx: 0, first_line: 2, state: 'loaded' },
  { idx: 1, first_line: 7000, state: 'loaded' },
  { idx: 2, first_line: 14150, state: 'pending' },
];
const gone =
  's3://b/incoming/shop/products/prod.csv was overwritten before all of it was read (ETag e is gone)';
const head = `${gone}; chunk(s) 1, 2 of 3 had loaded before that: 14148 rows of this version went into its tables (14148 inserted, 0 updated), the other 1 chunk(s) were not loaded`;

describe('a multi-table file overwritten mid-load', () => {
  it('every table upserted: no delete advice for the rows the newer version took over', () => {
    expect(partialFailure(products('upsert'), file, chunks, new OverwrittenError(gone))).toEqual({
      error: `${head}; the newer version upserts on the same key: each of those rows whose key it also has takes its values when it loads`,
      action:
        "do not delete this version's 14148 rows by key: the rows of the keys the newer version also has are its rows now. " +
        'Once it has loaded, remove only what remains of this one, if anything: delete, by their keys, only the rows of lines 2–14149 ' +
        'of this version whose keys the newer version does not have (the rows carry no file id: no sourceColumn)',
    });
  });

  it('one table inserted: its rows stay, to remove; the upserted one is left alone', () => {
    expect(partialFailure(products('insert'), file, chunks, new OverwrittenError(gone))).toEqual({
      error: `${head}; the newer version upserts on the same key in shop.products: each of those rows whose key it also has takes its values when it loads`,
      action:
        "in shop.products do not delete this version's rows by key: the rows of the keys the newer version also has are its rows now. " +
        "In shop.prices this version's rows stay: remove those (delete its rows from lines 2–14149 of the file by their keys " +
        '(the rows carry no file id: no sourceColumn)), then `npx dropload retry-rejects incoming/shop/products/prod.csv` ' +
        "loads the newer version's rows refused meanwhile as duplicate keys",
    });
  });

  it('renamed or deleted (no newer version of the key): all of its rows stay, to remove', () => {
    const told = partialFailure(
      products('upsert'),
      file,
      chunks,
      new FileRejectedError('s3://b/k no longer exists'),
    );
    expect(told.action).toBe(
      '14148 rows of it stay in its tables: if it was renamed or replaced, the new key loads in full, so remove them ' +
        '(delete its rows from lines 2–14149 of the file by their keys (the rows carry no file id: no sourceColumn)); ' +
        'otherwise remove them and drop the file again',
    );
  });
});

describe('a file overwritten while the split still cut it (chunks sent as cut, the count not known yet)', () => {
  const cutting = { ...file, chunk_count: null } as FileRow;

  it('tells the chunks cut so far, not a total it never knew', () => {
    expect(partialFailure(products('insert'), cutting, chunks, new OverwrittenError(gone)).error).toBe(
      `${gone}; chunk(s) 1, 2 of the 3 cut so far had loaded before that: 14148 rows of this version went into its tables ` +
        '(14148 inserted, 0 updated), the rest of the file was not loaded; the newer version upserts on the same key in ' +
        'shop.products: each of those rows whose key it also has takes its values when it loads',
    );
  });
});

describe('rows an insert-ignore table skipped', () => {
  it('are not rejects: only the newer version dropped again under a new name loads them', () => {
    expect(partialFailure(products('insert-ignore'), file, chunks, new OverwrittenError(gone)).action).toBe(
      "in shop.products do not delete this version's rows by key: the rows of the keys the newer version also has are its rows now. " +
        "In shop.prices this version's rows stay: remove those (delete its rows from lines 2–14149 of the file by their keys " +
        '(the rows carry no file id: no sourceColumn)), then `npx dropload retry-rejects incoming/shop/products/prod.csv` ' +
        "loads the newer version's rows refused meanwhile as duplicate keys; the rows an insert-ignore skipped load only " +
        'with the newer version dropped again under a new name (the same bytes under the same key count as loaded)',
    );
  });
});
