import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type RawBuilder,
  sql,
} from 'kysely';
import { describe, expect, it } from 'vitest';
import { onConflict } from '../../shared/load/write/statement.ts';

/** Kysely's compile-only setup: the Postgres compiler, no connection. */
const db = new Kysely<unknown>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (k) => new PostgresIntrospector(k),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

const text = (clause: RawBuilder<unknown>) => clause.compile(db).sql.replace(/\s+/g, ' ').trim();
const COLUMNS = ['id', 'name', 'doc'];

describe('onConflict', () => {
  it('with every column of a type with equality: the row comparison as before', () => {
    expect(text(onConflict(sql`t`, COLUMNS, ['id'], 'upsert', new Set()))).toBe(
      'on conflict ("id") do update set "name" = excluded."name", "doc" = excluded."doc" ' +
        'where (t."name", t."doc") is distinct from (excluded."name", excluded."doc")',
    );
  });

  it('compares the columns of textCompared as their text, on both sides', () => {
    expect(text(onConflict(sql.table('docs'), COLUMNS, ['id'], 'upsert', new Set(['doc'])))).toBe(
      'on conflict ("id") do update set "name" = excluded."name", "doc" = excluded."doc" ' +
        'where ("docs"."name", "docs"."doc"::text) is distinct from (excluded."name", excluded."doc"::text)',
    );
  });

  it('insert-ignore and a key of every column: do nothing, whatever textCompared says', () => {
    expect(text(onConflict(sql`t`, COLUMNS, ['id'], 'insert-ignore', new Set(['doc'])))).toBe(
      'on conflict ("id") do nothing',
    );
    expect(text(onConflict(sql`t`, ['doc'], ['doc'], 'upsert', new Set(['doc'])))).toBe(
      'on conflict ("doc") do nothing',
    );
  });
});
