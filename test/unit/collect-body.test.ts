import { describe, expect, it } from 'vitest';
import { collectBody } from '../../shared/aws/object-store.ts';

/** A response body that arrives in these pieces. */
async function* body(...pieces: string[]): AsyncGenerator<Uint8Array> {
  for (const p of pieces) yield new TextEncoder().encode(p);
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe('collectBody', () => {
  it('puts the pieces together in order, in a buffer of the expected length', async () => {
    const bytes = await collectBody(body('ab', 'cde', '', 'f'), 6);
    expect(text(bytes)).toBe('abcdef');
    expect(bytes.length).toBe(6);
  });

  it('returns what came when the body is shorter than expected', async () => {
    expect(text(await collectBody(body('abc'), 10))).toBe('abc');
    expect((await collectBody(body(), 10)).length).toBe(0);
  });

  it('reads a body longer than expected whole', async () => {
    expect(text(await collectBody(body('abc', 'defgh', 'ij'), 4))).toBe('abcdefghij');
    expect(text(await collectBody(body('xy'), 0))).toBe('xy');
  });
});
