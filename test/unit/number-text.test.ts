import { describe, expect, it } from 'vitest';
import { plainNumber } from '../../shared/formats/number-text.ts';
import { prng } from './helpers.ts';

describe('plainNumber: the double Number() reads, for plain decimal text', () => {
  it('agrees with Number on generated texts of up to 15 digits, with and without a point', () => {
    const random = prng(7);
    let read = 0;
    for (let i = 0; i < 50_000; i++) {
      const digits = 1 + Math.floor(random() * 15);
      let text = '';
      for (let d = 0; d < digits; d++) text += String(Math.floor(random() * 10));
      const point = Math.floor(random() * (digits + 1));
      if (point > 0 && point < digits) text = `${text.slice(0, point)}.${text.slice(point)}`;
      if (random() < 0.3) text = `-${text}`;
      const value = plainNumber(text);
      expect(Object.is(value, Number(text)), text).toBe(true);
      read++;
    }
    expect(read).toBe(50_000);
  });

  it('agrees at the edges: zeros, -0, the largest 15-digit values, the smallest fractions', () => {
    const texts = ['0', '-0', '00', '007', '0.10', '-0.0', '999999999999999', '-99999999999999.9'];
    for (const text of [...texts, '0.00000000000001', '12345.6789012345', '1.5', '85246.58']) {
      expect(Object.is(plainNumber(text), Number(text)), text).toBe(true);
    }
  });

  it('leaves to Number what is not plain or has more digits than a double holds exactly', () => {
    const others = ['', '-', '.', '.5', '5.', '+5', ' 5', '5 ', '1e3', '0x10', '1.2.3', '--1', 'NaN'];
    for (const text of [...others, 'Infinity', '1,5', '1234567890123456', '9007199254740.993']) {
      expect(plainNumber(text), text).toBeUndefined();
    }
  });
});
