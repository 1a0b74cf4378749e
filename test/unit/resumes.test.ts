import { describe, expect, it } from 'vitest';
import { interruptedWhenAnnounced, lostDelivery, resumedText } from '../../shared/ledger/resumes.ts';

const firstReceivedAt = new Date('2026-11-28T05:31:02.000Z');

describe('what counts as a lost delivery of a chunk', () => {
  it('the previous delivery neither loaded the chunk nor recorded a failure: lost since its first receipt', () => {
    expect(lostDelivery({ count: 2, firstReceivedAt }, 0)).toEqual(firstReceivedAt);
    // Deliveries 1 and 2 failed and said so; the third died without a word.
    expect(lostDelivery({ count: 4, firstReceivedAt }, 2)).toEqual(firstReceivedAt);
  });

  it('a first delivery, or one after a recorded failure, or none known, lost nothing', () => {
    expect(lostDelivery({ count: 1, firstReceivedAt }, 0)).toBeUndefined();
    expect(lostDelivery({ count: 3, firstReceivedAt }, 2)).toBeUndefined();
    expect(lostDelivery(undefined, 0)).toBeUndefined();
  });
});

describe('what counts as interrupted when a file is announced again', () => {
  it('loading (whatever its chunks say), or splitting with no failure of its split recorded', () => {
    expect(interruptedWhenAnnounced({ state: 'loading', error: null })).toBe(true);
    expect(interruptedWhenAnnounced({ state: 'loading', error: 'chunk 2: delivery 1 of 5 failed' })).toBe(
      true,
    );
    expect(interruptedWhenAnnounced({ state: 'splitting', error: null })).toBe(true);
  });

  it('a split that failed and said so is retried; a finished, stalled or waiting file is not interrupted', () => {
    expect(interruptedWhenAnnounced({ state: 'splitting', error: 'split delivery 1 of 5 failed' })).toBe(
      false,
    );
    // Its plan recorded, its chunk messages refused: loading, with the split's failure on the file.
    expect(
      interruptedWhenAnnounced({
        state: 'loading',
        error: 'split delivery 2 of 5 failed; next try within 4 s: x',
      }),
    ).toBe(false);
    for (const state of ['loaded', 'failed', 'skipped', 'stalled', 'waiting'] as const)
      expect(interruptedWhenAnnounced({ state, error: null })).toBe(false);
  });
});

describe('the line status and the console print', () => {
  const lastAt = '2026-11-28T05:31:40.123Z';
  it('one resume, of a finished file: when, and its seconds idle and active', () => {
    expect(resumedText({ times: 1, lastAt, idleSeconds: 38 }, 52.3, 'loaded')).toBe(
      'resumed 1× after an interruption, at 05:31:40 UTC; of its 52.3 s, 38.0 were idle before it and 14.3 active; nothing to do: no row is lost or loaded twice',
    );
  });

  it('several resumes: the last one, the idle seconds of all', () => {
    expect(resumedText({ times: 3, lastAt, idleSeconds: 61.2 }, 80, 'loading')).toBe(
      'resumed 3× after interruptions, the last at 05:31:40 UTC; of its 80.0 s, 61.2 were idle before them and 18.8 active; nothing to do: no row is lost or loaded twice',
    );
  });

  it('a stalled or failed file has something to do: its error, not "nothing to do"', () => {
    expect(resumedText({ times: 5, lastAt, idleSeconds: 1.5 }, 20, 'stalled')).toBe(
      'resumed 5× after interruptions, the last at 05:31:40 UTC; of its 20.0 s, 1.5 were idle before them and 18.5 active; no row is lost or loaded twice by them, but the file is stalled: see its error',
    );
    expect(resumedText({ times: 1, lastAt, idleSeconds: 2 }, 3, 'failed')).toBe(
      'resumed 1× after an interruption, at 05:31:40 UTC; of its 3.0 s, 2.0 were idle before it and 1.0 active; no row is lost or loaded twice by it, but the file is failed: see its error',
    );
  });
});
