import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { bigintText, decimal, integer, timestamp } from '../../shared/config/fields.ts';

const issue = (schema: z.ZodType, value: unknown) => {
  const r = schema.safeParse(value);
  return r.success ? undefined : r.error.issues[0]?.message;
};

describe('strict field types', () => {
  it('integer: decimal digits only, in the safe range; numbers from NDJSON pass', () => {
    expect(integer().parse(' 42 ')).toBe(42);
    expect(integer().parse('-7')).toBe(-7);
    expect(integer().parse(9001)).toBe(9001);
    for (const bad of ['', ' ', '0x10', '1e3', '1.5', '9007199254740993', 'abc', 1.5]) {
      expect(issue(integer(), bad), String(bad)).toBe('not a whole number');
    }
  });

  it('decimal: plain and exponent notation, nothing else', () => {
    expect(decimal().parse('12')).toBe(12);
    expect(decimal().parse('-0.5')).toBe(-0.5);
    expect(decimal().parse('.25')).toBe(0.25);
    expect(decimal().parse('1e3')).toBe(1000);
    for (const bad of ['', ' ', '0x10', '1,000', 'NaN', 'Infinity', '1.2.3']) {
      expect(issue(decimal(), bad), bad).toBe('not a decimal number');
    }
  });

  it('bigintText keeps digits beyond 2^53 as text', () => {
    expect(bigintText().parse('9007199254740993')).toBe('9007199254740993');
    expect(issue(bigintText(), '12a')).toBe('not a whole number');
  });

  it('timestamp: needs a time zone, so a file means one instant everywhere', () => {
    expect(timestamp().parse('2026-11-27T10:00:00Z')).toEqual(new Date('2026-11-27T10:00:00Z'));
    expect(timestamp().parse('2026-11-27T11:00:00+01:00')).toEqual(new Date('2026-11-27T10:00:00Z'));
    for (const bad of ['2026-11-27T10:00:00', '2026-11-27', 'yesterday', '']) {
      expect(issue(timestamp(), bad), bad).toBe('not an ISO timestamp with a time zone (Z or +hh:mm)');
    }
  });

  it('optional fields still take "no value"', () => {
    expect(integer().optional().parse(undefined)).toBeUndefined();
  });
});
