/** Powers of ten a double holds exactly (10^0 to 10^15). */
const POWERS = Array.from({ length: 16 }, (_, i) => 10 ** i);

/** Significant digits whose integer a double always holds exactly (below 2^53). */
const MAX_DIGITS = 15;

const ZERO = 48;
const DOT = 46;
const MINUS = 45;

/**
 * `Number(text)` for plain decimal text (`-?digits(.digits)?`, at most 15 digits in all), read in
 * JavaScript: `Number` of a fresh string is a call into the runtime, and a CSV row has several.
 * The digits make an integer m below 2^53 and the text's value is m / 10^k with 10^k exact too, so
 * the one correctly rounded division gives exactly the double `Number` reads (Clinger's fast path).
 * Undefined for anything else (signs other than a leading `-`, blanks, exponents, `.5`, `5.`, more
 * digits): leave those to `Number`.
 */
export function plainNumber(text: string): number | undefined {
  const length = text.length;
  let i = text.charCodeAt(0) === MINUS ? 1 : 0;
  const negative = i === 1;
  let m = 0;
  let digits = 0;
  /** Digits after the point; -1 before one is seen. */
  let scale = -1;
  for (; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === DOT) {
      if (scale >= 0 || digits === 0) return undefined;
      scale = 0;
      continue;
    }
    const d = c - ZERO;
    if (d < 0 || d > 9) return undefined;
    m = m * 10 + d;
    digits++;
    if (scale >= 0) scale++;
  }
  if (digits === 0 || digits > MAX_DIGITS || scale === 0) return undefined;
  const value = scale > 0 ? m / (POWERS[scale] as number) : m;
  return negative ? -value : value;
}
