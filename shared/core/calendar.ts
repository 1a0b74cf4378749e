/**
 * Calendar arithmetic on text by char codes, for the per-value checks of dates (the loader's field
 * helpers and its ISO instants): no regex, no substring, no Date.
 */

const ZERO = 48;

/** The decimal number in `count` characters from `at`, or -1 when one is not a digit. */
export function digits(text: string, at: number, count: number): number {
  let n = 0;
  for (let i = at; i < at + count; i++) {
    const d = text.charCodeAt(i) - ZERO;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** Days in a month (1–12) of a proleptic Gregorian year. */
export function daysIn(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}
