import type { z } from 'zod';
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
