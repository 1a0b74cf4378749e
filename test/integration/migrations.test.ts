import { type Kysely, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { resolveConfig } from '../../shared/config/config.ts';
import { defineDataset } from '../../shared/config/dataset.ts';
import { migrateToLatest } from '../../shared/ledger/migrate.ts';
import {
  CHUNK_STATES,
  type Database,
  FILE_STATES,
  REJECT_KINDS,
  REJECT_RESOLUTIONS,
} from '../../shared/ledger/schema.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/** A migration that changes a table already holding loaded rows, then loads that use the new shape. */

const create: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('mig_items')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .execute();
  },
};
// Adds a column with a default (existing rows get it without a rewrite) and a CHECK that existing rows
// must satisfy: added NOT VALID, then validated, so the table is not locked against loads meanwhile.
const addPrice: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .alterTable('mig_items')
      .addColumn('price', 'numeric(10, 2)', (c) => c.notNull().defaultTo(0))
      .execute();
    await sql`alter table mig_items add constraint mig_items_price_check check (price >= 0) not valid`.execute(
      db,
    );
    await sql`alter table mig_items validate constraint mig_items_price_check`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('mig_items').dropColumn('price').execute();
  },
};

const v1 = defineDataset({
  name: 'items',
  format: 'csv',
  table: 'mig_items',
  mode: 'upsert',
  key: ['id'],
  schema: z.object({ id: z.coerce.number().int(), name: z.string() }),
});
const v2 = defineDataset({
  ...v1,
  schema: z.object({ id: z.coerce.number().int(), name: z.string(), price: z.coerce.number() }),
});

let p: TestPipeline;
let db: Kysely<Database>;
beforeAll(async () => {
  p = await startTestPipeline({ datasets: [v1], migrations: { '20260101000000_create': create } }, [
    'mig_items',
  ]);
  db = p.deps.db;
});
afterAll(async () => {
  await p?.stop();
});

const items = async () =>
  (
    await sql<{
      id: number;
      name: string;
      price: string;
    }>`select id, name, price::text as price from mig_items order by id`.execute(db)
  ).rows;

describe('a migration on a loaded table', () => {
  it('adds a column and a constraint under existing rows, and the next load uses them', async () => {
    await p.load('incoming/items/a.csv', 'id,name\n1,one\n2,two\n');
    const migrations = { '20260101000000_create': create, '20260102000000_add_price': addPrice };
    expect(await migrateToLatest(db, migrations)).toEqual({ applied: ['20260102000000_add_price'] });
    expect(await items()).toEqual([
      { id: 1, name: 'one', price: '0.00' },
      { id: 2, name: 'two', price: '0.00' },
    ]);

    // The running pipeline picks up the new dataset definition; the table's new shape is read per chunk.
    p.deps.config = resolveConfig({ datasets: [v2], migrations }, 'v2');
    const { reports } = await p.load(
      'incoming/items/b.csv',
      'id,name,price\n2,two,9.50\n3,three,-1\n4,four,1\n',
    );
    expect(reports[0]?.rows).toMatchObject({ read: 3, inserted: 1, updated: 1, rejected: 1 });
    expect(reports[0]?.rejects).toEqual([
      {
        line: 3,
        column: null,
        reason: expect.stringMatching(
          /^database refused the row: new row for relation "mig_items" violates check constraint "mig_items_price_check"/,
        ),
      },
    ]);
    expect(await items()).toEqual([
      { id: 1, name: 'one', price: '0.00' },
      { id: 2, name: 'two', price: '9.50' },
      { id: 4, name: 'four', price: '1.00' },
    ]);
  });
});

describe('a second config migrating the same database', () => {
  it('is refused with what it means and what to do', async () => {
    const other = { '20260301000000_other_init': create };
    await expect(migrateToLatest(db, other)).rejects.toThrow(
      'dataset migration failed: corrupted migrations: previously executed migration 20260101000000_create is missing (this database records migrations this config does not have: another config migrated it. Use a database of its own for each config, or put every dataset into one config)',
    );
  });
});

describe("the ledger's own migrations", () => {
  it('admit exactly the file states, chunk states, reject kinds and resolutions the code names', async () => {
    const admitted = async (constraint: string) => {
      const { rows } = await sql<{ def: string }>`select pg_get_constraintdef(c.oid) as def
        from pg_constraint c join pg_namespace n on n.oid = c.connamespace
        where n.nspname = 'dropload' and c.conname = ${constraint}`.execute(db);
      return [...(rows[0]?.def ?? '').matchAll(/'([^']*)'/g)].map((m) => m[1]);
    };
    expect(await admitted('file_state_check')).toEqual([...FILE_STATES]);
    expect(await admitted('chunk_state_check')).toEqual([...CHUNK_STATES]);
    expect(await admitted('reject_kind_check')).toEqual([...REJECT_KINDS]);
    expect(await admitted('reject_resolved_by_check')).toEqual([...REJECT_RESOLUTIONS]);
  });
});
