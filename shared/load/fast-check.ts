import { z } from 'zod';
import { textReader } from '../config/fields.ts';
import { plainNumber } from '../formats/number-text.ts';
import { fasterPattern } from './email-pattern.ts';

/**
 * Per-field fast checks, built once per dataset. A fast check only ever says yes: it answers the value
 * zod would make of its input when it is sure zod accepts it, and `UNSURE` otherwise, and then the
 * caller runs zod itself (so every refusal, and its message, is zod's own). It skips zod's per-value
 * allocations and bookkeeping, never a check: the strict helpers' own readers, or zod's own parse and
 * check functions run in zod's order on one reused payload.
 */
export const UNSURE: unique symbol = Symbol('unsure');

/** The value zod would make of `value` (a field's value, present and not a no-value), or UNSURE. */
export type FastCheck = (value: unknown) => unknown;

/** Leaf types whose parse only coerces and type-checks: zod's own `_zod.parse` for them is synchronous. */
const LEAF_TYPES = new Set(['string', 'number', 'boolean', 'bigint', 'date']);

/**
 * Checks that only test the value (never change it, never depend on other checks): when each passes,
 * zod's run gives the parsed value unchanged, whatever their `when` or `abort` say.
 */
const PREDICATES = new Set([
  'min_length',
  'max_length',
  'length_equals',
  'greater_than',
  'less_than',
  'multiple_of',
  'number_format',
  'string_format',
]);

/** String formats whose check is a test of `def.pattern` or of the text itself (`url` may rewrite it). */
const PATTERN_FORMATS = new Set([
  'email',
  'uuid',
  'guid',
  'regex',
  'starts_with',
  'ends_with',
  'includes',
  'lowercase',
  'uppercase',
]);

function isPredicate(check: z.core.$ZodCheck): boolean {
  const def = check._zod.def as z.core.$ZodCheckDef & { format?: string };
  if (!PREDICATES.has(def.check)) return false;
  return def.check !== 'string_format' || PATTERN_FORMATS.has(def.format ?? '');
}

/**
 * Readies the reused payload for a value. Setting an array's length is a call into the runtime even
 * when it is already 0 (it was a tenth of a row's whole cost): only a payload with issues is emptied.
 */
function reset(payload: z.core.ParsePayload, value: unknown): void {
  payload.value = value;
  if (payload.issues.length > 0) payload.issues.length = 0;
}

/** What zod hands a schema's parts in a synchronous parse (as `safeParse` does). */
const CONTEXT: z.core.ParseContextInternal = { async: false };

/** The fast check for a field's schema, or undefined when it has none (zod runs every value). */
export function fastCheck(schema: z.core.$ZodType): FastCheck | undefined {
  const read = textReader(schema);
  if (read) {
    return (value) => {
      if (typeof value !== 'string') return UNSURE;
      const out = read(value);
      return out === undefined ? UNSURE : out;
    };
  }
  const def = schema._zod.def;
  if (def.type === 'optional') {
    // A value that is there goes to the inner schema as it is (an absent one is the caller's).
    const inner = fastCheck((def as z.core.$ZodOptionalDef).innerType);
    return inner && ((value) => (value === undefined ? UNSURE : inner(value)));
  }
  if (schema._zod.traits.has('$ZodCodec')) return codecCheck(schema as z.core.$ZodCodec);
  if (schema._zod.traits.has('$ZodPipe')) return pipeCheck(schema as z.core.$ZodPipe);
  return leafCheck(schema);
}

/** A pipe (`integer().pipe(z.number().positive())`): what its input makes, then its output of that. */
function pipeCheck(pipe: z.core.$ZodPipe): FastCheck | undefined {
  const def = pipe._zod.def;
  if ((def.checks?.length ?? 0) > 0) return undefined;
  const input = fastCheck(def.in);
  const output = fastCheck(def.out);
  if (!input || !output) return undefined;
  return (value) => {
    const read = input(value);
    return read === UNSURE ? UNSURE : output(read);
  };
}

/**
 * A codec (`z.stringbool()`) read forward, as zod does: its input schema, its transform, its output
 * schema, each of which must say yes. The transform runs again in zod when a later step is unsure.
 */
function codecCheck(codec: z.core.$ZodCodec): FastCheck | undefined {
  const def = codec._zod.def;
  if ((def.checks?.length ?? 0) > 0) return undefined;
  const input = fastCheck(def.in);
  const output = fastCheck(def.out);
  if (!input || !output) return undefined;
  const payload: z.core.ParsePayload = { value: undefined, issues: [] };
  return (value) => {
    const read = input(value);
    if (read === UNSURE) return UNSURE;
    reset(payload, read);
    const transformed: unknown = def.transform(read, payload);
    if (payload.issues.length > 0 || transformed instanceof Promise) return UNSURE;
    return output(transformed);
  };
}

/** A pattern check with a faster equal (see email-pattern.ts): that one, which the fast check tests itself. */
function fasterOf(check: z.core.$ZodCheck): RegExp | undefined {
  const def = check._zod.def as z.core.$ZodCheckDef & { pattern?: RegExp };
  return def.check === 'string_format' && def.pattern ? fasterPattern(def.pattern) : undefined;
}

function leafCheck(schema: z.core.$ZodType): FastCheck | undefined {
  if (!LEAF_TYPES.has(schema._zod.def.type)) return undefined;
  // A format schema (`z.email()`) is its own first check, as zod runs it.
  const own = schema._zod.traits.has('$ZodCheck') ? [schema as unknown as z.core.$ZodCheck] : [];
  const checks = [...own, ...(schema._zod.def.checks ?? [])];
  if (!checks.every(isPredicate)) return undefined;
  const general = zodLeafCheck(schema, checks);
  return plainLeafCheck(schema._zod.def, checks, general) ?? general;
}

/** A leaf's fast check with zod's own parse and check functions, on one reused payload. */
function zodLeafCheck(schema: z.core.$ZodType, checks: z.core.$ZodCheck[]): FastCheck {
  // zod's e-mail pattern is tested as its faster equal, here: no call of zod's check around it.
  const pattern = checks.map(fasterOf).find((p) => p !== undefined);
  const tests = checks
    .filter((c) => fasterOf(c) === undefined)
    .map((c) => c._zod.check as (payload: z.core.ParsePayload) => void);
  const parse = schema._zod.parse;
  const payload: z.core.ParsePayload = { value: undefined, issues: [] };
  // `z.coerce.number()` starts with `Number(value)`: for plain decimal text, the same double, read
  // without the runtime call (zod's own `Number` of it then changes nothing).
  const coerce = schema._zod.def.type === 'number' && (schema._zod.def as z.core.$ZodNumberDef).coerce;
  return (value) => {
    reset(payload, coerce && typeof value === 'string' ? (plainNumber(value) ?? value) : value);
    if (parse(payload, CONTEXT) !== payload || payload.issues.length > 0) return UNSURE;
    if (pattern !== undefined && !pattern.test(payload.value as string)) return UNSURE;
    for (const test of tests) {
      test(payload);
      if (payload.issues.length > 0) return UNSURE;
    }
    return payload.value;
  };
}

/**
 * The common leaves (strings with lengths and a pattern, numbers with bounds and an integer format,
 * booleans) as one plain function: zod's parse and checks written out in JavaScript, no zod call and no
 * payload. It says yes only where zod's functions surely do; anything else goes to `general`, which
 * answers as zod does. Undefined for a leaf with a check it does not know.
 */
function plainLeafCheck(
  def: z.core.$ZodTypeDef,
  checks: z.core.$ZodCheck[],
  general: FastCheck,
): FastCheck | undefined {
  if (def.type === 'string') return plainStringCheck(checks, general);
  if (def.type === 'number')
    return plainNumberCheck((def as z.core.$ZodNumberDef).coerce === true, checks, general);
  if (def.type === 'boolean' && checks.length === 0)
    return (value) => (typeof value === 'boolean' ? value : general(value));
  return undefined;
}

/** What a string's checks ask of it, in UTF-16 units and one pattern: enough for a sure yes. */
interface StringBounds {
  /** At least this many units: zod counts code points, of which two units can be one. */
  minUnits: number;
  maxUnits: number;
  pattern: RegExp | undefined;
}

function stringBounds(checks: z.core.$ZodCheck[]): StringBounds | undefined {
  const bounds: StringBounds = { minUnits: 0, maxUnits: Number.POSITIVE_INFINITY, pattern: undefined };
  for (const check of checks) {
    const def = check._zod.def as z.core.$ZodCheckDef & {
      minimum?: number;
      maximum?: number;
      format?: string;
      pattern?: RegExp;
    };
    // A string of at least 2 × min units has at least min code points; one of at most max units at most max.
    if (def.check === 'min_length') bounds.minUnits = Math.max(bounds.minUnits, 2 * (def.minimum as number));
    else if (def.check === 'max_length') bounds.maxUnits = Math.min(bounds.maxUnits, def.maximum as number);
    else if (!patternCheck(def) || bounds.pattern !== undefined) return undefined;
    else bounds.pattern = fasterPattern(def.pattern as RegExp) ?? def.pattern;
  }
  return bounds;
}

/**
 * A check that is zod's `pattern.test` alone (an e-mail or regex format) of a pattern with no state
 * between tests (zod resets `lastIndex` of a global or sticky one; this leaves those to zod).
 */
function patternCheck(def: z.core.$ZodCheckDef & { format?: string; pattern?: RegExp }): boolean {
  if (def.check !== 'string_format' || (def.format !== 'email' && def.format !== 'regex')) return false;
  return def.pattern !== undefined && !def.pattern.global && !def.pattern.sticky;
}

function plainStringCheck(checks: z.core.$ZodCheck[], general: FastCheck): FastCheck | undefined {
  const bounds = stringBounds(checks);
  if (!bounds) return undefined;
  const { minUnits, maxUnits, pattern } = bounds;
  // A string is what zod's parse, coercing or not, gives back as it is.
  return (value) =>
    typeof value === 'string' &&
    value.length >= minUnits &&
    value.length <= maxUnits &&
    (pattern === undefined || pattern.test(value))
      ? value
      : general(value);
}

/** A number's checks as an interval and whether it must be an integer. */
interface NumberBounds {
  min: number;
  minIncluded: boolean;
  max: number;
  maxIncluded: boolean;
  integer: boolean;
}

function numberBounds(checks: z.core.$ZodCheck[]): NumberBounds | undefined {
  const bounds: NumberBounds = {
    min: Number.NEGATIVE_INFINITY,
    minIncluded: true,
    max: Number.POSITIVE_INFINITY,
    maxIncluded: true,
    integer: false,
  };
  for (const check of checks) {
    const def = check._zod.def as z.core.$ZodCheckDef & {
      value?: unknown;
      inclusive?: boolean;
      format?: string;
    };
    if (def.check === 'number_format') {
      const range = z.core.util.NUMBER_FORMAT_RANGES[def.format as z.core.$ZodNumberFormats];
      if (!range) return undefined;
      bounds.integer ||= (def.format as string).includes('int');
      above(bounds, range[0], true);
      below(bounds, range[1], true);
    } else if (typeof def.value !== 'number') return undefined;
    else if (def.check === 'greater_than') above(bounds, def.value, def.inclusive === true);
    else if (def.check === 'less_than') below(bounds, def.value, def.inclusive === true);
    else return undefined;
  }
  return bounds;
}

function above(bounds: NumberBounds, min: number, included: boolean): void {
  if (min > bounds.min || (min === bounds.min && !included)) {
    bounds.min = min;
    bounds.minIncluded = included;
  }
}

function below(bounds: NumberBounds, max: number, included: boolean): void {
  if (max < bounds.max || (max === bounds.max && !included)) {
    bounds.max = max;
    bounds.maxIncluded = included;
  }
}

function plainNumberCheck(
  coerce: boolean,
  checks: z.core.$ZodCheck[],
  general: FastCheck,
): FastCheck | undefined {
  const bounds = numberBounds(checks);
  if (!bounds) return undefined;
  const { min, minIncluded, max, maxIncluded, integer } = bounds;
  return (value) => {
    // zod's parse: `Number` of the text when it coerces (plain decimal text is read as `Number` reads
    // it), then a finite number.
    const n = coerce ? (typeof value === 'string' ? plainNumber(value) : undefined) : value;
    if (
      typeof n === 'number' &&
      Number.isFinite(n) &&
      (n > min || (minIncluded && n === min)) &&
      (n < max || (maxIncluded && n === max)) &&
      (!integer || Number.isInteger(n))
    )
      return n;
    return general(value);
  };
}
