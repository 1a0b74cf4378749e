import { describe, expect, it } from 'vitest';
import { nextHeader, type RunInputs, runCommands } from '../../cli/init/next-step.ts';

// The `run` init prints after `next:`: one command of every file when `run` routes each to its table's
// dataset, else a command per table with --dataset (which needs DATABASE_URL between the runs).

const inputs = (paths: string[], found: string[], base: string, datasets: string[]): RunInputs => ({
  config: 'out/dropload.config.ts',
  paths,
  found: found.map((file) => ({ file, base })),
  datasets,
  databaseUrl: false,
});

describe('runCommands', () => {
  const tables = [
    { name: 'orders', files: ['/x/exports/orders-2024-01.csv', '/x/exports/orders-2024-02.csv.gz'] },
    { name: 'customers', files: ['/x/exports/customers.tsv'] },
  ];
  const order = ['s.customers', 's.orders'];

  it('is one run of the folder given when run finds exactly the profiled files there', () => {
    const found = [
      '/x/exports/customers.tsv',
      '/x/exports/orders-2024-01.csv',
      '/x/exports/orders-2024-02.csv.gz',
    ];
    expect(
      runCommands(tables, order, inputs(['/x/exports'], found, '/x/exports', ['orders', 'customers'])),
    ).toEqual(['npx dropload --config out/dropload.config.ts run /x/exports']);
  });

  it('quotes a path with spaces or quotes as one shell argument', () => {
    const spaced = [{ name: 'orders', files: ["/x/my exports/Bob's orders.csv"] }];
    const config = { ...inputs([], [], '/x', ['orders']), config: 'my out/dropload.config.ts' };
    const [command] = runCommands(spaced, ['s.orders'], config);
    expect(command).toBe(
      `npx dropload --config 'my out/dropload.config.ts' run "/x/my exports/Bob's orders.csv" --dataset orders`,
    );
  });

  it('lists the files when the folder holds another (one init refused, a README)', () => {
    const found = [
      '/x/exports/README.md',
      '/x/exports/customers.tsv',
      '/x/exports/orders-2024-01.csv',
      '/x/exports/orders-2024-02.csv.gz',
    ];
    expect(
      runCommands(tables, order, inputs(['/x/exports'], found, '/x/exports', ['orders', 'customers'])),
    ).toEqual([
      'npx dropload --config out/dropload.config.ts run /x/exports/orders-2024-01.csv /x/exports/orders-2024-02.csv.gz /x/exports/customers.tsv',
    ]);
  });

  it('is a run per table, parents first, with --dataset, when a folder named like a dataset would take a file', () => {
    const nested = [
      { name: 'orders', files: ['/x/orders/orders.csv'] },
      { name: 'customers', files: ['/x/orders/customers.csv'] },
    ];
    const found = ['/x/orders/customers.csv', '/x/orders/orders.csv'];
    const commands = runCommands(
      nested,
      order,
      inputs(['/x/orders'], found, '/x/orders', ['orders', 'customers']),
    );
    expect(commands).toEqual([
      'npx dropload --config out/dropload.config.ts run /x/orders/customers.csv --dataset customers',
      'npx dropload --config out/dropload.config.ts run /x/orders/orders.csv --dataset orders',
    ]);
    expect(nextHeader({ commands, into: 'embedded' })).toBe(
      "next: load the files, parents first (run applies the migrations), into an embedded database, gone when run exits (set DATABASE_URL to keep the tables); each run is a process of its own, so the later ones find the earlier ones' rows only with DATABASE_URL set:",
    );
  });
});
