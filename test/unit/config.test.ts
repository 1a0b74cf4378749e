import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { resolveConfig } from '../../shared/config/config.ts';
import {
  type Dataset,
  DEFAULT_CHUNK_BYTES,
  DEFAULT_MAX_RECORD_BYTES,
  datasetForKey,
  resolveDataset,
} from '../../shared/config/dataset.ts';
import { EXPANDED_PREFIX, REPORT_PREFIX, RESERVED_PREFIXES } from '../../shared/core/bucket-layout.ts';
import { ConfigError } from '../../shared/core/errors.ts';

const schema = z.object({ id: z.coerce.number(), name: z.string() });
const base = { name: 'orders', format: 'csv', table: 'orders', schema } as const;

/** The ConfigError resolveConfig throws, or a failure if it throws something else or nothing. */
function configError(config: unknown, source?: string): string {
  try {
    resolveConfig(config, source);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).name).toBe('ConfigError');
    return (err as Error).message;
  }
  throw new Error('resolveConfig accepted the config');
}

describe('resolveConfig', () => {
  it('applies every default', () => {
    const { datasets, migrations } = resolveConfig({ datasets: [base] });
    expect(migrations).toBeUndefined();
    expect(datasets).toHaveLength(1);
    const [d] = datasets;
    expect(d).toMatchObject({
      name: 'orders',
      prefix: 'incoming/orders/',
      format: 'csv',
      table: 'orders',
      fields: ['id', 'name'],
      columnOf: { id: 'id', name: 'name' },
      key: [],
      mode: 'insert',
      chunkBytes: DEFAULT_CHUNK_BYTES,
      maxRecordBytes: DEFAULT_MAX_RECORD_BYTES,
      delimiter: ',',
    });
    expect(d?.nullValues).toEqual(new Set(['']));
    expect(d?.schema).toBe(schema);
    expect(DEFAULT_CHUNK_BYTES).toBe(8 * 1024 * 1024);
    expect(DEFAULT_MAX_RECORD_BYTES).toBe(1024 * 1024);
  });

  it('keeps explicit settings and maps renamed columns', () => {
    const [d] = resolveConfig({
      datasets: [
        {
          ...base,
          prefix: 'drop/orders/',
          table: 'sales.orders',
          columns: { id: 'order_id' },
          key: ['id'],
          mode: 'upsert',
          chunkBytes: 64 * 1024,
          nullValues: ['', 'NULL'],
          maxRecordBytes: 4096,
          delimiter: ';',
        },
      ],
      migrations: 'migrations',
    }).datasets;
    expect(d).toMatchObject({
      prefix: 'drop/orders/',
      table: 'sales.orders',
      columnOf: { id: 'order_id', name: 'name' },
      key: ['id'],
      mode: 'upsert',
      chunkBytes: 65536,
      maxRecordBytes: 4096,
      delimiter: ';',
    });
    expect(d?.nullValues).toEqual(new Set(['', 'NULL']));
  });

  it('names the setting: upsert without a key', () => {
    expect(configError({ datasets: [{ ...base, mode: 'upsert' }] })).toBe(
      'config: dataset "orders": mode "upsert" needs a key',
    );
  });

  it('names the setting: a key field that is not in the schema', () => {
    expect(configError({ datasets: [{ ...base, mode: 'upsert', key: ['id', 'nope'] }] })).toBe(
      'config: dataset "orders": key field "nope" is not in its schema',
    );
  });

  it('names the setting: a dataset name used twice', () => {
    expect(configError({ datasets: [base, { ...base, prefix: 'other/' }] })).toBe(
      'config: dataset name "orders" is used twice',
    );
  });

  it('names the setting: a prefix used twice, given or defaulted', () => {
    expect(
      configError({
        datasets: [
          { ...base, prefix: 'in/' },
          { ...base, name: 'b', prefix: 'in/' },
        ],
      }),
    ).toBe('config: prefix "in/" is used by two datasets');
    expect(configError({ datasets: [base, { ...base, name: 'b', prefix: 'incoming/orders/' }] })).toBe(
      'config: prefix "incoming/orders/" is used by two datasets',
    );
  });

  it('refuses a dataset prefix equal to, inside or containing a prefix dropload writes to', () => {
    const refused = (prefix: string, reserved: string) =>
      `config: dataset "orders": prefix "${prefix}" overlaps "${reserved}", where dropload writes (reserved: ${RESERVED_PREFIXES.join(', ')}); choose another prefix`;
    for (const [prefix, reserved] of [
      ['reports/', 'reports/'],
      ['reports/incoming/orders/', 'reports/'],
      ['.dropload/', '.dropload/'],
      ['.dropload/expanded/', '.dropload/'],
    ] as const) {
      expect(configError({ datasets: [{ ...base, prefix }] })).toBe(refused(prefix, reserved));
    }
    // Every prefix the code writes under is in the list.
    for (const written of [REPORT_PREFIX, EXPANDED_PREFIX]) {
      expect(RESERVED_PREFIXES.some((r) => written.startsWith(r))).toBe(true);
    }
    expect(resolveConfig({ datasets: [{ ...base, prefix: 'reportsx/' }] }).datasets[0]?.prefix).toBe(
      'reportsx/',
    );
    // dropload writes nothing under rejected/ (rejects are in the ledger): a dataset may have it.
    expect(resolveConfig({ datasets: [{ ...base, prefix: 'rejected/' }] }).datasets[0]?.prefix).toBe(
      'rejected/',
    );
  });

  it('names the setting: a prefix without trailing slash', () => {
    expect(configError({ datasets: [{ ...base, prefix: 'incoming/orders' }] })).toBe(
      'config: dataset "orders": prefix "incoming/orders" must end with "/"',
    );
  });

  it('names the setting: a table that is not a SQL identifier', () => {
    expect(configError({ datasets: [{ ...base, table: 'orders; drop table x' }] })).toBe(
      'config: datasets.0.table: a SQL identifier',
    );
    expect(configError({ datasets: [base, { ...base, name: 'b', table: 'a.b.c' }] })).toBe(
      'config: datasets.1.table: a SQL identifier',
    );
    expect(configError({ datasets: [{ ...base, table: '1orders' }] })).toBe(
      'config: datasets.0.table: a SQL identifier',
    );
  });

  it('names the setting: a column name that is not a SQL identifier', () => {
    expect(configError({ datasets: [{ ...base, columns: { id: 'order id' } }] })).toBe(
      'config: datasets.0.columns.id: a SQL identifier',
    );
  });

  it('names the setting: a bad dataset name, format, schema, delimiter or chunk size', () => {
    expect(configError({ datasets: [{ ...base, name: 'Orders' }] })).toBe(
      'config: datasets.0.name: lower-case letters, digits, _ and -',
    );
    expect(configError({ datasets: [{ ...base, schema: { id: 'number' } }] })).toBe(
      'config: datasets.0.schema: a zod object schema (z.object({...}))',
    );
    expect(configError({ datasets: [{ ...base, format: 'xml' }] })).toBe(
      'config: datasets.0.format: Invalid option: expected one of "csv"|"ndjson"|"parquet"',
    );
    expect(configError({ datasets: [{ ...base, delimiter: '||' }] })).toBe(
      'config: datasets.0.delimiter: Too big: expected string to have exactly 1 characters',
    );
    expect(configError({ datasets: [{ ...base, chunkBytes: 1024 }] })).toBe(
      'config: datasets.0.chunkBytes: Too small: expected number to be >=65536',
    );
  });

  it('names the setting: no datasets, or no config at all', () => {
    expect(configError({ datasets: [] })).toBe('config: datasets: at least one dataset');
    expect(configError(undefined)).toBe('config: (root): Invalid input: expected object, received undefined');
  });

  it('names the config source in the message', () => {
    expect(configError({ datasets: [{ ...base, prefix: 'x' }] }, 'my.config.ts')).toBe(
      'my.config.ts: dataset "orders": prefix "x" must end with "/"',
    );
  });
});

describe('datasetForKey', () => {
  const make = (name: string, prefix?: string): Dataset => resolveDataset({ ...base, name, prefix });
  const datasets = [
    make('all', 'incoming/'),
    make('orders'),
    make('eu-orders', 'incoming/orders/eu/'),
    make('ordersx', 'incoming/ordersx/'),
  ];

  it('picks the longest prefix the key starts with, whatever the order', () => {
    expect(datasetForKey(datasets, 'incoming/orders/eu/2024.csv')?.name).toBe('eu-orders');
    expect(datasetForKey([...datasets].reverse(), 'incoming/orders/eu/2024.csv')?.name).toBe('eu-orders');
    expect(datasetForKey(datasets, 'incoming/orders/us/2024.csv')?.name).toBe('orders');
    expect(datasetForKey(datasets, 'incoming/orders/2024.csv')?.name).toBe('orders');
    expect(datasetForKey(datasets, 'incoming/ordersx/a.csv')?.name).toBe('ordersx');
    expect(datasetForKey(datasets, 'incoming/other/a.csv')?.name).toBe('all');
  });

  it('matches whole prefixes only, case-sensitively', () => {
    expect(datasetForKey(datasets, 'incoming/orders-old.csv')?.name).toBe('all');
    expect(datasetForKey(datasets, 'Incoming/orders/a.csv')).toBeUndefined();
    expect(datasetForKey(datasets, 'elsewhere/a.csv')).toBeUndefined();
    expect(datasetForKey([], 'incoming/orders/a.csv')).toBeUndefined();
  });
});
