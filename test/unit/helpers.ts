import {
  type ChunkPlan,
  type FilePlan,
  type PlanOptions,
  planChunks,
} from '../../shared/formats/chunking.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

export const utf8 = (text: string): Uint8Array => encoder.encode(text);
export const text = (bytes: Uint8Array): string => decoder.decode(bytes);

/** Concatenates byte arrays and strings (as UTF-8) into one buffer. */
export function bytesOf(...parts: (string | number[] | Uint8Array)[]): Uint8Array {
  const arrays = parts.map((p) => (typeof p === 'string' ? utf8(p) : Uint8Array.from(p)));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

/** Yields `bytes` in the pieces cut at `cuts` (ascending offsets), or in pieces of `size` bytes. */
export async function* pieces(bytes: Uint8Array, split: number | number[]): AsyncGenerator<Uint8Array> {
  const cuts: number[] = [];
  if (typeof split === 'number') {
    for (let at = split; at < bytes.length; at += split) cuts.push(at);
  } else cuts.push(...split);
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    yield bytes.subarray(from, cut);
    from = cut;
  }
}

export const csv = { format: 'csv', delimiter: ',', chunkBytes: 1 << 20, maxRecordBytes: 1 << 20 } as const;
export const ndjson = {
  format: 'ndjson',
  delimiter: ',',
  chunkBytes: 1 << 20,
  maxRecordBytes: 1 << 20,
} as const;

/** Plans a file given as text or bytes, fed in pieces of `split` (default: whole). */
export function plan(
  input: string | Uint8Array,
  options: Partial<PlanOptions> = {},
  split: number | number[] = [],
): Promise<FilePlan> {
  const bytes = typeof input === 'string' ? utf8(input) : input;
  return planChunks(pieces(bytes, split), { ...csv, ...options });
}

/** A chunk without its index, for compact expectations. */
export type Span = Omit<ChunkPlan, 'index'>;

export function spans(p: FilePlan): Span[] {
  return p.chunks.map(({ index: _index, ...rest }) => rest);
}

export const chunk = (
  start: number,
  end: number,
  firstLine: number,
  records: number,
  flags: { oversized?: boolean; unterminated?: boolean; lines?: number } = {},
): Span => ({
  start,
  end,
  firstLine,
  records,
  oversized: flags.oversized ?? false,
  unterminated: flags.unterminated ?? false,
  ...(flags.lines !== undefined ? { lines: flags.lines } : {}),
});

/** mulberry32: a small seeded PRNG, so a failing file can be regenerated from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
