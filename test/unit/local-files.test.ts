import { describe, expect, it } from 'vitest';
import { placeFile } from '../../shared/config/local-files.ts';

// Which dataset `run` sends a local file to: --dataset, else the nearest folder named like a dataset,
// else (only for a file no such folder routes) the dataset named after the file, as `init` names one.

const place = (file: string, datasets: string[], base = '/data/exports', named?: string) =>
  placeFile({ file, base }, datasets, named);

describe('placeFile', () => {
  it('sends a file in a folder named like a dataset there, whatever its own name', () => {
    expect(place('/data/orders/customers.csv', ['orders', 'customers'], '/data/orders')).toEqual({
      dataset: 'orders',
      tail: 'customers.csv',
    });
    expect(place('/data/orders/2024/01.csv', ['orders'], '/data')).toEqual({
      dataset: 'orders',
      tail: '2024/01.csv',
    });
  });

  it('sends any file to --dataset, its key below the folder given', () => {
    expect(place('/data/exports/a/x.csv', ['orders', 'x'], '/data/exports', 'orders')).toEqual({
      dataset: 'orders',
      tail: 'a/x.csv',
    });
  });

  it('sends a file no folder routes to the dataset named after it: its name, in snake_case, gzipped or not', () => {
    const datasets = ['order_details', 'orders'];
    expect(place('/data/exports/order_details.csv', datasets)).toEqual({
      dataset: 'order_details',
      tail: 'order_details.csv',
    });
    expect(place('/data/exports/Order Details.tsv.gz', datasets)).toEqual({
      dataset: 'order_details',
      tail: 'Order Details.tsv.gz',
    });
  });

  it("sends a file to the dataset init named after it (a plain identifier) or the loader's snake_case of it", () => {
    expect(place('/data/exports/Müller.csv', ['muller'])).toEqual({ dataset: 'muller', tail: 'Müller.csv' });
    expect(place('/data/exports/Müller.csv', ['müller'])).toEqual({ dataset: 'müller', tail: 'Müller.csv' });
  });

  it("sends a month's export to the dataset of its stem, unless one is named after the whole name", () => {
    expect(place('/data/exports/orders-2024-01.csv.gz', ['orders'])).toEqual({
      dataset: 'orders',
      tail: 'orders-2024-01.csv.gz',
    });
    expect(place('/data/exports/orders_2024_03.csv', ['orders', 'orders_2024_03'])).toEqual({
      dataset: 'orders_2024_03',
      tail: 'orders_2024_03.csv',
    });
  });

  it('places no file named after no dataset', () => {
    expect(place('/data/exports/README.md', ['orders'])).toBeUndefined();
    expect(place('/data/exports/2024-01.csv', ['orders'])).toBeUndefined();
  });
});
