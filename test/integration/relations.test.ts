import { readFile } from 'node:fs/promises';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as shop from '../../samples/migrations/20261201100000_shop.ts';
import { SHOP_TABLES, shopDatasets, shopOrderLines } from '../../samples/shop.ts';
import { defineDataset } from '../../shared/config/dataset.ts';
import { filesByKey, rejectsOf } from '../../shared/ledger/ledger.ts';
import { type Database, FINAL_STATES, type FileRow } from '../../shared/ledger/schema.ts';
import { retryRejects } from '../../shared/ops/retry-rejects.ts';
import { expectHonestCounts } from '../support/counts.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';
import { waitFor } from '../support/runners.ts';

// Order lines that give up waiting quickly, for the expiry test.
const strictLines = defineDataset({
  ...shopOrderLines,
  name: 'shop-strict-lines',
  prefix: 'incoming/shop/strict-lines/',
  orphanWaitSeconds: 2,
});

const config = {
  datasets: [...shopDatasets, strictLines],
  migrations: { '20261201100000_shop': shop },
};

const FILES = {
  categories: ['shop-categories/categories.csv', 'categories'],
  customers: ['shop-customers/customers.csv', 'customers'],
  products: ['shop-products/products.csv', 'products'],
  productCategories: ['shop-product-categories/product-categories.csv', 'product-categories'],
  orders: ['shop-orders/orders.csv', 'orders'],
  orderLines: ['shop-order-lines/order-lines.csv', 'order-lines'],
  orderDocs: ['shop-order-docs/order-docs.ndjson', 'order-docs'],
} as const;
type FileName = keyof typeof FILES;
const PARENTS_FIRST: FileName[] = [
  'categories',
  'customers',
  'products',
  'productCategories',
  'orders',
  'orderLines',
];

let p: TestPipeline;
let db: Kysely<Database>;
const content: Partial<Record<FileName, string>> = {};

beforeAll(async () => {
  p = await startTestPipeline(config, SHOP_TABLES);
  db = p.deps.db;
  for (const [name, [file]] of Object.entries(FILES)) {
    content[name as FileName] = await readFile(`samples/data/${file}`, 'utf8');
  }
});
afterAll(async () => {
  await p?.stop();
});

const keyOf = (tag: string, name: FileName) => {
  const [file, folder] = FILES[name];
  return `incoming/shop/${folder}/${tag}-${file.split('/')[1]}`;
};

async function drop(key: string, body: string) {
  const path = `${await import('node:os').then((os) => os.tmpdir())}/dropload-rel-${key.replaceAll('/', '_')}`;
  await import('node:fs/promises').then((fs) => fs.writeFile(path, body));
  return p.upload(path, key);
}

async function fileOf(key: string): Promise<FileRow | undefined> {
  return (await filesByKey(db, p.stack.bucket, [key])).at(-1);
}

const finished = (keys: string[]) =>
  waitFor(`${keys.join(', ')} to finish`, async () => {
    const files = await Promise.all(keys.map(fileOf));
    return files.every((f) => f && FINAL_STATES.includes(f.state)) ? (files as FileRow[]) : undefined;
  });

/** Every chunk committed, rows still waiting for parents. */
const waiting = (key: string) =>
  waitFor(`${key} to wait for its parents`, async () => {
    const f = await fileOf(key);
    return f && f.state === 'waiting' && f.chunks_done === f.chunk_count ? f : undefined;
  });

/** Every chunk committed (the file loaded, or waiting for parents). */
const chunksDone = (key: string) =>
  waitFor(`${key}'s chunks`, async () => {
    const f = await fileOf(key);
    return f && f.chunk_count !== null && f.chunks_done === f.chunk_count ? f : undefined;
  });

async function orphanCount(fileId?: number): Promise<number> {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from dropload.orphan
    where ${fileId === undefined ? sql`true` : sql`file_id = ${fileId}`}`.execute(db);
  return rows[0]?.n ?? 0;
}

async function truncateShop() {
  await sql`truncate ${sql.join(SHOP_TABLES.map((t) => sql.table(t)))} restart identity cascade`.execute(db);
}

/** Full table contents, surrogate ids replaced by the natural keys they stand for. */
async function snapshot() {
  const q = async (query: ReturnType<typeof sql>) => (await query.execute(db)).rows;
  return {
    customers: await q(sql`select email, name, country from shop.customers order by email`),
    profiles: await q(sql`select c.email, p.birthday::text as birthday, p.newsletter
      from shop.customer_profiles p join shop.customers c on c.id = p.customer_id order by c.email`),
    categories: await q(sql`select c.slug, c.name, parent.slug as parent
      from shop.categories c left join shop.categories parent on parent.id = c.parent_id order by c.slug`),
    products: await q(sql`select sku, name, price::text as price, currency from shop.products order by sku`),
    productCategories: await q(sql`select p.sku, c.slug, pc.rank from shop.product_categories pc
      join shop.products p on p.id = pc.product_id join shop.categories c on c.id = pc.category_id order by 1, 2`),
    orders: await q(sql`select o.order_no, c.email, o.ordered_at, o.status, o.currency
      from shop.orders o join shop.customers c on c.id = o.customer_id order by o.order_no`),
    orderLines: await q(sql`select o.order_no, l.line_no, p.sku, l.quantity, l.unit_price::text as unit_price
      from shop.order_lines l join shop.orders o on o.id = l.order_id join shop.products p on p.id = l.product_id
      order by 1, 2`),
  };
}

async function counts() {
  const out: Record<string, number> = {};
  for (const t of SHOP_TABLES) {
    out[t] =
      (await sql<{ n: number }>`select count(*)::int as n from ${sql.table(t)}`.execute(db)).rows[0]?.n ?? 0;
  }
  return out;
}

const EXPECTED_COUNTS = {
  'shop.customers': 4,
  'shop.customer_profiles': 4,
  'shop.categories': 6,
  'shop.products': 4,
  'shop.product_categories': 6,
  'shop.orders': 4,
  'shop.order_lines': 6,
};

/** read/loaded/rejected per file: identical whatever the order. */
const EXPECTED_ROWS: Partial<Record<FileName, [number, number, number]>> = {
  categories: [6, 6, 0],
  customers: [5, 4, 1],
  products: [4, 4, 0],
  productCategories: [6, 6, 0],
  orders: [4, 4, 0],
  orderLines: [6, 6, 0],
  orderDocs: [4, 4, 0],
};

function expectRows(files: FileRow[], names: FileName[]) {
  files.forEach((f, i) => {
    const name = names[i] as FileName;
    expect([name, f.state, f.rows_read, f.rows_read - f.rows_rejected, f.rows_rejected]).toEqual([
      name,
      'loaded',
      ...(EXPECTED_ROWS[name] ?? []),
    ]);
  });
}

let reference: Awaited<ReturnType<typeof snapshot>>;

describe('the shop family, flat CSVs in any order', () => {
  it('parents first: every row lands, every reference resolved through natural keys', async () => {
    const keys: string[] = [];
    for (const name of PARENTS_FIRST) {
      const key = keyOf('first', name);
      keys.push(key);
      await drop(key, content[name] as string);
      await finished([key]);
    }
    expectRows(await finished(keys), PARENTS_FIRST);
    expect(await counts()).toEqual(EXPECTED_COUNTS);
    expect(await orphanCount()).toBe(0);
    reference = await snapshot();
    expect(reference.categories).toEqual([
      { slug: 'accessories', name: 'Accessories', parent: 'computers' },
      { slug: 'books', name: 'Books', parent: null },
      { slug: 'computers', name: 'Computers', parent: null },
      { slug: 'gaming-laptops', name: 'Gaming laptops', parent: 'laptops' },
      { slug: 'laptops', name: 'Laptops', parent: 'computers' },
      { slug: 'programming', name: 'Programming', parent: 'books' },
    ]);
    expect(reference.orderLines[1]).toEqual({
      order_no: 'SO-1001',
      line_no: 2,
      sku: 'ACC-MOUSE',
      quantity: 2,
      unit_price: '85.00',
    });
    const customers = await fileOf(keyOf('first', 'customers'));
    expect((await rejectsOf(db, customers?.id ?? 0)).map((r) => [r.line, r.column])).toEqual([[6, 'email']]);
  });

  it('children first: children wait (the file is waiting), then load when their parents land late', async () => {
    await truncateShop();
    const order = [...PARENTS_FIRST].reverse();
    const keys = order.map((n) => keyOf('last', n));
    // Order lines alone: all six wait for their orders and products.
    const lines = await drop(keys[0] as string, content.orderLines as string);
    const parked = await waiting(lines.key);
    expect(await orphanCount(parked.id)).toBe(6);
    expect(await counts()).toMatchObject({ 'shop.order_lines': 0 });
    const { rows: missing } = await sql<{ missing: string }>`select missing from dropload.orphan
      where file_id = ${parked.id} order by line limit 1`.execute(db);
    expect(missing[0]?.missing).toBe(
      'shop.orders row with order_no = SO-1001; shop.products row with sku = LAP-001',
    );
    for (const [i, name] of order.entries()) {
      if (i === 0) continue;
      await drop(keys[i] as string, content[name] as string);
      await chunksDone(keys[i] as string);
    }
    expectRows(await finished(keys), order);
    expect(await orphanCount()).toBe(0);
    expect(await counts()).toEqual(EXPECTED_COUNTS);
    expect(await snapshot()).toEqual(reference);
  });

  it('all at once, concurrently: the same database', async () => {
    await truncateShop();
    const keys = PARENTS_FIRST.map((n) => keyOf('all', n));
    await Promise.all(PARENTS_FIRST.map((n, i) => drop(keys[i] as string, content[n] as string)));
    expectRows(await finished(keys), PARENTS_FIRST);
    expect(await counts()).toEqual(EXPECTED_COUNTS);
    expect(await snapshot()).toEqual(reference);
  });
});

describe('a nested NDJSON document per order', () => {
  it('produces the same normalized rows as the flat CSVs', async () => {
    await truncateShop();
    // Documents first: their product categories wait for the categories file, and so each whole
    // document waits (one parked record each), none of its rows written.
    const docs = keyOf('nested', 'orderDocs');
    await drop(docs, content.orderDocs as string);
    const parked = await waiting(docs);
    expect(await orphanCount(parked.id)).toBe(4);
    expect(await counts()).toMatchObject({ 'shop.orders': 0, 'shop.order_lines': 0, 'shop.products': 0 });
    const keys = [keyOf('nested', 'categories'), keyOf('nested', 'customers')];
    await drop(keys[0] as string, content.categories as string);
    await drop(keys[1] as string, content.customers as string);
    expectRows(await finished([docs, ...keys]), ['orderDocs', 'categories', 'customers']);
    expect(await counts()).toEqual(EXPECTED_COUNTS);
    expect(await snapshot()).toEqual(reference);
  });
});

describe('upserts keep relations intact', () => {
  it('a changed parent is updated in place: same surrogate id, children still attached', async () => {
    const idOf = async () =>
      (
        await sql<{
          id: string;
        }>`select id::text as id from shop.customers where email = 'ada@example.com'`.execute(db)
      ).rows[0]?.id;
    const before = await idOf();
    const changed = (content.customers as string).replace('Ada Lovelace,GB', 'Augusta Ada King,GB');
    const key = 'incoming/shop/customers/changed.csv';
    await drop(key, changed);
    const [file] = await finished([key]);
    expect([file?.rows_inserted, file?.rows_updated]).toEqual([0, 1]);
    expect(await idOf()).toBe(before);
    const after = await snapshot();
    expect(after.customers.find((c) => (c as { email: string }).email === 'ada@example.com')).toMatchObject({
      name: 'Augusta Ada King',
    });
    expect(after.orders).toEqual(reference.orders);
    expect(after.profiles).toEqual(reference.profiles);
    expect(await counts()).toEqual(EXPECTED_COUNTS);
  });
});

describe('self-reference across files', () => {
  it('a category naming a parent from a later file waits for it, then points at it', async () => {
    const child = 'incoming/shop/categories/tablets.csv';
    await drop(child, 'slug,name,parent\ntablets,Tablets,mobile\nphones,Phones,mobile\n');
    await waiting(child);
    const parent = 'incoming/shop/categories/mobile.csv';
    await drop(parent, 'slug,name,parent\nmobile,Mobile,computers\n');
    await finished([child, parent]);
    const { rows } = await sql<{ slug: string; parent: string }>`select c.slug, p.slug as parent
      from shop.categories c join shop.categories p on p.id = c.parent_id
      where c.slug in ('tablets', 'phones', 'mobile') order by 1`.execute(db);
    expect(rows).toEqual([
      { slug: 'mobile', parent: 'computers' },
      { slug: 'phones', parent: 'mobile' },
      { slug: 'tablets', parent: 'mobile' },
    ]);
  });
});

describe('an orphan past its wait', () => {
  it('becomes a reject naming the missing key while its siblings load now; retry-rejects replays it', async () => {
    const key = 'incoming/shop/strict-lines/late.csv';
    await drop(
      key,
      'order_no,line_no,sku,quantity,unit_price\nSO-1002,2,LAP-001,1,10.00\nSO-9999,1,LAP-001,1,10.00\n',
    );
    const [file] = await finished([key]);
    expect([file?.state, file?.rows_read, file?.rows_rejected]).toEqual(['loaded', 2, 1]);
    const rejects = await rejectsOf(db, file?.id ?? 0);
    expect(rejects.map((r) => [r.line, r.column, r.reason])).toEqual([
      [3, 'order_id', 'orphan: no shop.orders row with order_no = SO-9999 (waited 2s)'],
    ]);
    expect(rejects.map((r) => r.kind)).toEqual(['orphan']);
    expect(await orphanCount(file?.id)).toBe(0);

    // The parent lands after all; the rejected line replays.
    const orders = 'incoming/shop/orders/late.csv';
    await drop(
      orders,
      'order_no,customer_email,ordered_at,status,currency\nSO-9999,ada@example.com,2026-11-28T10:00:00Z,paid,EUR\n',
    );
    await finished([orders]);
    const retried = await retryRejects({ db, config: p.config, logger: p.deps.logger }, key);
    // retry-rejects moves counters too: the identity still holds.
    await expectHonestCounts(db);
    expect([retried.loaded, retried.stillRejected]).toEqual([1, 0]);
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from shop.order_lines l
      join shop.orders o on o.id = l.order_id where o.order_no in ('SO-9999', 'SO-1002')`.execute(db);
    expect(rows[0]?.n).toBe(3);
  });
});
