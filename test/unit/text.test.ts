import { describe, expect, it } from 'vitest';
import { capped, middleEllipsis } from '../../shared/core/text.ts';

describe('capped', () => {
  it('keeps text up to the cap and says how much it left off beyond it', () => {
    expect(capped('abc', 3)).toBe('abc');
    expect(capped('abcdef', 3)).toBe('abc… (3 more characters)');
    expect(capped('x'.repeat(2001))).toBe(`${'x'.repeat(2000)}… (1 more character)`);
  });
});

describe('middleEllipsis', () => {
  it('keeps both ends of a long text, at most max characters', () => {
    expect(middleEllipsis('abcdef', 6)).toBe('abcdef');
    expect(middleEllipsis('abcdefg', 6)).toBe('abc…fg');
    expect(middleEllipsis('abcdefg', 1)).toBe('…');
    expect(middleEllipsis('k'.repeat(1024), 80)).toHaveLength(80);
  });
});
