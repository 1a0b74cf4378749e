/**
 * Caps on text a person reads. A file's header, a parser's message or a reject's reason can be as long
 * as the file makes it (a 20,000-column header made a 229 KB note): the ledger stores, and the terminal
 * shows, a bounded prefix that says how much was left off.
 */

/** The most characters of a file's note or error, or a reject's reason, the ledger stores. */
export const LEDGER_TEXT_MAX = 2000;

/** `text` cut to `max` characters plus `… (N more characters)`; shorter text unchanged. */
export function capped(text: string, max = LEDGER_TEXT_MAX): string {
  if (text.length <= max) return text;
  const more = text.length - max;
  return `${text.slice(0, max)}… (${more} more character${more === 1 ? '' : 's'})`;
}

/** `text` at most `max` characters long, its middle replaced by `…`: both ends of a key tell files apart. */
export function middleEllipsis(text: string, max: number): string {
  if (text.length <= max) return text;
  const head = Math.ceil((max - 1) / 2);
  const tail = max - 1 - head;
  return `${text.slice(0, head)}…${tail > 0 ? text.slice(text.length - tail) : ''}`;
}

/**
 * Text as the ledger can store it. Postgres text cannot hold NUL (SQLSTATE 22021), and what dropload
 * stores from a file (its key, header columns, reasons, original lines) is whatever the file or its
 * uploader made it: NUL shows as U+FFFD. Every ledger write and every lookup by key goes through here,
 * so a lookup finds what was stored. (Lone UTF-16 surrogates need nothing: pg writes them as U+FFFD.)
 */
export const withoutNul = (text: string): string =>
  text.includes('\u0000') ? text.replaceAll('\u0000', '\uFFFD') : text;
