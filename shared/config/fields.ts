import { z } from 'zod';

/**
 * Strict field types for CSV text (and NDJSON values). `z.coerce.number()` reads `" "` as 0 and `0x10`
 * as 16, and `z.coerce.date()` reads a timestamp without an offset in the machine's time zone, so the
 * same file loads differently on a laptop and in Lambda. These accept only what they say.
 */

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

function parsed<T>(read: (text: string) => T | undefined, expected: string) {
  return z.union([z.string(), z.number()]).transform((value, ctx): T => {
    const out = read(typeof value === 'number' ? String(value) : value.trim());
    if (out === undefined) {
      ctx.addIssue({ code: 'custom', message: `not ${expected}` });
      return z.NEVER;
    }
    return out;
  });
}

/** A whole number in decimal digits, within JavaScript's safe range (use `bigintText` beyond it). */
export const integer = () =>
  parsed(
    (t) => (INTEGER.test(t) && Number.isSafeInteger(Number(t)) ? Number(t) : undefined),
    'a whole number',
  );

/** A decimal number (`12`, `-0.5`, `1e3`); no hex, no blanks, no thousands separators. */
export const decimal = () =>
  parsed((t) => (DECIMAL.test(t) && Number.isFinite(Number(t)) ? Number(t) : undefined), 'a decimal number');

/** A whole number kept as text, for `bigint` / `numeric` columns beyond 2^53. */
export const bigintText = () => parsed((t) => (INTEGER.test(t) ? t : undefined), 'a whole number');

const offsetTimestamp = z.iso.datetime({ offset: true });

/** An ISO 8601 timestamp with `Z` or an offset; one without is refused rather than read in some time zone. */
export const timestamp = () =>
  parsed(
    (t) => (offsetTimestamp.safeParse(t).success ? new Date(t) : undefined),
    'an ISO timestamp with a time zone (Z or +hh:mm)',
  );
