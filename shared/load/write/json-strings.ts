import type { Format } from '../../config/dataset.ts';

/** Column types whose text Postgres reads as JSON. */
const JSON_TYPES = new Set(['json', 'jsonb']);

/**
 * Per column, whether a string value goes as a JSON string. An NDJSON string is a value the file wrote,
 * not JSON text: `{"doc":"[1,2]"}` into a jsonb column is the string `"[1,2]"`, and sent as the
 * column's text it would be read as the array (and `"ok"` refused). A CSV or Parquet cell for such a
 * column is JSON text, sent as it is. Undefined when no column is one: the writers then look at no
 * value for it (the CSV path pays nothing).
 */
export function jsonStringColumns(format: Format, types: readonly string[]): boolean[] | undefined {
  if (format !== 'ndjson') return undefined;
  const json = types.map((t) => JSON_TYPES.has(t));
  return json.includes(true) ? json : undefined;
}

/** A value of a column `jsonStringColumns` marks: a string as its JSON text, any other value as it is. */
export function asJsonString(value: unknown): unknown {
  return typeof value === 'string' ? JSON.stringify(value) : value;
}
