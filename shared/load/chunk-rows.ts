import { isUtf8 } from 'node:buffer';
import type { Dataset } from '../config/dataset.ts';
import {
  chunkCursor,
  type ParseOptions,
  type RecordCursor,
  type TextCursor,
  textCursor,
} from '../formats/parsing.ts';
import type { Reject } from '../ledger/ledger.ts';
import { type ExactNumbers, exactNumbers } from './exact-numbers.ts';
import type { PassKeys } from './row-keys.ts';
import { chunkScan, unstorableReject } from './unstorable.ts';
import { type AsRead, type RowCheck, recordErrorReject, rowValidator } from './validation.ts';
import type { RowPass, RowStream } from './write/writing.ts';

/** A value the load adds after the dataset's fields: a constant (a file id) or the row's line. */
export type RowExtra = { value: unknown } | 'line';

const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * Bytes given to `chunkRows` for good (a chunk read for this load alone): their memory is freed as soon as
 * they are decoded, and they read as empty from then on.
 */
export interface HandedOver {
  handedOver: Uint8Array;
}

/**
 * Frees bytes that are a whole buffer of their own now, not when a full collection finds them dead: V8
 * starts one for memory outside its heap only after 64 MB more of it, so `run`'s loads kept several old
 * chunks' 8 MiB alive beside the next ones (issue 14). A view of part of a buffer (a pooled Buffer's, say)
 * is left alone: the rest of that buffer is someone else's.
 */
function release(bytes: Uint8Array): void {
  const buffer = bytes.buffer;
  if (buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength)
    buffer.transfer(0);
}

/**
 * A chunk's valid rows, read as they are consumed: each pass parses and validates from the start and
 * holds only the record it is on, so the chunk's records are never all alive at once. A row's values
 * come in the dataset's field order, then `extras`. `keys`, when given, notes each row's key as it is read.
 */
export function chunkRows(
  dataset: Dataset,
  bytes: Uint8Array | HandedOver,
  options: ParseOptions,
  extras: readonly RowExtra[] = [],
  keys?: PassKeys,
): RowStream {
  let text: string | undefined;
  let held: Uint8Array | undefined = 'handedOver' in bytes ? bytes.handedOver : bytes;
  const cursor = (): RecordCursor => {
    // Decoded once for every pass (a fallback re-reads the chunk); bytes that are not UTF-8 take the slow way.
    if (held && isUtf8(held)) {
      text = decoder.decode(held);
      // Every pass reads the text: the bytes need not stay alive beside it (issue 14: a CSV worker's peak).
      if ('handedOver' in bytes) release(held);
      held = undefined;
    }
    return text === undefined ? chunkCursor(held as Uint8Array, options) : textCursor(text, options);
  };
  const columns = options.format === 'csv' ? (options.columns ?? []) : undefined;
  const scan = chunkScan(options.format);
  // Text that is not UTF-8 takes the slow way: its values are all checked.
  const suspect = () => text === undefined || scan(text);
  let plain: boolean | undefined;
  // A CSV chunk whose text has none of COPY's escaped characters but line breaks: read once, after `cursor()` decoded it.
  const plainText = () => {
    plain ??= columns !== undefined && text !== undefined && !hasEscapedCharacter(text);
    return plain;
  };
  return cursorRows(dataset, cursor, columns, extras, keys, suspect, plainText);
}

/** A backslash, tab or carriage return: what COPY escapes, besides the line breaks between records. */
function hasEscapedCharacter(text: string): boolean {
  return text.includes('\\') || text.includes('\t') || text.includes('\r');
}

/** `chunkRows` for records some other reader pulls (a Parquet chunk's rows): `cursor` starts a fresh pass. */
export function cursorRows(
  dataset: Dataset,
  cursor: () => RecordCursor,
  columns: string[] | undefined,
  extras: readonly RowExtra[] = [],
  keys?: PassKeys,
  suspect: () => boolean = () => false,
  plainText: () => boolean = () => false,
): RowStream {
  const asRead: AsRead = { strings: false };
  const check = rowValidator(dataset, columns, dataset.fields.length + extras.length, asRead);
  const exact = exactNumbers(dataset);
  // A string an extra adds is not the record's: its rows are never plain.
  const plainExtras = extras.every((e) => e === 'line' || typeof e.value !== 'string');
  return () => {
    const pass = cursor();
    // After `cursor()`, which decodes the chunk's text: a chunk that could hold no unstorable value skips the check.
    const names = suspect() ? dataset.fields : undefined;
    const plain = plainExtras && plainText() ? { asRead, cursor: pass as TextCursor } : undefined;
    return new ChunkPass(pass, check, exact, names, dataset.fields.length, extras, keys, plain);
  };
}

/** What tells a row of a plain chunk (see `RowPass.plain`): its strings as read, from one line of the text. */
interface PlainRows {
  asRead: AsRead;
  cursor: TextCursor;
}

/** A stream with no rows: a chunk that is one reject (an oversized record). */
export function rejectedRows(rejects: Reject[]): RowStream {
  return () => ({ rows: 0, line: 0, rejects: [...rejects], next: () => undefined, raw: () => '' });
}

class ChunkPass implements RowPass {
  rows = 0;
  line = 0;
  plain = false;
  readonly rejects: Reject[] = [];
  readonly #cursor: RecordCursor;
  readonly #check: RowCheck;
  readonly #exact: ExactNumbers;
  /** The fields' names when the chunk may hold a value Postgres cannot store (see unstorable.ts). */
  readonly #names: readonly string[] | undefined;
  readonly #fields: number;
  readonly #extras: readonly RowExtra[];
  readonly #keys: PassKeys | undefined;
  readonly #plain: PlainRows | undefined;

  constructor(
    cursor: RecordCursor,
    check: RowCheck,
    exact: ExactNumbers,
    names: readonly string[] | undefined,
    fields: number,
    extras: readonly RowExtra[],
    keys: PassKeys | undefined,
    plain: PlainRows | undefined,
  ) {
    this.#plain = plain;
    this.#cursor = cursor;
    this.#check = check;
    this.#exact = exact;
    this.#names = names;
    this.#fields = fields;
    this.#extras = extras;
    this.#keys = keys;
    keys?.restart();
  }

  next(): unknown[] | undefined {
    const cursor = this.#cursor;
    while (cursor.next()) {
      const error = cursor.error;
      if (error) {
        this.rejects.push(recordErrorReject({ line: cursor.line, raw: cursor.raw() }, error));
        continue;
      }
      // Numbers JSON.parse did not read as written: text for the fields that read text, the rest rejected.
      const numbers =
        cursor.numbers && this.#exact.readAsText(cursor.fields as Record<string, unknown>, cursor.numbers);
      const checked = this.#check(cursor);
      if (!Array.isArray(checked)) {
        this.rejects.push(checked);
        continue;
      }
      const inexact = numbers && this.#exact.reject(numbers, { line: cursor.line, raw: cursor.raw() });
      if (inexact) {
        this.rejects.push(inexact);
        continue;
      }
      const unstorable = this.#names && unstorableReject(this.#names, checked, cursor);
      if (unstorable) {
        this.rejects.push(unstorable);
        continue;
      }
      const extras = this.#extras;
      for (let i = 0; i < extras.length; i++) {
        const extra = extras[i] as RowExtra;
        checked[this.#fields + i] = extra === 'line' ? cursor.line : extra.value;
      }
      this.line = cursor.line;
      const plain = this.#plain;
      // One line: a quoted field that runs over a line break holds that break.
      this.plain = plain?.asRead.strings === true && plain.cursor.nextLine - cursor.line <= 1;
      this.rows++;
      this.#keys?.note(cursor);
      return checked;
    }
    return undefined;
  }

  raw(): string {
    return this.#cursor.raw();
  }
}
