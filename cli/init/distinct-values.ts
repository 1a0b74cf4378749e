import { hashText } from './key-hash.ts';
import { KeySet, type KeySetState } from './key-set.ts';

/**
 * A column's distinct values in bounded memory, for its key and relationship checks. Whole numbers from
 * 0 below BITMAP_LIMIT are bits of a bitmap (exact; 16 MB at most); other whole numbers are 64-bit keys
 * that are the number itself (exact); a text is its 64-bit hash (63 bits kept: two distinct texts
 * collide with probability about n²/2^64 over n values, see README). Past MAX_HASHED keys the set is
 * full: the column then takes no part in keys or relationships. The first EXAMPLES values are kept as
 * text too, for the evidence (a value missing from a parent).
 */
export const BITMAP_LIMIT = 2 ** 27;
/** Keys (values besides the bitmap's) a column keeps: a table of 2^23 slots, 64 MB, at most. */
export const MAX_HASHED = 4_000_000;
export const EXAMPLES = 1000;
/** Why a set past its bound was given up, as the summary says it. */
export const FULL = `more than ${MAX_HASHED} distinct values besides whole numbers from 0 to ${BITMAP_LIMIT - 1}`;

const INTEGER_TAG = 0x80000000;
const TEXT_BITS = 0x7fffffff;
const TWO_32 = 2 ** 32;
/** A text that is a whole number as a column of numbers holds it: one value whichever way it came. */
const CANONICAL_INTEGER = /^-?[1-9]\d{0,14}$|^0$/;

/** A distinct set as plain data: typed arrays, which cross threads by transfer. */
export interface DistinctState {
  bits: Uint32Array;
  keys: KeySetState;
  size: number;
  examples: string[];
}

const key = new Uint32Array(2);

export class DistinctValues {
  #bits: Uint32Array;
  readonly #keys: KeySet;
  size: number;
  readonly examples: string[];

  constructor(state?: DistinctState) {
    this.#bits = state?.bits ?? new Uint32Array(0);
    this.#keys = new KeySet(state?.keys);
    this.size = state?.size ?? 0;
    this.examples = state?.examples ?? [];
  }

  state(): DistinctState {
    return { bits: this.#bits, keys: this.#keys.state(), size: this.size, examples: this.examples };
  }

  /** The buffers `state()` holds, to transfer rather than copy to another thread. */
  buffers(): ArrayBuffer[] {
    return [this.#bits.buffer as ArrayBuffer, this.#keys.state().slots.buffer as ArrayBuffer];
  }

  /** Adds a value: true when new, false when seen before, undefined when new but the set is full. */
  add(value: string | number): boolean | undefined {
    const fresh = this.#add(value);
    if (fresh === true) {
      this.size++;
      if (this.examples.length < EXAMPLES) this.examples.push(String(value));
    }
    return fresh;
  }

  has(value: string | number): boolean {
    const n = asNumber(value);
    if (n !== undefined && n >= 0 && n < BITMAP_LIMIT) return this.#hasBit(n);
    keyOf(value, n);
    return this.#keys.has(key[0] as number, key[1] as number);
  }

  #add(value: string | number): boolean | undefined {
    const n = asNumber(value);
    if (n !== undefined && n >= 0 && n < BITMAP_LIMIT) return this.#setBit(n);
    keyOf(value, n);
    const hi = key[0] as number;
    const lo = key[1] as number;
    if (this.#keys.size >= MAX_HASHED) return this.#keys.has(hi, lo) ? false : undefined;
    return this.#keys.add(hi, lo);
  }

  #hasBit(n: number): boolean {
    const word = n >>> 5;
    return word < this.#bits.length && ((this.#bits[word] as number) & (1 << (n & 31))) !== 0;
  }

  #setBit(n: number): boolean {
    const word = n >>> 5;
    if (word >= this.#bits.length) this.#growBits(word);
    const bit = 1 << (n & 31);
    const was = this.#bits[word] as number;
    if ((was & bit) !== 0) return false;
    this.#bits[word] = was | bit;
    return true;
  }

  /** The bitmap doubled until it holds `word`: its size follows the largest number, never the count. */
  #growBits(word: number): void {
    let length = Math.max(this.#bits.length, 1024);
    while (length <= word) length *= 2;
    const bits = new Uint32Array(length);
    bits.set(this.#bits);
    this.#bits = bits;
  }

  /**
   * Adds another set's values (the same column's, read from other files): how many of them this one held
   * already, or undefined once full.
   */
  absorb(other: DistinctValues): number | undefined {
    const examples = other.examples.filter((e) => !this.has(e));
    let repeats = 0;
    const bits = other.#bits;
    for (let word = 0; word < bits.length; word++) {
      const w = bits[word] as number;
      if (w === 0) continue;
      if (word >= this.#bits.length) this.#growBits(word);
      const was = this.#bits[word] as number;
      repeats += bitCount(w & was);
      this.#bits[word] = was | w;
    }
    const keyRepeats = this.#keys.absorbBounded(other.#keys, MAX_HASHED);
    if (keyRepeats === undefined) return undefined;
    repeats += keyRepeats;
    this.size += other.size - repeats;
    for (const e of examples) if (this.examples.length < EXAMPLES) this.examples.push(e);
    return repeats;
  }

  /**
   * How many of these values `parent` lacks, and up to `shown` of them among the examples kept as text
   * (none shown when all the missing ones are past the first EXAMPLES values).
   */
  missingFrom(parent: DistinctValues, shown: number): { count: number; examples: string[] } {
    let count = 0;
    const bits = this.#bits;
    const theirs = parent.#bits;
    for (let word = 0; word < bits.length; word++)
      count += bitCount((bits[word] as number) & ~(theirs[word] ?? 0));
    this.#keys.forEach((hi, lo) => {
      if (!parent.#keys.has(hi, lo)) count++;
    });
    const examples = count === 0 ? [] : this.examples.filter((e) => !parent.has(e)).slice(0, shown);
    return { count, examples };
  }
}

/** How many bits of the 32-bit word are set (the usual SWAR count: JavaScript has no popcount). */
function bitCount(word: number): number {
  let v = word - ((word >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

/** The value as a whole number within a double's exact range, if it is one. */
function asNumber(value: string | number): number | undefined {
  if (typeof value === 'number') return value;
  const c = value.charCodeAt(0);
  return (c === 45 || (c >= 48 && c <= 57)) && CANONICAL_INTEGER.test(value) ? Number(value) : undefined;
}

/** The value's 64-bit key into `key`: a whole number exactly (top bit set), else the text's hash (top bit clear). */
function keyOf(value: string | number, n: number | undefined): void {
  if (n !== undefined) {
    key[0] = ((Math.floor(n / TWO_32) & 0x3fffff) | INTEGER_TAG) >>> 0;
    key[1] = n >>> 0;
    return;
  }
  hashText(value as string, key);
  key[0] = (key[0] as number) & TEXT_BITS;
  if (key[0] === 0 && key[1] === 0) key[1] = 1;
}
