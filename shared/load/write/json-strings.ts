import { type RawBuilder, sql } from 'kysely';

/**
 * SQL: true when the type whose oid `type` is reads its text as JSON: json or jsonb, or a domain over
 * one (followed down through domains of domains). A domain column shows its own name, so the catalog,
 * not the type's name, says so.
 */
export function jsonBased(type: RawBuilder<unknown>): RawBuilder<boolean> {
  return sql<boolean>`(with recursive d(oid) as (
      select ${type}
      union all select t.typbasetype from pg_type t join d on t.oid = d.oid where t.typtype = 'd'
    ) select bool_or(d.oid in ('json'::regtype, 'jsonb'::regtype)) from d)`;
}

/**
 * Per column, whether a string value goes as a JSON string. An NDJSON string is a value the file wrote,
 * not JSON text: `{"doc":"[1,2]"}` into a jsonb column is the string `"[1,2]"`, and sent as the
 * column's text it would be read as the array (and `"ok"` refused). A CSV or Parquet cell for such a
 * column is JSON text, sent as it is. `json` is the columns `TableShape.jsonTyped` names, read for an
 * NDJSON dataset only. Undefined when no column is one: the writers then look at no value for it (the
 * CSV path pays nothing).
 */
export function jsonStringColumns(
  columns: readonly string[],
  json: ReadonlySet<string>,
): boolean[] | undefined {
  if (json.size === 0) return undefined;
  const marks = columns.map((c) => json.has(c));
  return marks.includes(true) ? marks : undefined;
}

/** A value of a column `jsonStringColumns` marks: a string as its JSON text, any other value as it is. */
export function asJsonString(value: unknown): unknown {
  return typeof value === 'string' ? JSON.stringify(value) : value;
}
