import type { z } from 'zod';

/**
 * One rule for "no value", the same at every depth: JSON `null` and the dataset's `nullValues` reach
 * the schema as `undefined` wherever the schema declares a field (an object's key, an array's
 * element), so `.optional()` is the one way to allow a missing value. What the schema does not
 * declare (inside `z.record`, `z.json()`, `z.unknown()`, a union, a loose object's extra keys) it gets
 * as read: such a schema takes the document as it is, nulls and all.
 */

/** zod wrappers whose inner schema sees the same input. */
const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'nonoptional', 'readonly', 'catch']);

/** The schema that decides a value's declared fields: wrappers and a pipe's output side taken off. */
function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
  let s = schema;
  for (;;) {
    const def = s._zod.def;
    if (WRAPPERS.has(def.type)) s = (def as z.core.$ZodOptionalDef).innerType;
    else if (def.type === 'pipe') s = (def as z.core.$ZodPipeDef).in;
    else return s;
  }
}

export function isNoValue(value: unknown, nullValues: ReadonlySet<string>): boolean {
  return value === null || (typeof value === 'string' && nullValues.has(value));
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);

/** The declared fields of an object schema (after its wrappers), or undefined for any other schema. */
export function declaredShape(schema: z.core.$ZodType): Record<string, z.core.$ZodType> | undefined {
  const def = unwrap(schema)._zod.def;
  return def.type === 'object' ? (def as z.core.$ZodObjectDef).shape : undefined;
}

/**
 * A value as `schema` sees it: a no-value at a declared place is `undefined`. Copied only where
 * something changes, so the value as read stays intact (for a reject's "got …", and for `restoreNulls`).
 */
export function schemaView(
  schema: z.core.$ZodType,
  value: unknown,
  nullValues: ReadonlySet<string>,
): unknown {
  if (isNoValue(value, nullValues)) return undefined;
  if (value === null || typeof value !== 'object') return value;
  const s = unwrap(schema);
  const def = s._zod.def;
  if (def.type === 'array' && Array.isArray(value)) {
    const element = (def as z.core.$ZodArrayDef).element;
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const seen = schemaView(element, value[i], nullValues);
      if (seen === value[i]) continue;
      out ??= [...value];
      out[i] = seen;
    }
    return out ?? value;
  }
  if (def.type === 'object' && isRecord(value))
    return fieldsView((def as z.core.$ZodObjectDef).shape, value, nullValues);
  return value;
}

/** `schemaView` of an object's declared keys (the others are as read). */
export function fieldsView(
  shape: Record<string, z.core.$ZodType> | undefined,
  fields: Record<string, unknown>,
  nullValues: ReadonlySet<string>,
): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const name in fields) {
    const v = fields[name];
    const field = shape && Object.hasOwn(shape, name) ? shape[name] : undefined;
    let seen: unknown;
    if (isNoValue(v, nullValues)) seen = undefined;
    else if (field !== undefined && v !== null && typeof v === 'object')
      seen = schemaView(field, v, nullValues);
    else continue;
    if (seen === v) continue;
    out ??= { ...fields };
    out[name] = seen;
  }
  return out ?? fields;
}

/**
 * Puts back into the schema's output the JSON nulls the schema saw as `undefined` (a key or element
 * the output kept, with no value), so an object written whole to a json/jsonb column is the document
 * with its nulls, not one with those keys dropped. In place: the output is the schema's (or a copy
 * `schemaView` made), never the value as read. A column read from such a place gets null instead of
 * undefined: both are written as NULL.
 */
export function restoreNulls(output: unknown, read: unknown): void {
  if (output === read || output === null || typeof output !== 'object') return;
  if (read === null || typeof read !== 'object' || output instanceof Date) return;
  if (Array.isArray(output) !== Array.isArray(read)) return;
  const out = output as Record<string, unknown>;
  const was = read as Record<string, unknown>;
  for (const key of Object.keys(out)) {
    if (out[key] === undefined) {
      if (Object.hasOwn(was, key) && was[key] === null) out[key] = null;
    } else restoreNulls(out[key], was[key]);
  }
}
