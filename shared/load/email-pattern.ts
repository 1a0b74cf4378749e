/**
 * zod's e-mail pattern, rewritten so that V8's regular expression engine does not backtrack: zod's
 * `(?:[L]+\.)*[L]*[M]@` first reads the local part's last segment as one more `[L]+\.` and gives it
 * back a character at a time (a third of its time on the bench's addresses). Both accept exactly the
 * local parts made of one or more non-empty segments of `[A-Za-z0-9_'+-]` joined by single dots whose
 * last character is not `'` (`[M]` is `[L]` without it), which here is a lookbehind at the `@`; the domain
 * part is zod's own.
 */

/** zod's `z.regexes.email` (zod 4.6), the pattern `EMAIL` is equal to: a zod that changes it keeps its own. */
export const ZOD_EMAIL_SOURCE =
  "^(?:[A-Za-z0-9_'+\\-]+\\.)*[A-Za-z0-9_'+\\-]*[A-Za-z0-9_+-]@(?:[A-Za-z0-9][A-Za-z0-9\\-]*\\.)+[A-Za-z]{2,}$";

export const EMAIL =
  /^[A-Za-z0-9_'+-]+(?:\.[A-Za-z0-9_'+-]+)*(?<=[A-Za-z0-9_+-])@(?:[A-Za-z0-9][A-Za-z0-9-]*\.)+[A-Za-z]{2,}$/;

/** A pattern accepting exactly the texts `pattern` accepts, faster; undefined when none is known. */
export function fasterPattern(pattern: RegExp): RegExp | undefined {
  return pattern.source === ZOD_EMAIL_SOURCE && pattern.flags === '' ? EMAIL : undefined;
}
