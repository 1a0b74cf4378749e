import { Buffer, isUtf8 } from 'node:buffer';
import type { Reject } from '../ledger/ledger.ts';

/**
 * Values a schema lets through that Postgres cannot keep as read: a NUL in text (refused with no column
 * named), a lone UTF-16 surrogate (`"\ud800"` in JSON; text would store U+FFFD, jsonb refuses it) and,
 * inside a JSON document, a number beyond a double (`1e400` reads as Infinity, which JSON writes as
 * null; the NDJSON reader finds it in the text). A chunk is searched once for what could make one (a NUL, a `\u` escape);
 * only a chunk that has it has its rows' values checked, so the common chunk pays one scan of its text.
 */

/**
 * Whether a chunk's text could hold an unstorable value for this dataset: the once-per-chunk scan. A
 * JSON number beyond a double (`1e400`) is found by the NDJSON reader, with every number it does not
 * read as written (see formats/json-text.ts).
 */
export function chunkScan(format: string): (text: string) => boolean {
  if (format !== 'ndjson') return (text) => text.includes('\0');
  // JSON text holds no raw NUL or lone surrogate: they arrive as escapes.
  return (text) => text.includes('\\u');
}

/** A high surrogate with no low one after it, or a low one with no high one before (code units, no `u` flag). */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why a string cannot be stored, or undefined. */
function badText(text: string): string | undefined {
  if (text.includes('\0')) return 'a NUL byte (0x00), which Postgres text cannot hold';
  const lone = LONE_SURROGATE.exec(text);
  if (lone) {
    const code = lone[0].charCodeAt(0).toString(16);
    return `a lone UTF-16 surrogate (\\u${code}), which UTF-8 cannot hold (it would be stored as U+FFFD)`;
  }
  return undefined;
}

/** The first unstorable value in `value` (a string, or a document walked in order): its path below it and reason. */
function unstorable(value: unknown, path: string): { path: string; reason: string } | undefined {
  if (typeof value === 'string') {
    const reason = badText(value);
    return reason ? { path, reason } : undefined;
  }
  if (typeof value === 'number')
    return Number.isFinite(value)
      ? undefined
      : { path, reason: 'a number JSON cannot hold (beyond the range of a double)' };
  if (value === null || typeof value !== 'object' || value instanceof Date) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = unstorable(value[i], `${path}[${i}]`);
      if (found) return found;
    }
    return undefined;
  }
  for (const [key, child] of Object.entries(value)) {
    const keyReason = badText(key);
    if (keyReason) return { path: `${path}.${key}`, reason: `in a key: ${keyReason}` };
    const found = unstorable(child, `${path}.${key}`);
    if (found) return found;
  }
  return undefined;
}

/** The reject for a row whose values (in `names` order) hold an unstorable value, or undefined. */
export function unstorableReject(
  names: readonly string[],
  values: readonly unknown[],
  record: { line: number; raw(): string },
): Reject | undefined {
  for (let i = 0; i < names.length; i++) {
    const found = unstorable(values[i], names[i] as string);
    if (found)
      return {
        line: record.line,
        column: found.path,
        kind: 'unwritable',
        reason: found.reason,
        raw: record.raw(),
      };
  }
  return undefined;
}

/**
 * `chunkScan` on a chunk's bytes, for the paths that parse a chunk whole (multi-table datasets): bytes
 * that are not UTF-8 are read line by line, and have their values checked too.
 */
export function bytesMayHoldUnstorable(format: string, bytes: Uint8Array): boolean {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!isUtf8(buffer)) return true;
  return format === 'ndjson' ? buffer.includes('\\u') : buffer.includes(0);
}

/** The reject for a validated record (multi-table datasets, Parquet rows) holding an unstorable value, or undefined. */
export function recordUnstorableReject(
  values: Record<string, unknown>,
  record: { line: number; raw: string },
): Reject | undefined {
  const names = Object.keys(values);
  return unstorableReject(
    names,
    names.map((n) => values[n]),
    { line: record.line, raw: () => record.raw },
  );
}
