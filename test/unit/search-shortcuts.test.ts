import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  sql,
  type Transaction,
} from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Reference, Target } from '../../shared/config/dataset.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { lookedUpFirst } from '../../shared/load/write/known-parents.ts';
import { noOpCheck, skippable } from '../../shared/load/write/no-op-steps.ts';

/**
 * When the one-row search of refused records may take its shortcuts: skip a step whose rows are all in
 * their table already (`no-op-steps.ts`), look a parent up before the records (`known-parents.ts`).
 * Taken where they do not hold, a record's outcome would change: a parent's insert that refuses it
 * skipped, a parent found that an earlier record's upsert had renamed.
 */

const target = (table: string, columns: string[], key: string[], mode: Target['mode']): Target => ({
  table,
  columns,
  paths: columns,
  references: [],
  key,
  mode,
});

const reference = (table: string, keyColumns: string[], self = false): Reference => ({
  column: `${table}_ref`,
  table,
  surrogate: 'id',
  keyColumns,
  keyPaths: keyColumns,
  self,
});

const withRefs = (t: Target, ...references: Reference[]): Target => ({ ...t, references });

describe('a step skipped when every row of it is in its table already', () => {
  const customers = target('customers', ['email', 'name'], ['email'], 'upsert');
  const orders = withRefs(
    target('orders', ['order_no'], ['order_no'], 'insert'),
    reference('customers', ['email']),
  );

  it('an upsert or an insert that ignores a conflict, with no references, into a table of its own', () => {
    expect(skippable([customers, orders], 0)).toBe(true);
    expect(skippable([{ ...customers, mode: 'insert-ignore' }, orders], 0)).toBe(true);
  });

  it('not a plain insert (its conflict is the refusal), a row with parents, a table two steps write', () => {
    expect(skippable([{ ...customers, mode: 'insert' }, orders], 0)).toBe(false);
    expect(skippable([customers, { ...orders, mode: 'upsert' }], 1)).toBe(false);
    expect(skippable([customers, orders, { ...customers, columns: ['email'] }], 0)).toBe(false);
    expect(skippable([{ ...customers, key: [] }], 0)).toBe(false);
  });
});

describe('the no-op check compares as the upsert does', () => {
  /** Kysely's compile-only setup: the Postgres compiler, no connection. */
  const db = new Kysely<Database>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (k) => new PostgresIntrospector(k),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
  }) as unknown as Transaction<Database>;
  const shapes = target('shapes', ['id', 'name', 'b', 'doc'], ['id'], 'upsert');
  const staged = { values: ['id', 'name', 'b', 'doc'].map((c) => sql`dropload_r.${sql.id(c)}`) };
  const comparison = (textCompared: Set<string>) =>
    noOpCheck(db, shapes, textCompared, sql`stage`, staged, 'skip').replace(/\s+/g, ' ');

  it('a column without equality (box, json) as its text on both sides, the others as they are', () => {
    expect(comparison(new Set(['b', 'doc']))).toContain(
      '(t."id", t."name", t."b"::text, t."doc"::text) is not distinct from ' +
        '(dropload_r."id", dropload_r."name", dropload_r."b"::text, dropload_r."doc"::text)',
    );
    expect(comparison(new Set())).toContain(
      '(t."id", t."name", t."b", t."doc") is not distinct from ' +
        '(dropload_r."id", dropload_r."name", dropload_r."b", dropload_r."doc")',
    );
  });
});

describe('a parent looked up before the records', () => {
  const orders = withRefs(
    target('orders', ['order_no'], ['order_no'], 'insert'),
    reference('customers', ['email']),
  );

  it('a parent no step writes, or one whose key and id no upsert of the batch rewrites', () => {
    expect(lookedUpFirst([orders], 0, 0)).toBe(true);
    const customers = target('customers', ['email', 'name'], ['email'], 'upsert');
    expect(lookedUpFirst([customers, orders], 1, 0)).toBe(true);
    const renamed = target('customers', ['id', 'email'], ['id'], 'insert-ignore');
    expect(lookedUpFirst([renamed, orders], 1, 0)).toBe(true);
  });

  it('not when an upsert of the batch may rename the parent (its key by id, the email updated)', () => {
    const renamed = target('customers', ['id', 'email'], ['id'], 'upsert');
    expect(lookedUpFirst([renamed, orders], 1, 0)).toBe(false);
    const renumbered = target('customers', ['email', 'id'], ['email'], 'upsert');
    expect(lookedUpFirst([renumbered, orders], 1, 0)).toBe(false);
  });

  it('not a row naming its own table as its parent', () => {
    const staff = withRefs(target('staff', ['id'], ['id'], 'insert'), reference('staff', ['id'], true));
    expect(lookedUpFirst([staff], 0, 0)).toBe(false);
  });
});
