import { EXAMPLES, MAX_HASHED } from './distinct-values.ts';
import { crossedKey, hashPair } from './key-hash.ts';
import { KeySet, type KeySetState } from './key-set.ts';

/** Why a pair set past its bound was given up, as the summary says it. */
export const FULL_PAIRS = `more than ${MAX_HASHED} distinct pairs`;

/** A pair set as plain data: a typed array, which crosses threads by transfer. */
export interface DistinctPairsState {
  keys: KeySetState;
  examples: [string, string][];
}

const key = new Uint32Array(2);

/**
 * A file's distinct pairs of two columns' texts, as 64-bit keys (`hashPair`: 62 bits of hash, so about
 * n²/2^63 for a false duplicate or a false "contained"), at most MAX_HASHED of them; the first EXAMPLES
 * pairs are kept as text for the evidence.
 */
export class DistinctPairs {
  readonly #keys: KeySet;
  readonly examples: [string, string][];

  constructor(state?: DistinctPairsState) {
    this.#keys = new KeySet(state?.keys);
    this.examples = state?.examples ?? [];
  }

  get size(): number {
    return this.#keys.size;
  }

  state(): DistinctPairsState {
    return { keys: this.#keys.state(), examples: this.examples };
  }

  buffers(): ArrayBuffer[] {
    return [this.#keys.state().slots.buffer as ArrayBuffer];
  }

  /** Adds a pair: true when new, false when seen before, undefined when new but the set is full. */
  add(a: string, b: string): boolean | undefined {
    hashPair(a, b, key);
    const hi = key[0] as number;
    const lo = key[1] as number;
    if (this.#keys.has(hi, lo)) return false;
    if (this.#keys.size >= MAX_HASHED) return undefined;
    this.#keys.add(hi, lo);
    if (this.examples.length < EXAMPLES) this.examples.push([a, b]);
    return true;
  }

  /** Whether the pair is here, or with `crossed` the pair (b, a). */
  has(a: string, b: string, crossed = false): boolean {
    hashPair(a, b, key);
    const hi = key[0] as number;
    return this.#keys.has(crossed ? crossedKey(hi) : hi, key[1] as number);
  }

  /** Adds another set's pairs (the same columns' in other files): how many it held already, or undefined once full. */
  absorb(other: DistinctPairs): number | undefined {
    const examples = other.examples.filter(([a, b]) => !this.has(a, b));
    const repeats = this.#keys.absorbBounded(other.#keys, MAX_HASHED);
    if (repeats === undefined) return undefined;
    for (const e of examples) if (this.examples.length < EXAMPLES) this.examples.push(e);
    return repeats;
  }

  /**
   * How many of these pairs `parent` lacks (with `crossed`, each looked up swapped), and up to `shown`
   * of them among the examples kept as text.
   */
  missingFrom(
    parent: DistinctPairs,
    crossed: boolean,
    shown: number,
  ): { count: number; examples: [string, string][] } {
    let count = 0;
    this.#keys.forEach((hi, lo) => {
      if (!parent.#keys.has(crossed ? crossedKey(hi) : hi, lo)) count++;
    });
    const examples =
      count === 0 ? [] : this.examples.filter(([a, b]) => !parent.has(a, b, crossed)).slice(0, shown);
    return { count, examples };
  }
}
