import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { resolveDataset, type TableDataset } from '../../shared/config/dataset.ts';
import type { ForeignKey } from '../../shared/ledger/foreign-keys.ts';
import { foreignKeyTarget } from '../../shared/load/write/foreign-keys.ts';

/** A single-table dataset's table, with its foreign keys from the catalog, as the relational writer's target. */

const regions = resolveDataset({
  name: 'regions',
  format: 'csv',
  table: 'nw.regions',
  mode: 'upsert',
  key: ['code'],
  columns: { code: 'region_code', parent: 'parent_code' },
  schema: z.object({
    code: z.string(),
    parent: z.string(),
    country: z.string(),
    zone: z.string(),
    name: z.string(),
  }),
}) as TableDataset;

const fk = (columns: string[], parent: string, parentColumns: string[], self = false): ForeignKey => ({
  columns,
  parent,
  parentColumns,
  self,
});

describe('foreignKeyTarget', () => {
  it('stores each foreign key as a reference found by the columns it references; the other columns as they are', () => {
    const target = foreignKeyTarget(regions, [
      // A self-reference on the dataset's key: written level by level.
      fk(['parent_code'], 'nw.regions', ['region_code'], true),
      // A composite key: its first column is stored, the second written as it is.
      fk(['country', 'zone'], 'geo.zones', ['country_code', 'zone_code']),
      // A key on a column the dataset does not write: left to the database.
      fk(['manager_id'], 'hr.people', ['id']),
    ]);
    expect(target).toEqual({
      table: 'nw.regions',
      columns: ['region_code', 'zone', 'name'],
      paths: ['code', 'zone', 'name'],
      references: [
        {
          column: 'parent_code',
          table: 'nw.regions',
          surrogate: 'region_code',
          keyColumns: ['region_code'],
          keyPaths: ['parent'],
          self: true,
        },
        {
          column: 'country',
          table: 'geo.zones',
          surrogate: 'country_code',
          keyColumns: ['country_code', 'zone_code'],
          keyPaths: ['country', 'zone'],
          self: false,
        },
      ],
      key: ['region_code'],
      mode: 'upsert',
    });
  });

  it('a composite key is stored before a single-column key on its first column, whatever their names', () => {
    // The catalog lists them by name: `deliveries_order_id_fkey` before `deliveries_order_id_product_id_fkey`.
    const target = foreignKeyTarget(regions, [
      fk(['country'], 'geo.countries', ['code']),
      fk(['country', 'zone'], 'geo.zones', ['country_code', 'zone_code']),
    ]);
    expect(target.references.map((r) => [r.column, r.table, r.keyColumns])).toEqual([
      ['country', 'geo.zones', ['country_code', 'zone_code']],
    ]);
  });

  it('a self-reference to columns other than the key is no level-by-level one; a column stored once', () => {
    const target = foreignKeyTarget(regions, [
      fk(['parent_code'], 'nw.regions', ['name'], true),
      fk(['parent_code'], 'other.t', ['x']),
    ]);
    expect(target.references.map((r) => [r.column, r.table, r.self])).toEqual([
      ['parent_code', 'nw.regions', false],
    ]);
    expect(target.columns).toEqual(['region_code', 'country', 'zone', 'name']);
  });
});
