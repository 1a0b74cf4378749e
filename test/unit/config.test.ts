import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { resolveConfig } from '../../shared/config/config.ts';
import {
  type Dataset,
  DEFAULT_CHUNK_BYTES,
  DEFAULT_MAX_RECORD_BYTES,
  datasetForKey,
  datasetSpec,
  defineDataset,
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

  it('timeZone: UTC unless an IANA name is given; anything else names the setting', () => {
    expect(resolveDataset(base).timeZone).toBe('UTC');
    expect(resolveDataset({ ...base, timeZone: 'Europe/Berlin' }).timeZone).toBe('Europe/Berlin');
    expect(resolveDataset({ ...base, timeZone: 'America/Argentina/Buenos_Aires' }).timeZone).toBe(
      'America/Argentina/Buenos_Aires',
    );
    // '+01:00' is a zone to Intl, and to Postgres a POSIX one an hour the other way.
    for (const bad of ['Europe/Berlinn', 'CEST', '+01:00', 'local', '']) {
      expect(configError({ datasets: [{ ...base, timeZone: bad }] }), bad).toBe(
        'config: datasets.0.timeZone: an IANA time zone name like "Europe/Berlin" or "UTC"',
      );
    }
  });

  it('columnNames: as-is by default; snake_case names the columns columns does not', () => {
    const fields = z.object({ customerID: z.string(), OrderDate: z.string(), 'unit price': z.string() });
    const asIs = resolveDataset({ ...base, schema: fields });
    expect(asIs).toMatchObject({
      columnNames: 'as-is',
      columnOf: { customerID: 'customerID', OrderDate: 'OrderDate', 'unit price': 'unit price' },
    });
    const snake = resolveDataset({
      ...base,
      schema: fields,
      columnNames: 'snake_case',
      columns: { OrderDate: 'ordered_on' },
      mode: 'upsert',
      key: ['customerID'],
    });
    expect(snake).toMatchObject({
      columnNames: 'snake_case',
      columnOf: { customerID: 'customer_id', OrderDate: 'ordered_on', 'unit price': 'unit_price' },
      key: ['customerID'],
    });
  });

  it('snake_case keeps mapping a header to the column it mapped to before (tables made then must load)', () => {
    // init before 2026-11-28 made these columns (müller, straße, 2024_total, café) and loaded them.
    const fields = z.object({
      Müller: z.string(),
      Straße: z.string(),
      '2024 total': z.string(),
      café: z.string(),
    });
    expect(resolveDataset({ ...base, schema: fields, columnNames: 'snake_case' })).toMatchObject({
      columnOf: { Müller: 'müller', Straße: 'straße', '2024 total': '2024_total', café: 'café' },
    });
  });

  it('names the setting: columnNames that would write one column twice, or none, or with targets', () => {
    const twice = z.object({ customerID: z.string(), customer_id: z.string() });
    expect(configError({ datasets: [{ ...base, schema: twice, columnNames: 'snake_case' }] })).toBe(
      'config: dataset "orders": fields "customerID" and "customer_id" both write column "customer_id"',
    );
    const none = z.object({ '!!': z.string() });
    expect(configError({ datasets: [{ ...base, schema: none, columnNames: 'snake_case' }] })).toBe(
      'config: dataset "orders": field "!!" has no snake_case column name: give it one in columns',
    );
    expect(configError({ datasets: [{ ...base, columnNames: 'camel' }] })).toBe(
      'config: datasets.0.columnNames: Invalid option: expected one of "as-is"|"snake_case"',
    );
    const targets = [{ table: 'orders', columns: { id: 'id' }, key: ['id'] }];
    expect(
      configError({ datasets: [{ ...base, table: undefined, targets, columnNames: 'snake_case' }] }),
    ).toBe('config: dataset "orders": columnNames needs table (each target names its columns)');
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

describe('defineDataset', () => {
  it('types key, columns and checks.unique by the schema, and a percent as one (tsc refuses these)', () => {
    const orders = { name: 'orders', format: 'csv', table: 'orders', schema } as const;
    // @ts-expect-error: "nope" is no field of the schema
    const wrongKey = defineDataset({ ...orders, mode: 'upsert', key: ['nope'] });
    // @ts-expect-error: "nope" is no field of the schema
    const wrongColumn = defineDataset({ ...orders, columns: { nope: 'x' } });
    // @ts-expect-error: "nope" is no field of the schema
    const wrongUnique = defineDataset({ ...orders, publish: 'file', checks: { unique: ['nope'] } });
    // @ts-expect-error: a percent needs its "%"
    const wrongPercent = defineDataset({ ...orders, publish: 'file', maxRejects: '5' });
    // The definition as given (an identity function), which the spec refuses where a rule covers it.
    expect(wrongColumn.columns).toEqual({ nope: 'x' });
    expect([wrongKey, wrongUnique, wrongPercent].map((d) => configError({ datasets: [d] }))).toEqual([
      'config: dataset "orders": key field "nope" is not in its schema',
      'config: dataset "orders": checks.unique field "nope" is not in its schema',
      'config: datasets.0.maxRejects: a count or a percent like "5%"',
    ]);
  });
});

describe('the README options table', () => {
  // The user's reference for the dataset options: it must name each option of the spec, and state
  // the defaults a definition resolves with.
  const lines = readFileSync(new URL('../../README.md', import.meta.url), 'utf8').split('\n');
  const header = lines.findIndex((l) => /^\| option +\| default +\|/.test(l));
  const rows: { options: string[]; default: string }[] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    const [names = '', value = ''] = line
      .split('|')
      .slice(1, 3)
      .map((c) => c.trim());
    rows.push({ options: [...names.matchAll(/`(\w+)`/g)].map((m) => m[1] ?? ''), default: value });
  }

  it('names every option of the spec, and no other', () => {
    expect(rows.flatMap((r) => r.options).sort()).toEqual(Object.keys(datasetSpec.in.shape).sort());
  });

  it("states the default a definition resolves with (of a row's first option)", () => {
    const table = resolveDataset(base);
    const targets = resolveDataset({
      ...base,
      table: undefined,
      targets: [{ table: 'orders', columns: { id: 'id' }, key: ['id'] }],
    });
    /** The README's text for a default, read as a value: `incoming/<name>/`, `['']`, 8 MiB, 100. */
    const readmeValue = (text: string): unknown => {
      const bytes = /^(\d+) ([MG])iB$/.exec(text);
      if (bytes) return Number(bytes[1]) * 1024 ** (bytes[2] === 'M' ? 2 : 3);
      if (/^\d+$/.test(text)) return Number(text);
      if (text === '`true`' || text === '`false`') return text === '`true`';
      const code = /^`(.+)`$/.exec(text)?.[1];
      if (code === undefined) throw new Error(`unreadable default ${text}`);
      return code.startsWith('[') ? JSON.parse(code.replaceAll("'", '"')) : code.replace('<name>', base.name);
    };
    const stated = rows.filter((r) => r.default !== '—');
    expect(stated.length).toBeGreaterThan(10);
    for (const { options, default: text } of stated) {
      const option = options[0] ?? '';
      const value = (option in table ? table : targets) as unknown as Record<string, unknown>;
      const resolved = value[option] instanceof Set ? [...(value[option] as Set<string>)] : value[option];
      expect(resolved, option).toEqual(readmeValue(text));
    }
  });
});
