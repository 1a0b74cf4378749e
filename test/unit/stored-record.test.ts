import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { resolveDataset, type TargetsDataset } from '../../shared/config/dataset.ts';
import { decodeUnit, encodeUnit, unitOf } from '../../shared/load/write/relations.ts';

/** How a waiting record is parked in `dropload.orphan.row`, and read back for its retry. */

const orders = resolveDataset({
  name: 'orders',
  format: 'ndjson',
  schema: z.object({
    order_no: z.number(),
    customer: z.string(),
    lines: z.array(z.object({ line_no: z.number() })),
  }),
  targets: [
    { table: 'rec.customers', columns: { email: 'customer' }, key: ['email'] },
    {
      table: 'rec.orders',
      columns: { order_no: 'order_no' },
      references: { customer_ref: { table: 'rec.customers', key: { email: 'customer' } } },
      key: ['order_no'],
    },
    {
      table: 'rec.lines',
      each: 'lines[]',
      columns: { line_no: 'line_no' },
      references: { order_ref: { table: 'rec.orders', key: { order_no: '/order_no' } } },
      key: ['order_ref', 'line_no'],
    },
  ],
}) as TargetsDataset;

const document = { order_no: 7, customer: 'a@x', lines: [{ line_no: 1 }, { line_no: 2 }] };
const unit = unitOf(orders, { line: 3, raw: 'raw', values: document }, 0);

describe('a parked record', () => {
  it('holds every row of the record, per table by column name, and reads back as the same rows', () => {
    const stored = encodeUnit(orders.targets, unit);
    expect(stored).toEqual({
      v: 2,
      rows: {
        'rec.customers': [{ values: { email: 'a@x' }, refs: {} }],
        'rec.orders': [{ values: { order_no: '7' }, refs: { customer_ref: { email: 'a@x' } } }],
        'rec.lines': [
          { values: { line_no: '1' }, refs: { order_ref: { order_no: '7' } } },
          { values: { line_no: '2' }, refs: { order_ref: { order_no: '7' } } },
        ],
      },
    });
    expect(decodeUnit(orders.targets, 'rec.orders', JSON.parse(JSON.stringify(stored)))).toEqual({
      rows: unit.rows,
    });
  });

  it('parked before records were (one row of its `target` table) reads back as a record of that row', () => {
    const legacy = { values: { line_no: '2' }, refs: { order_ref: { order_no: '7' } } };
    expect(decodeUnit(orders.targets, 'rec.lines', legacy)).toEqual({
      rows: [[], [], [{ values: ['2'], refs: [['7']] }]],
    });
  });

  it('with rows of a table that is no longer a target: names that table', () => {
    const stored = { rows: { 'rec.customers': [], 'rec.gone': [{ values: {}, refs: {} }] } };
    expect(decodeUnit(orders.targets, 'rec.customers', stored)).toEqual({ gone: 'rec.gone' });
    expect(decodeUnit(orders.targets, 'rec.gone', { values: {}, refs: {} })).toEqual({ gone: 'rec.gone' });
  });
});
