import { describe, expect, it } from 'vitest';
import { isCanonicalIso, isoInstant } from '../../shared/formats/iso-time.ts';
import { prng } from './helpers.ts';

describe('isoInstant: the instant new Date(text) reads, for strict ISO UTC texts', () => {
  it('agrees with Date.parse on every form, across years 0000–9999', () => {
    let seed = 11;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const from = Date.UTC(0, 0, 1) - 1900 * 365.2425 * 86_400_000;
    const until = 253_402_300_799_999;
    for (let i = 0; i < 30_000; i++) {
      const iso = new Date(Math.floor(from + random() * (until - from))).toISOString();
      for (const text of [iso, `${iso.slice(0, 19)}Z`, iso.slice(0, 10)]) {
        expect(isoInstant(text), text).toBe(Date.parse(text));
      }
    }
  });

  it('agrees at the edges of months, leap days, years and the epoch', () => {
    const texts = [
      '1970-01-01T00:00:00.000Z',
      '1969-12-31T23:59:59.999Z',
      '0000-01-01T00:00:00.000Z',
      '0000-02-29',
      '0099-12-31T23:59:59Z',
      '1900-02-28',
      '2000-02-29T12:00:00Z',
      '2024-02-29T23:59:59.999Z',
      '9999-12-31T23:59:59.999Z',
      '2023-04-30',
      '2023-12-31T00:00:00.001Z',
    ];
    for (const text of texts) expect(isoInstant(text), text).toBe(Date.parse(text));
  });

  it('leaves every other text to new Date', () => {
    const others = [
      '',
      '2024-02-30',
      '2023-02-29T00:00:00Z',
      '2024-04-31',
      '2024-13-01',
      '2024-00-10',
      '2024-01-00',
      '2024-01-02T24:00:00Z',
      '2024-01-02T23:60:00Z',
      '2024-01-02T23:59:60Z',
      '2024-01-02T0a:04:05Z',
      '2024-01-02T03:0+:05.000Z',
      '2024-01-02T03:04:.5Z',
      '2024-01-02T03:04:05',
      '2024-01-02T03:04:05.000',
      '2024-01-02T03:04:05+00:00',
      '2024-01-02 03:04:05Z',
      '2024-01-02t03:04:05z',
      '2024-01-02T03:04:05.1Z',
      '2024-01-02T03:04:05.12Z',
      '2024-01-02T03:04:05,123Z',
      '2024-1-02',
      '+002024-01-02',
      '20240102',
      '2024/01/02',
      '２０２４-01-02',
      '2024-01-0x',
      'yesterday',
    ];
    for (const text of others) expect(isoInstant(text), text).toBeUndefined();
  });
});

describe('isCanonicalIso: isoInstant says yes, for a text toISOString writes', () => {
  it('agrees with isoInstant on generated instants and on every one-character change of them', () => {
    const random = prng(23);
    const from = -62_167_219_200_000;
    const until = 253_402_300_799_999;
    const alphabet = '0123456789-:.TZtz +';
    let canonical = 0;
    for (let i = 0; i < 20_000; i++) {
      const iso = new Date(Math.floor(from + random() * (until - from))).toISOString();
      const at = Math.floor(random() * 24);
      const changed = `${iso.slice(0, at)}${alphabet[Math.floor(random() * alphabet.length)]}${iso.slice(at + 1)}`;
      for (const text of [iso, changed, `${iso.slice(0, 19)}Z`, iso.slice(0, 10), `${iso}Z`]) {
        const yes = text.length === 24 && isoInstant(text) !== undefined;
        expect(isCanonicalIso(text), text).toBe(yes);
        if (yes) canonical++;
      }
    }
    expect(canonical).toBeGreaterThan(20_000);
  });

  it('agrees at the edges: leap days, the last instant of a month, out-of-range parts', () => {
    const texts = [
      '2024-02-29T23:59:59.999Z',
      '2023-02-29T00:00:00.000Z',
      '1900-02-29T00:00:00.000Z',
      '2000-02-29T00:00:00.000Z',
      '0000-01-01T00:00:00.000Z',
      '9999-12-31T23:59:59.999Z',
      '2024-04-31T00:00:00.000Z',
      '2024-13-01T00:00:00.000Z',
      '2024-00-01T00:00:00.000Z',
      '2024-01-00T00:00:00.000Z',
      '2024-01-02T24:00:00.000Z',
      '2024-01-02T23:60:00.000Z',
      '2024-01-02T23:59:60.000Z',
      '2024-01-02T23:59:59.00aZ',
      '2024-01-02T23:59:59,000Z',
      '2024-01-02 23:59:59.000Z',
      '+02024-01-02T23:59:59.00Z',
      // What the pattern's classes could let through: non-ASCII digits, a NUL, line ends, 29–31 of February.
      '2024-01-0\uff12T00:00:00.000Z',
      '2024-01-02T00:00:00.\u0661\u0662\u0663Z',
      '2024-01-02T00:00:00.000Z\n',
      '2024-01-02T00:00:00.00\u0000Z',
      '\n2024-01-02T00:00:00.000Z'.slice(1),
      '2024-01-02T00:00:00.000z',
      '2100-02-29T00:00:00.000Z',
      '2400-02-29T00:00:00.000Z',
      '2024-02-30T00:00:00.000Z',
      '2024-06-31T00:00:00.000Z',
      '2024-07-31T00:00:00.000Z',
      '2024-02-28T00:00:00.000Z',
      '2024-01-02T19:00:00.000Z',
      '2024-01-02T20:00:00.000Z',
      '2024-01-02T03:0+:05.678Z',
    ];
    for (const text of texts) {
      expect(isCanonicalIso(text), text).toBe(text.length === 24 && isoInstant(text) !== undefined);
    }
  });
});
