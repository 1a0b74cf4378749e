import { type DatasetDefinition, defineDataset } from 'dropload';
import { z } from 'zod';

// The "shop" family: flat CSVs, one per table, dropped in any order, and one nested NDJSON document per
// order that writes five tables at once. Files name parents by natural key (customer email, product
// SKU, category slug, order number); the tables store surrogate ids (samples/migrations/*_shop.ts).
// A row whose parent has not landed yet waits (up to orphanWaitSeconds) instead of being rejected.

const ORPHAN_WAIT_SECONDS = 600;
const currency = z.enum(['EUR', 'USD', 'GBP']);
const email = z.string().trim().toLowerCase().pipe(z.email());
const sku = z.string().regex(/^[A-Z0-9-]{3,32}$/, 'expected a SKU (A-Z, 0-9, -)');
const slug = z.string().regex(/^[a-z0-9]+(-[a-z0-9]+)*$/, 'expected a slug (a-z, 0-9, -)');
const orderNo = z.string().regex(/^SO-[0-9]{4,}$/, 'expected an order number like SO-1001');
const status = z.enum(['placed', 'paid', 'shipped', 'cancelled']);
const money = (s: z.ZodNumber) => s.nonnegative().max(9_999_999_999.99);

/** Customers with their 1:1 profile: one CSV row → shop.customers + shop.customer_profiles. */
export const shopCustomers = defineDataset({
  name: 'shop-customers',
  prefix: 'incoming/shop/customers/',
  format: 'csv',
  schema: z.object({
    email,
    name: z.string().trim().min(1).max(200),
    country: z.string().regex(/^[A-Z]{2}$/, 'expected a two-letter ISO country code'),
    birthday: z.iso
      .date()
      .refine((d) => d >= '1800-01-01', 'expected a date from 1800 on')
      .optional(),
    newsletter: z.stringbool().default(false),
  }),
  targets: [
    {
      table: 'shop.customers',
      columns: { email: 'email', name: 'name', country: 'country' },
      key: ['email'],
    },
    {
      table: 'shop.customer_profiles',
      columns: { birthday: 'birthday', newsletter: 'newsletter' },
      references: { customer_id: { table: 'shop.customers', key: { email: 'email' } } },
      key: ['customer_id'],
    },
  ],
  orphanWaitSeconds: ORPHAN_WAIT_SECONDS,
});

/** Categories reference their parent category by slug, possibly one further down the file or in a later file. */
export const shopCategories = defineDataset({
  name: 'shop-categories',
  prefix: 'incoming/shop/categories/',
  format: 'csv',
  schema: z.object({ slug, name: z.string().trim().min(1), parent: slug.optional() }),
  targets: [
    {
      table: 'shop.categories',
      columns: { slug: 'slug', name: 'name' },
      references: { parent_id: { table: 'shop.categories', key: { slug: 'parent' } } },
      key: ['slug'],
    },
  ],
  orphanWaitSeconds: ORPHAN_WAIT_SECONDS,
});

export const shopProducts = defineDataset({
  name: 'shop-products',
  prefix: 'incoming/shop/products/',
  format: 'csv',
  schema: z.object({ sku, name: z.string().trim().min(1), price: money(z.coerce.number()), currency }),
  targets: [
    {
      table: 'shop.products',
      columns: { sku: 'sku', name: 'name', price: 'price', currency: 'currency' },
      key: ['sku'],
    },
  ],
  orphanWaitSeconds: ORPHAN_WAIT_SECONDS,
});

/** M:N products ↔ categories, with a rank. */
export const shopProductCategories = defineDataset({
  name: 'shop-product-categories',
  prefix: 'incoming/shop/product-categories/',
  format: 'csv',
  schema: z.object({ sku, category: slug, rank: z.coerce.number().int().min(1).max(100).default(1) }),
  targets: [
    {
      table: 'shop.product_categories',
      columns: { rank: 'rank' },
      references: {
        product_id: { table: 'shop.products', key: { sku: 'sku' } },
        category_id: { table: 'shop.categories', key: { slug: 'category' } },
      },
      key: ['product_id', 'category_id'],
    },
  ],
  orphanWaitSeconds: ORPHAN_WAIT_SECONDS,
});

export const shopOrders = defineDataset({
  name: 'shop-orders',
  prefix: 'incoming/shop/orders/',
  format: 'csv',
  schema: z.object({
    order_no: orderNo,
    customer_email: email,
    ordered_at: z.coerce.date(),
    status,
    currency,
  }),
  targets: [
    {
      table: 'shop.orders',
      columns: { order_no: 'order_no', ordered_at: 'ordered_at', status: 'status', currency: 'currency' },
      references: { customer_id: { table: 'shop.customers', key: { email: 'customer_email' } } },
      key: ['order_no'],
    },
  ],
  orphanWaitSeconds: ORPHAN_WAIT_SECONDS,
});

/** M:N orders ↔ products with quantity and price; composite key (order, line). */
export const shopOrderLines = defineDataset({
  name: 'shop-order-lines',
  prefix: 'incoming/shop/order-lines/',
  format: 'csv',
  schema: z.object({
    order_no: orderNo,
    line_no: z.coerce.number().int().min(1).max(999),
    sku,
    quantity: z.coerce.number().int().positive(),
    unit_price: money(z.coerce.number()),
  }),
  targets: [
    {
      table: 'shop.order_lines',
      columns: { line_no: 'line_no', quantity: 'quantity', unit_price: 'unit_price' },
      references: {
        order_id: { table: 'shop.orders', key: { order_no: 'order_no' } },
        product_id: { table: 'shop.products', key: { sku: 'sku' } },
      },
      key: ['order_id', 'line_no'],
    },
  ],
  orphanWaitSeconds: ORPHAN_WAIT_SECONDS,
});

/** One nested document per order: the order, its customer, its lines, their products and the products' categories. */
export const shopOrderDocs = defineDataset({
  name: 'shop-order-docs',
  prefix: 'incoming/shop/order-docs/',
  format: 'ndjson',
  schema: z.object({
    order_no: orderNo,
    ordered_at: z.coerce.date(),
    status,
    currency,
    customer: z.object({
      email,
      name: z.string().trim().min(1).max(200),
      country: z.string().regex(/^[A-Z]{2}$/),
    }),
    lines: z
      .array(
        z.object({
          line_no: z.number().int().min(1).max(999),
          quantity: z.number().int().positive(),
          unit_price: money(z.number()),
          product: z.object({
            sku,
            name: z.string().trim().min(1),
            price: money(z.number()),
            currency,
            categories: z
              .array(z.object({ slug, rank: z.number().int().min(1).max(100).default(1) }))
              .default([]),
          }),
        }),
      )
      .min(1),
  }),
  targets: [
    {
      table: 'shop.orders',
      columns: { order_no: 'order_no', ordered_at: 'ordered_at', status: 'status', currency: 'currency' },
      references: { customer_id: { table: 'shop.customers', key: { email: 'customer.email' } } },
      key: ['order_no'],
    },
    {
      table: 'shop.customers',
      columns: { email: 'customer.email', name: 'customer.name', country: 'customer.country' },
      key: ['email'],
    },
    {
      table: 'shop.products',
      each: 'lines[]',
      columns: {
        sku: 'product.sku',
        name: 'product.name',
        price: 'product.price',
        currency: 'product.currency',
      },
      key: ['sku'],
    },
    {
      table: 'shop.order_lines',
      each: 'lines[]',
      columns: { line_no: 'line_no', quantity: 'quantity', unit_price: 'unit_price' },
      references: {
        order_id: { table: 'shop.orders', key: { order_no: '/order_no' } },
        product_id: { table: 'shop.products', key: { sku: 'product.sku' } },
      },
      key: ['order_id', 'line_no'],
    },
    {
      // Categories are named by slug only: they come from the categories file (and may arrive later).
      table: 'shop.product_categories',
      each: 'lines[].product.categories[]',
      columns: { rank: 'rank' },
      references: {
        product_id: { table: 'shop.products', key: { sku: '../product.sku' } },
        category_id: { table: 'shop.categories', key: { slug: 'slug' } },
      },
      key: ['product_id', 'category_id'],
    },
  ],
  orphanWaitSeconds: ORPHAN_WAIT_SECONDS,
});

export const shopDatasets: DatasetDefinition[] = [
  shopCustomers,
  shopCategories,
  shopProducts,
  shopProductCategories,
  shopOrders,
  shopOrderLines,
  shopOrderDocs,
];

/** The shop's tables, children first (for dropping). */
export const SHOP_TABLES = [
  'shop.order_lines',
  'shop.product_categories',
  'shop.orders',
  'shop.products',
  'shop.categories',
  'shop.customer_profiles',
  'shop.customers',
];
