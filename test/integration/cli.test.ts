import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { FileReport } from '../../cli/report.ts';
import { resetDatabase, SAMPLE_TABLES } from '../support/pipeline.ts';

const run = promisify(execFile);
const cli = (args: string[], env: Record<string, string | undefined> = {}) =>
  run(path.resolve('node_modules/.bin/node'), ['cli/dropload.ts', ...args], {
    env: { ...process.env, AWS_ENDPOINT_URL: undefined, ...env },
  });

describe('dropload run, end to end on the bundled samples', () => {
  it('loads every sample file and reports exact counts as JSON', async () => {
    await resetDatabase(SAMPLE_TABLES);
    const { stdout } = await cli(['run', 'samples/data', '--json']);
    const { files, timedOut } = JSON.parse(stdout) as { files: FileReport[]; timedOut: boolean };
    expect(timedOut).toBe(false);
    const summary = files.map((f) => [
      f.key,
      f.dataset,
      f.state,
      f.rows.read,
      f.rows.loaded,
      f.rows.rejected,
    ]);
    expect(summary).toEqual([
      ['incoming/customers/customers-2026-11-27.csv', 'customers', 'loaded', 7, 5, 2],
      ['incoming/events/events-2026-11-27.ndjson', 'events', 'loaded', 6, 4, 2],
      ['incoming/orders/orders-2026-11-27.csv', 'orders', 'loaded', 8, 4, 4],
      ['incoming/shop/categories/categories.csv', 'shop-categories', 'loaded', 6, 6, 0],
      ['incoming/shop/customers/customers.csv', 'shop-customers', 'loaded', 5, 4, 1],
      ['incoming/shop/order-docs/order-docs.ndjson', 'shop-order-docs', 'loaded', 4, 4, 0],
      ['incoming/shop/order-lines/order-lines.csv', 'shop-order-lines', 'loaded', 6, 6, 0],
      ['incoming/shop/orders/orders.csv', 'shop-orders', 'loaded', 4, 4, 0],
      [
        'incoming/shop/product-categories/product-categories.csv',
        'shop-product-categories',
        'loaded',
        6,
        6,
        0,
      ],
      ['incoming/shop/products/products.csv', 'shop-products', 'loaded', 4, 4, 0],
    ]);
    const orders = files[2];
    expect(orders?.rejects.map((r) => [r.line, r.column])).toEqual([
      [4, 'amount'],
      [5, 'currency'],
      [7, 'ordered_at'],
      [8, 'amount'],
    ]);
  });

  it('exits 1 and names the failure when a file fails, and 2 on bad usage', async () => {
    await resetDatabase(SAMPLE_TABLES);
    const failed = await cli(['run', 'package.json', '--dataset', 'orders']).catch(
      (e: { code: number; stdout: string }) => e,
    );
    expect('code' in failed && failed.code).toBe(1);
    expect(failed.stdout).toContain('incoming/orders/package.json: FAILED: header lacks required column(s)');
    const usage = await cli(['run', 'samples/data', '--dataset', 'nope']).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect('code' in usage && usage.code).toBe(2);
    expect(usage.stderr).toBe(
      'dropload: --dataset nope: no such dataset (have customers, orders, events, shop-customers, shop-categories, shop-products, shop-product-categories, shop-orders, shop-order-lines, shop-order-docs)\n',
    );
  });

  it('run --json --verbose: stdout is the report alone, the logs go to stderr and say what they count (issue 16 item 6)', async () => {
    await resetDatabase(['dev_rows']);
    const dir = await mkdtemp(path.join(tmpdir(), 'dropload-cli-'));
    const file = path.join(dir, 'rows.csv');
    // About 200 KB: four 64 KiB chunks.
    const rows = Array.from({ length: 5000 }, (_, i) => `${i + 1},${'label '.repeat(5)}${i}`);
    await writeFile(file, `id,label\n${rows.join('\n')}\n`);
    const { stdout, stderr } = await cli([
      '--config',
      'test/support/dev.config.ts',
      '--verbose',
      'run',
      file,
      '--dataset',
      'rows',
      '--json',
    ]);
    const { files } = JSON.parse(stdout) as { files: FileReport[] };
    expect(files.map((f) => [f.state, f.rows.loaded, f.chunks])).toEqual([
      ['loaded', 5000, { done: 4, total: 4 }],
    ]);
    const split = stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.message === 'file split');
    expect([split?.chunks, split?.sent, split?.records]).toEqual([4, 4, 5000]);
  });
});
