// 64-bit keys for the distinct sets (see distinct-values.ts): a text's hash, a pair's, as two 32-bit
// halves, written into an `out` array so that no value allocates.

/**
 * A text's 64-bit hash (cyrb53's two lanes, kept whole): `out[0]` high, `out[1]` low. Measured against
 * `@node-rs/xxhash` (a native call per value) on the bench file's ids and e-mails: see README, Performance.
 */
export function hashText(text: string, out: Uint32Array): void {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  finish(h1, h2, out);
}

/** Both lanes mixed into each other (murmur3's finaliser on each, crossed twice): every input bit reaches every output bit. */
function finish(a: number, b: number, out: Uint32Array): void {
  let h1 = fmix(a ^ Math.imul(b, 0x9e3779b1));
  let h2 = fmix(b ^ Math.imul(h1, 0x85ebca77));
  h1 = fmix(h1 ^ Math.imul(h2, 0xc2b2ae3d));
  h2 = fmix(h2 ^ Math.imul(h1, 0x27d4eb2f));
  out[0] = h2;
  out[1] = h1;
}

function fmix(x: number): number {
  let h = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** A pair's order in its key's top two bits: the first text's hash below the second's, above, or equal. */
const BELOW = 1;
const ABOVE = 2;
const ORDER_SHIFT = 30;
const HASH_BITS = 0x3fffffff;

/**
 * A pair of texts' 64-bit key: a 62-bit hash of the two texts' hashes taken in sorted order, and which
 * came first in the top two bits, so that the key of the pair crossed (`b`, `a`) follows from the key
 * alone (`crossedKey`): a composite foreign key may list the parent's columns the other way round.
 */
export function hashPair(a: string, b: string, out: Uint32Array): void {
  hashText(a, out);
  const a0 = out[0] as number;
  const a1 = out[1] as number;
  hashText(b, out);
  const b0 = out[0] as number;
  const b1 = out[1] as number;
  const order = a0 < b0 || (a0 === b0 && a1 < b1) ? BELOW : a0 === b0 && a1 === b1 ? 0 : ABOVE;
  const [x0, x1, y0, y1] = order === ABOVE ? [b0, b1, a0, a1] : [a0, a1, b0, b1];
  // The second hash goes in after the first is mixed: not a sum or a xor of the two (no cancelling out).
  let h1 = fmix(x1 ^ Math.imul(x0, 0x9e3779b1));
  let h2 = fmix(x0 ^ Math.imul(h1, 0x85ebca77));
  h1 = fmix(h1 ^ y1);
  h2 = fmix(h2 ^ y0 ^ Math.imul(h1, 0xc2b2ae3d));
  finish(h1, h2, out);
  out[0] = (((out[0] as number) & HASH_BITS) | (order << ORDER_SHIFT)) >>> 0;
}

/** The key of the same pair with its texts swapped (see `hashPair`). */
export function crossedKey(hi: number): number {
  const order = hi >>> ORDER_SHIFT;
  const swapped = order === BELOW ? ABOVE : order === ABOVE ? BELOW : 0;
  return ((hi & HASH_BITS) | (swapped << ORDER_SHIFT)) >>> 0;
}
