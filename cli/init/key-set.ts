// A set of 64-bit keys in one typed array (open addressing, linear probing): 8 bytes a slot, at most
// half the slots used, so 16–32 bytes a key; a key is two 32-bit halves, (0, 0) marking an empty slot
// (callers' keys carry a tag or an order bit, or are nudged off (0, 0): no key is 0).

const FIRST_SLOTS = 1024;

/** A key set as plain data: one typed array, which crosses threads by transfer (no copy). */
export interface KeySetState {
  slots: Uint32Array;
  size: number;
}

export class KeySet {
  #slots: Uint32Array;
  #mask: number;
  size: number;

  constructor(state?: KeySetState) {
    this.#slots = state?.slots ?? new Uint32Array(FIRST_SLOTS * 2);
    this.#mask = this.#slots.length / 2 - 1;
    this.size = state?.size ?? 0;
  }

  /** The first slot to probe: the halves mixed, so that ids in sequence spread over the table. */
  static #start(hi: number, lo: number, mask: number): number {
    let h = lo ^ Math.imul(hi, 0x9e3779b1);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    return (h ^ (h >>> 13)) & mask;
  }

  /** The slot holding the key, or the empty one where it would go. */
  #find(hi: number, lo: number): number {
    const slots = this.#slots;
    const mask = this.#mask;
    for (let i = KeySet.#start(hi, lo, mask); ; i = (i + 1) & mask) {
      const h = slots[2 * i] as number;
      const l = slots[2 * i + 1] as number;
      if ((h === hi && l === lo) || (h === 0 && l === 0)) return i;
    }
  }

  has(hi: number, lo: number): boolean {
    const i = this.#find(hi, lo);
    return this.#slots[2 * i] === hi && this.#slots[2 * i + 1] === lo;
  }

  /** Adds the key: false when it was there already. */
  add(hi: number, lo: number): boolean {
    let i = this.#find(hi, lo);
    if (this.#slots[2 * i] === hi && this.#slots[2 * i + 1] === lo) return false;
    if ((this.size + 1) * 2 > this.#mask + 1) {
      this.#grow();
      i = this.#find(hi, lo);
    }
    this.#slots[2 * i] = hi;
    this.#slots[2 * i + 1] = lo;
    this.size++;
    return true;
  }

  /**
   * Adds `other`'s keys while this set holds fewer than `max`: how many of them it held already, or
   * undefined once a new key finds it full (the distinct sets then give themselves up, so the keys
   * added before are left as they are).
   */
  absorbBounded(other: KeySet, max: number): number | undefined {
    let repeats = 0;
    let full = false;
    other.forEach((hi, lo) => {
      if (full) return;
      if (this.has(hi, lo)) repeats++;
      else if (this.size >= max) full = true;
      else this.add(hi, lo);
    });
    return full ? undefined : repeats;
  }

  #grow(): void {
    const old = this.#slots;
    this.#slots = new Uint32Array(old.length * 2);
    this.#mask = this.#slots.length / 2 - 1;
    for (let i = 0; i < old.length; i += 2) {
      const h = old[i] as number;
      const l = old[i + 1] as number;
      if (h === 0 && l === 0) continue;
      const at = this.#find(h, l);
      this.#slots[2 * at] = h;
      this.#slots[2 * at + 1] = l;
    }
  }

  forEach(fn: (hi: number, lo: number) => void): void {
    const slots = this.#slots;
    for (let i = 0; i < slots.length; i += 2) {
      const h = slots[i] as number;
      const l = slots[i + 1] as number;
      if (h !== 0 || l !== 0) fn(h, l);
    }
  }

  state(): KeySetState {
    return { slots: this.#slots, size: this.size };
  }
}
