import type { z } from 'zod';
import type { Dataset } from '../config/dataset.ts';
import { errorMessage } from '../core/errors.ts';
import { isCanonicalIso, isoInstant } from '../formats/iso-time.ts';
import type { ParsedRecord, RecordCursor, RecordError } from '../formats/parsing.ts';
import type { Reject } from '../ledger/ledger.ts';
import { BEYOND_DOUBLE, beyondDoubleIn, exactNumbers, finiteCopy } from './exact-numbers.ts';
import { type FastCheck, fastCheck, UNSURE } from './fast-check.ts';
import { joinedFileCheck } from './joined-files.ts';
import { declaredShape, fieldsView, restoreNulls, schemaView } from './no-value.ts';
import { numberLoss, numberSource } from './number-source.ts';
import { recordUnstorableReject } from './unstorable.ts';

export interface ValidRow {
  line: number;
  raw: string;
  values: Record<string, unknown>;
}

export interface Validated {
  rows: ValidRow[];
  rejects: Reject[];
}

function describe(value: unknown): string {
  if (value === undefined) return 'no value';
  let text: string;
  try {
    // JSON has no BigInt (a Parquet INT64), and some values it cannot write at all.
    text =
      typeof value === 'string' || typeof value === 'bigint'
        ? String(value)
        : (JSON.stringify(value, jsonBigint) ?? String(value));
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}

const jsonBigint = (_key: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

/**
 * The reject for a record the schema threw on instead of answering (a transform or refinement that
 * throws): the error belongs to that record, and must not fail its neighbours' chunk.
 */
function thrownReject(record: { line: number; raw: string }, err: unknown): Reject {
  const reason = `the schema threw while checking the record: ${errorMessage(err)}`;
  return { line: record.line, column: null, kind: 'invalid', reason, raw: record.raw };
}

/**
 * The reject for a record that could not be read into fields: `malformed` as the file has it, or
 * `unreadable` when the parser could not keep its text (see RejectKind).
 */
export function recordErrorReject(
  record: { line: number; raw: string },
  error: RecordError | undefined,
): Reject {
  return {
    line: record.line,
    column: error?.column ?? null,
    kind: error?.unreadable ? 'unreadable' : 'malformed',
    reason: error?.reason ?? 'unreadable record',
    raw: record.raw,
  };
}

/** zod's wording for coerced values ("expected date, received Date") says little to whoever fixes the file. */
function plainMessage(issue: z.core.$ZodIssue, missing: boolean): string {
  if (missing) return 'a value is required';
  if (issue.code === 'invalid_type' && (issue.expected === 'date' || issue.expected === 'number')) {
    return `not a valid ${issue.expected}`;
  }
  return issue.message;
}

/**
 * Where in the record an issue is: the field name for a top-level field, else the issue's whole path
 * (`lines[1].product.productId`), so a reject in a nested document names the element and the field.
 */
function issuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

/** The value at `path` in the record as read (not the whole top-level value): what "got …" quotes. */
function valueAt(fields: Record<string, unknown> | undefined, path: readonly PropertyKey[]): unknown {
  let value: unknown = fields;
  for (const part of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}

function rejectFor(
  schema: z.ZodType,
  record: ParsedRecord,
  input: Record<string, unknown>,
  issue: z.core.$ZodIssue,
): Reject {
  if (issue.path.length === 0)
    return { line: record.line, column: null, kind: 'invalid', reason: issue.message, raw: record.raw };
  const read = valueAt(record.fields, issue.path);
  // A number beyond a double inside the refused value: the reason, where a document schema (z.json())
  // refused the whole document and "got …" would show the number as null. Only if the value is refused
  // for it alone: a value refused for another reason (a missing key) keeps that reason.
  const beyond = typeof read === 'object' ? beyondDoubleIn(read) : undefined;
  if (beyond && refusedForInfinityOnly(schema, input, issue.path)) {
    const column = issuePath([...issue.path, ...beyond]);
    return { line: record.line, column, kind: 'unwritable', reason: BEYOND_DOUBLE, raw: record.raw };
  }
  const column = issuePath(issue.path);
  const nested = issue.path.length > 1;
  // A no-value (see withNulls) is missing to the schema, at any depth; "got …" quotes it as read.
  const missing = valueAt(input, issue.path) === undefined;
  let message = plainMessage(issue, missing);
  // Deep in a document "a value is required" alone leaves the reader guessing what belongs there.
  if (missing && nested && issue.code === 'invalid_type') message += ` (expected ${issue.expected})`;
  // A JSON number that lost digits (or overflowed) in JSON.parse: quote what the file wrote, and why.
  const source = typeof read === 'number' ? numberSource(record.raw, issue.path) : undefined;
  const loss = source === undefined ? undefined : numberLoss(source);
  const reason = loss
    ? `${message} (got ${JSON.stringify(source)}): ${loss}`
    : `${message} (got ${describe(read)})`;
  return { line: record.line, column, kind: 'invalid', reason, raw: record.raw };
}

/** Whether the schema takes the record once the numbers beyond a double at `path` are finite: rare, off the hot path. */
function refusedForInfinityOnly(
  schema: z.ZodType,
  input: Record<string, unknown>,
  path: readonly PropertyKey[],
): boolean {
  const result = schema.safeParse(withValueAt(input, path, finiteCopy(valueAt(input, path))));
  return result.success || !result.error.issues.some((i) => samePath(i.path, path));
}

/** `value` with `at` at `path`, copied along the path (the rest shared). */
function withValueAt(value: unknown, path: readonly PropertyKey[], at: unknown): unknown {
  if (path.length === 0) return at;
  const copy = (Array.isArray(value) ? [...value] : { ...(value as object) }) as Record<PropertyKey, unknown>;
  const [head, ...rest] = path as [PropertyKey, ...PropertyKey[]];
  copy[head] = withValueAt(copy[head], rest, at);
  return copy;
}

function samePath(a: readonly PropertyKey[], b: readonly PropertyKey[]): boolean {
  return a.length === b.length && a.every((p, i) => p === b[i]);
}

/**
 * The record as the schema sees it (see no-value.ts): every top-level field that is a no-value, and
 * each one at a declared place inside a document, reads as undefined.
 */
function withNulls(dataset: Dataset, fields: Record<string, unknown>): Record<string, unknown> {
  return fieldsView(declaredShape(dataset.schema), fields, dataset.nullValues);
}

/** The schema's output for a record, with the JSON nulls its documents had put back (see restoreNulls). */
function withNullsBack(
  data: Record<string, unknown>,
  input: Record<string, unknown>,
  fields: Record<string, unknown>,
): Record<string, unknown> {
  if (input === fields) return data;
  for (const name in fields) {
    const read = fields[name];
    if (input[name] !== read && read !== null && typeof read === 'object') restoreNulls(data[name], read);
  }
  return data;
}

/**
 * Checks every record against the dataset's schema; each failure becomes a reject naming line and column.
 * With `checkValues`, a valid record holding a value Postgres cannot store (see unstorable.ts) is rejected
 * too; a caller that knows its chunk holds none (its text was scanned) skips that walk.
 */
export function validateRecords(dataset: Dataset, records: ParsedRecord[], checkValues = true): Validated {
  const rows: ValidRow[] = [];
  const rejects: Reject[] = [];
  const exact = exactNumbers(dataset);
  for (const record of records) {
    if (!record.fields || record.error) {
      rejects.push(recordErrorReject(record, record.error));
      continue;
    }
    // Numbers JSON.parse did not read as written: text for the fields that read text, the rest rejected.
    const numbers = record.numbers && exact.readAsText(record.fields, record.numbers);
    if (dataset.format === 'csv') {
      // A CSV record's fields are its header's columns in file order (a header naming one twice fails the file).
      const joined = joinedFileCheck(Object.keys(record.fields));
      const reject = joined?.(Object.values(record.fields) as string[], {
        line: record.line,
        raw: () => record.raw,
      });
      if (reject) {
        rejects.push(reject);
        continue;
      }
    }
    const input = withNulls(dataset, record.fields);
    let result: ReturnType<typeof dataset.schema.safeParse>;
    try {
      result = dataset.schema.safeParse(input);
    } catch (err) {
      rejects.push(thrownReject(record, err));
      continue;
    }
    const inexact = result.success && numbers && exact.reject(numbers, record);
    if (inexact) rejects.push(inexact);
    else if (result.success) {
      const values = withNullsBack(result.data, input, record.fields);
      const unstorable = checkValues && recordUnstorableReject(values, record);
      if (unstorable) rejects.push(unstorable);
      else rows.push({ line: record.line, raw: record.raw, values });
    } else rejects.push(rejectFor(dataset.schema, record, input, result.error.issues[0] as z.core.$ZodIssue));
  }
  return { rows, rejects };
}

/**
 * Checks one record: its values in the dataset's field order (in an array of `width` slots, the rest
 * left for the caller), or the reject `validateRecords` would make of it. Records with a parse error
 * are the caller's to report. A `z.coerce.date()` value given as exactly its `toISOString()` text is
 * that text, not the Date: the database reads the same instant, and writing it costs nothing.
 */
export type RowCheck = (record: RecordCursor) => unknown[] | Reject;

interface FieldCheck {
  name: string;
  /** CSV: the field's column in the header (the last one of that name), -1 when the file lacks it. */
  index: number;
  schema: z.core.$ZodType;
  optin: 'optional' | 'defaulted' | undefined;
  optout: 'optional' | undefined;
  /** `z.coerce.date()` (perhaps optional): a canonical ISO string may go in as the Date it names. */
  coercesDate: boolean;
  /** `z.coerce.date()` with no checks: it takes every valid instant, so a canonical text needs no zod. */
  anyDate: boolean;
  /** Yes-only shortcut past zod for a value that is there (see fast-check.ts); zod runs when it is unsure. */
  fast: FastCheck | undefined;
}

/** `z.coerce.date()`'s def when the schema is that, bare or optional: it makes `new Date(input)` of what it gets. */
function coercedDate(schema: z.core.$ZodType): z.core.$ZodDateDef | undefined {
  let def = schema._zod.def;
  if (def.type === 'optional') def = (def as z.core.$ZodOptionalDef).innerType._zod.def;
  return def.type === 'date' && (def as z.core.$ZodDateDef).coerce === true
    ? (def as z.core.$ZodDateDef)
    : undefined;
}

/** What zod's own object parse hands its fields (`safeParse` runs with this context). */
const PARSE_CONTEXT: z.core.ParseContextInternal = { async: false };

/**
 * The schema's fields, when it is a plain `z.object` (strip mode, no object-level refinements or
 * transforms): then a record passes exactly when each field passes on its own, and checking field by
 * field needs no input object. Undefined otherwise.
 */
export function plainFields(dataset: Dataset): z.core.$ZodType[] | undefined {
  const schema: z.core.$ZodType = dataset.schema;
  const def = schema._zod.def;
  if (def.type !== 'object' || !('shape' in def)) return undefined;
  const object = def as z.core.$ZodObjectDef;
  if (object.catchall !== undefined || (object.checks?.length ?? 0) > 0) return undefined;
  if (Object.getOwnPropertySymbols(object.shape).length > 0) return undefined;
  const names = Object.keys(object.shape);
  // `in` on an input object also sees Object.prototype: such names take the object path.
  if (names.some((n) => n in {} || n === '__proto__')) return undefined;
  if (names.length !== dataset.fields.length || names.some((n, i) => n !== dataset.fields[i]))
    return undefined;
  return names.map((n) => object.shape[n] as z.core.$ZodType);
}

/**
 * The fast path of `validateRecords` for one record at a time, with no object per record: for a plain
 * schema each field's schema runs on its value as zod's object parse would run it (same values, same
 * present/absent rules); a record that fails anywhere is re-checked the object way, so its reject reads
 * exactly as `validateRecords` words it. Other schemas take the object way for every record.
 */
export function rowValidator(
  dataset: Dataset,
  columns: string[] | undefined,
  width: number,
  asRead: AsRead = { strings: false },
): RowCheck {
  const check = fieldValidator(dataset, columns, width, asRead);
  const joined = columns && joinedFileCheck(columns);
  return (record) => {
    const values = record.values;
    if (joined && values) {
      const reject = joined(values, record);
      if (reject) return reject;
    }
    asRead.strings = false;
    try {
      return check(record);
    } catch (err) {
      return thrownReject({ line: record.line, raw: record.raw() }, err);
    }
  };
}

/**
 * What a row's check found besides its values: whether every string among them is one of the CSV
 * record's texts as read (not one a schema made), so it holds only what the record's text holds.
 */
export interface AsRead {
  strings: boolean;
}

function fieldValidator(
  dataset: Dataset,
  columns: string[] | undefined,
  width: number,
  asRead: AsRead,
): RowCheck {
  const names = dataset.fields;
  const objectWay = (record: RecordCursor): unknown[] | Reject => {
    let fields = record.fields ?? {};
    const values = record.values;
    if (values && columns) {
      fields = {};
      for (let i = 0; i < columns.length; i++) fields[columns[i] as string] = values[i];
    }
    const input = withNulls(dataset, fields);
    const result = dataset.schema.safeParse(input);
    if (!result.success) {
      const parsed = { line: record.line, raw: record.raw(), fields };
      return rejectFor(dataset.schema, parsed, input, result.error.issues[0] as z.core.$ZodIssue);
    }
    const data = withNullsBack(result.data as Record<string, unknown>, input, fields);
    const out = new Array<unknown>(width);
    for (let i = 0; i < names.length; i++) out[i] = data[names[i] as string];
    return out;
  };
  const schemas = plainFields(dataset);
  if (!schemas) return objectWay;
  const checks: FieldCheck[] = schemas.map((schema, i) => {
    const name = names[i] as string;
    const date = coercedDate(schema);
    return {
      name,
      index: columns ? columns.lastIndexOf(name) : -1,
      schema,
      optin: schema._zod.optin,
      optout: schema._zod.optout,
      coercesDate: date !== undefined,
      anyDate: date !== undefined && (date.checks?.length ?? 0) === 0,
      // Dates have their own shortcut below: zod's parse of a text is the slow `new Date(text)`.
      fast: date === undefined ? fastCheck(schema) : undefined,
    };
  });
  const nulls = dataset.nullValues;
  const emptyIsTheOnlyNull = nulls.size === 1 && nulls.has('');
  return (record) => {
    const values = record.values;
    const fields = record.fields;
    if (!values && !fields) return objectWay(record);
    const out = new Array<unknown>(width);
    // Strings that are the record's texts: its values as read (NDJSON's fields were decoded from escapes).
    let strings = values !== undefined;
    for (let i = 0; i < checks.length; i++) {
      const check = checks[i] as FieldCheck;
      let present: boolean;
      let value: unknown;
      if (values) {
        present = check.index >= 0;
        value = present ? values[check.index] : undefined;
      } else {
        present = check.name in (fields as Record<string, unknown>);
        value = (fields as Record<string, unknown>)[check.name];
      }
      const read = value;
      if (value === null) value = undefined;
      else if (typeof value === 'string') {
        if (emptyIsTheOnlyNull ? value === '' : nulls.has(value)) value = undefined;
      } else if (typeof value === 'object') value = schemaView(check.schema, value, nulls);
      if (present && check.fast !== undefined && value !== undefined && typeof read !== 'object') {
        const fast = check.fast(value);
        if (fast !== UNSURE) {
          out[i] = fast;
          if (typeof fast === 'string' && fast !== read) strings = false;
          continue;
        }
      }
      // `new Date(text)` is slow; for a canonical ISO text the instant is fixed by the standard, and
      // zod's `new Date(date)` of a Date with that instant gives the value `new Date(text)` would.
      // The common case, a column of toISOString texts, needs only their check, not their instant.
      if (present && check.anyDate && typeof value === 'string' && isCanonicalIso(value)) {
        out[i] = value;
        continue;
      }
      let canonical: string | undefined;
      if (check.coercesDate && typeof value === 'string') {
        const instant = isoInstant(value);
        if (instant !== undefined) {
          // Already what toISOString writes for it: the row keeps the text (see RowCheck).
          if (value.length === 24) canonical = value;
          if (canonical !== undefined && present && check.anyDate) {
            out[i] = canonical;
            continue;
          }
          value = new Date(instant);
        }
      }
      const result = check.schema._zod.run({ value, issues: [] }, PARSE_CONTEXT);
      if (result instanceof Promise) return objectWay(record);
      const optionalBothWays = check.optin !== undefined && check.optout === 'optional';
      if (result.issues.length > 0) {
        // zod ignores what an optional field says about a key the input does not have.
        if (!present && optionalBothWays) continue;
        return objectWay(record);
      }
      if (!present && check.optin === undefined) return objectWay(record);
      if (value !== read && value !== undefined) restoreNulls(result.value, read);
      // An absent optional key stays absent, whatever its schema made of `undefined`.
      const made =
        !present && optionalBothWays && check.optin === 'optional' ? undefined : (canonical ?? result.value);
      if (typeof made === 'string' && made !== read) strings = false;
      out[i] = made;
    }
    asRead.strings = strings;
    return out;
  };
}
