import { isBasicDate } from '../../shared/config/fields.ts';
import { SKIMMED } from '../../shared/formats/parsing.ts';
import { DistinctPairs, type DistinctPairsState } from './distinct-pairs.ts';
import { type DistinctState, DistinctValues, FULL } from './distinct-values.ts';
import { isNullToken, type NullToken, type Shape, shapeOfText, shapeOfValue } from './values.ts';

/** Longer text values are no identifiers: such a column keeps no distinct set. */
const MAX_KEY_LENGTH = 64;
const MINUS = 45;
/**
 * Whole numbers from 1900-01-01 to 2100-12-31 written `YYYYMMDD` may be dates: bounds a plausible date
 * (an 8-digit id or amount seldom keeps inside it) and spares the rest of the whole numbers the check.
 */
const BASIC_DATE_MIN = 19_000_101;
const BASIC_DATE_MAX = 21_001_231;
/** Shapes a key can have; a column with any other keeps no distinct set. */
const KEY_KINDS: ReadonlySet<Shape['kind']> = new Set(['integer', 'text', 'uuid']);

/**
 * A column's profile as plain data (Maps, Sets and typed arrays, no class): what crosses from a profiling thread to the
 * main thread, where `ColumnProfile.restore` rebuilds the same profile.
 */
export interface ColumnState {
  name: string;
  position: number;
  values: number;
  nulls: number;
  nullTokens: Map<NullToken, number>;
  kindCounts: Map<Shape['kind'], number>;
  runKind: Shape['kind'] | undefined;
  run: number;
  leadingZeros: number;
  basicDates: number;
  textExample: string | undefined;
  min: number | bigint | undefined;
  max: number | bigint | undefined;
  intDigits: number;
  scale: number;
  distinct: DistinctState | undefined;
  native: Set<'bigint' | 'date'>;
  nameless: string | undefined;
  keyless: string | undefined;
  plainText: boolean;
  duplicates: number;
}

/** Everything `init` learns about one column in one pass over the whole file. */
export class ColumnProfile {
  values = 0;
  nulls = 0;
  readonly nullTokens = new Map<NullToken, number>();
  /** Values per kind, the kinds in first-seen order; the current run's count is added when it ends. */
  readonly #kindCounts = new Map<Shape['kind'], number>();
  /** The kind of the latest values and how many in a row: a column mostly holds one kind, counted without a lookup. */
  #runKind: Shape['kind'] | undefined;
  #run = 0;
  leadingZeros = 0;
  /** Whole numbers that `date({ format: 'YYYYMMDD' })` reads as dates from 1900 to 2100 (`20240131`). */
  basicDates = 0;
  /** A value that shows the column is text, for the summary's evidence. */
  textExample?: string;
  min?: number | bigint;
  max?: number | bigint;
  intDigits = 0;
  scale = 0;
  /**
   * Distinct values (whole numbers as numbers: cheaper to keep than text), or undefined once past their
   * bound (see distinct-values.ts) or once a value shows the column is no key (see `keyless`).
   */
  distinct: DistinctValues | undefined = new DistinctValues();
  /** Values that arrived as JS bigints or Dates (Parquet INT64, timestamps): the field must take those. */
  readonly native = new Set<'bigint' | 'date'>();
  /**
   * Set when the column's name relates it to no key and no other file: its text values are not kept
   * (hashing text is most of the pass); whole numbers still are, cheaply, so that a quantity that
   * overlaps some key's values can be named as a rejected candidate.
   */
  nameless?: string;
  /** Why the column keeps no distinct set. */
  keyless?: string;
  /** A value that is plain text was seen: the column is text whatever follows, so values are no longer classified. */
  #plainText = false;
  duplicates = 0;

  readonly name: string;
  readonly position: number;

  constructor(name: string, position: number) {
    this.name = name;
    this.position = position;
  }

  /** Everything this profile holds, private counts included (see `ColumnState`). */
  state(): ColumnState {
    return {
      name: this.name,
      position: this.position,
      values: this.values,
      nulls: this.nulls,
      nullTokens: this.nullTokens,
      kindCounts: this.#kindCounts,
      runKind: this.#runKind,
      run: this.#run,
      leadingZeros: this.leadingZeros,
      basicDates: this.basicDates,
      textExample: this.textExample,
      min: this.min,
      max: this.max,
      intDigits: this.intDigits,
      scale: this.scale,
      distinct: this.distinct?.state(),
      native: this.native,
      nameless: this.nameless,
      keyless: this.keyless,
      plainText: this.#plainText,
      duplicates: this.duplicates,
    };
  }

  /** The profile a `state()` was taken of. */
  static restore(s: ColumnState): ColumnProfile {
    const col = new ColumnProfile(s.name, s.position);
    for (const [token, n] of s.nullTokens) col.nullTokens.set(token, n);
    for (const [kind, n] of s.kindCounts) col.#kindCounts.set(kind, n);
    for (const n of s.native) col.native.add(n);
    col.#runKind = s.runKind;
    col.#run = s.run;
    col.#plainText = s.plainText;
    col.values = s.values;
    col.nulls = s.nulls;
    col.leadingZeros = s.leadingZeros;
    col.basicDates = s.basicDates;
    col.textExample = s.textExample;
    col.min = s.min;
    col.max = s.max;
    col.intDigits = s.intDigits;
    col.scale = s.scale;
    col.distinct = s.distinct && new DistinctValues(s.distinct);
    col.nameless = s.nameless;
    col.keyless = s.keyless;
    col.duplicates = s.duplicates;
    return col;
  }

  /** Values per kind of shape, in the order the kinds were first seen. */
  get kinds(): ReadonlyMap<Shape['kind'], number> {
    const kinds = new Map(this.#kindCounts);
    if (this.#runKind !== undefined) kinds.set(this.#runKind, (kinds.get(this.#runKind) ?? 0) + this.#run);
    return kinds;
  }

  #count(kind: Shape['kind']): void {
    if (kind === this.#runKind) {
      this.#run++;
      return;
    }
    const counts = this.#kindCounts;
    if (this.#runKind !== undefined) counts.set(this.#runKind, (counts.get(this.#runKind) ?? 0) + this.#run);
    if (!counts.has(kind)) counts.set(kind, 0);
    this.#runKind = kind;
    this.#run = 1;
  }

  /** A CSV field: a null token, or a value of some shape. */
  addText(text: string): void {
    if (isNullToken(text)) this.addNull(text);
    else if (this.#plainText) this.addPlain(text);
    else this.add(shapeOfText(text), text);
  }

  /** A typed value (NDJSON, Parquet); JSON null and a missing field are nulls. */
  addValue(value: unknown, text: string): void {
    if (value === null || value === undefined) this.addNull();
    else if (typeof value === 'string' && isNullToken(value)) this.addNull(value);
    else if (typeof value === 'bigint' || value instanceof Date) {
      this.native.add(typeof value === 'bigint' ? 'bigint' : 'date');
      this.add(shapeOfValue(value), text);
    } else this.add(shapeOfValue(value), text);
  }

  addNull(token?: NullToken): void {
    this.nulls++;
    if (token !== undefined) this.nullTokens.set(token, (this.nullTokens.get(token) ?? 0) + 1);
  }

  /**
   * A value of a column already known to be text: remembered, and counted by its shape only (the
   * evidence's counts stay true: `mixed: 9 whole numbers, 1 text`), not measured.
   */
  private addPlain(text: string): void {
    this.values++;
    const shape = text === SKIMMED ? undefined : shapeOfText(text);
    this.#count(shape?.kind ?? 'text');
    if (!this.distinct) return;
    if (this.nameless) this.dropDistinct(this.nameless);
    else this.remember(shape ? distinctValue(shape, text) : text);
  }

  private add(shape: Shape, text: string): void {
    this.values++;
    this.#count(shape.kind);
    if (shape.kind === 'integer') {
      const v = shape.value;
      if (this.min === undefined || v < this.min) this.min = v;
      if (this.max === undefined || v > this.max) this.max = v;
      // The text of a whole number is its digits (no leading zeros), after a minus.
      const digits = text.length - (text.charCodeAt(0) === MINUS ? 1 : 0);
      if (v !== 0 && v !== 0n && digits > this.intDigits) this.intDigits = digits;
      if (v >= BASIC_DATE_MIN && v <= BASIC_DATE_MAX && isBasicDate(text)) this.basicDates++;
      if (this.distinct) this.remember(distinctValue(shape, text));
      return;
    }
    if (shape.kind === 'decimal') {
      if (shape.intDigits > this.intDigits) this.intDigits = shape.intDigits;
      if (shape.scale > this.scale) this.scale = shape.scale;
    } else if (shape.kind === 'text') {
      if (shape.reason === 'leading zero') this.leadingZeros++;
      else this.#plainText = true;
      this.textExample ??= text;
    }
    if (!this.distinct) return;
    if (!KEY_KINDS.has(shape.kind)) this.dropDistinct(`${shape.kind} values are no keys`);
    else if (this.nameless) this.dropDistinct(this.nameless);
    else if (text.length > MAX_KEY_LENGTH)
      this.dropDistinct(`values longer than ${MAX_KEY_LENGTH} characters are no keys`);
    else this.remember(text);
  }

  /** Stops keeping distinct values: the column takes no part in keys or relationships, for this reason. */
  dropDistinct(reason: string): void {
    this.distinct = undefined;
    this.keyless = reason;
  }

  private remember(value: string | number): void {
    const fresh = (this.distinct as DistinctValues).add(value);
    if (fresh === false) this.duplicates++;
    else if (fresh === undefined) this.dropDistinct(FULL);
  }

  /**
   * Text whatever follows, and keeping no distinct values: a value now only counts as a value or a null
   * (which token), so its whole text is not needed (see `Skim`).
   */
  get settled(): boolean {
    return this.#plainText && this.distinct === undefined && this.#onlyText();
  }

  /**
   * No value but text so far: a mixed column is never skimmed, so that each of its values is counted
   * by its shape (a skimmed value counts as text unread).
   */
  #onlyText(): boolean {
    return this.#runKind === 'text' && [...this.#kindCounts.keys()].every((k) => k === 'text');
  }

  /** Every non-null value differs from the others (known only while the set is exact). */
  get unique(): boolean | undefined {
    return this.distinct ? this.duplicates === 0 : undefined;
  }

  /**
   * Adds the profile of the same column read from other rows (files of another header, read apart):
   * afterwards this one is what one pass over all of them would have found, but for which of two
   * reasons to keep no distinct set is named.
   */
  absorb(other: ColumnProfile): void {
    this.values += other.values;
    this.nulls += other.nulls;
    for (const [token, n] of other.nullTokens)
      this.nullTokens.set(token, (this.nullTokens.get(token) ?? 0) + n);
    const kinds = new Map(this.kinds);
    for (const [kind, n] of other.kinds) kinds.set(kind, (kinds.get(kind) ?? 0) + n);
    this.#kindCounts.clear();
    for (const [kind, n] of kinds) this.#kindCounts.set(kind, n);
    this.#runKind = undefined;
    this.#run = 0;
    this.leadingZeros += other.leadingZeros;
    this.basicDates += other.basicDates;
    this.textExample ??= other.textExample;
    if (other.min !== undefined && (this.min === undefined || other.min < this.min)) this.min = other.min;
    if (other.max !== undefined && (this.max === undefined || other.max > this.max)) this.max = other.max;
    this.intDigits = Math.max(this.intDigits, other.intDigits);
    this.scale = Math.max(this.scale, other.scale);
    for (const n of other.native) this.native.add(n);
    this.nameless ??= other.nameless;
    this.#plainText ||= other.#plainText;
    this.duplicates += other.duplicates;
    if (!other.distinct) {
      if (this.distinct) this.dropDistinct(other.keyless as string);
      return;
    }
    if (!this.distinct) return;
    const repeats = this.distinct.absorb(other.distinct);
    if (repeats === undefined) this.dropDistinct(FULL);
    else this.duplicates += repeats;
  }
}

/**
 * A value as the distinct set holds it: a whole number within a double's exact range as a number
 * (cheaper to hash), anything else as its text. One form per value, whether the column was text yet or
 * not: `5` before and after a first text value is one value, so the repeat counts as a duplicate.
 */
function distinctValue(shape: Shape, text: string): string | number {
  return shape.kind === 'integer' && typeof shape.value === 'number' ? shape.value : text;
}

/**
 * Whether a combination of columns is unique, for the composite key of a link table: only pairs of
 * id-like columns are followed, with the same bound as single columns.
 */
export class PairProfile {
  seen: DistinctPairs | undefined = new DistinctPairs();
  duplicates = 0;
  withNull = 0;

  readonly columns: readonly [string, string];

  constructor(columns: readonly [string, string]) {
    this.columns = columns;
  }

  add(a: string | undefined, b: string | undefined): void {
    if (a === undefined || b === undefined) {
      this.withNull++;
      return;
    }
    if (!this.seen) return;
    const fresh = this.seen.add(a, b);
    if (fresh === false) this.duplicates++;
    else if (fresh === undefined) this.seen = undefined;
  }

  get unique(): boolean {
    return this.seen !== undefined && this.duplicates === 0 && this.withNull === 0;
  }

  /** The pair's counts as plain data, to cross threads (see `ColumnState`). */
  state(): PairState {
    return {
      columns: this.columns,
      seen: this.seen?.state(),
      duplicates: this.duplicates,
      withNull: this.withNull,
    };
  }

  static restore(s: PairState): PairProfile {
    const pair = new PairProfile(s.columns);
    pair.seen = s.seen && new DistinctPairs(s.seen);
    pair.duplicates = s.duplicates;
    pair.withNull = s.withNull;
    return pair;
  }
}

export interface PairState {
  columns: readonly [string, string];
  seen: DistinctPairsState | undefined;
  duplicates: number;
  withNull: number;
}
