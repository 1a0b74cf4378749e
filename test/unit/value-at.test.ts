import { describe, expect, it } from 'vitest';
import { valueAt } from '../../shared/load/write/relations.ts';

// `valueAt` parses each path once and keeps it: the same path must read the same way in any scope.
describe('valueAt', () => {
  const record = { id: 7, customer: { email: 'a@b' }, lines: [{ sku: 'x', parts: [{ n: 1 }] }] };
  const line = record.lines[0];
  const part = line?.parts[0];

  it('reads a property path from the innermost scope, the root, or levels up', () => {
    const scope = [record, line, part];
    expect(valueAt(scope, 'n')).toBe(1);
    expect(valueAt(scope, '../sku')).toBe('x');
    expect(valueAt(scope, '../../customer.email')).toBe('a@b');
    expect(valueAt(scope, '/id')).toBe(7);
    expect(valueAt(scope, '.')).toBe(part);
    expect(valueAt(scope, '')).toBe(part);
    expect(valueAt(scope, '/')).toBe(record);
  });

  it('stops at the root going up, and gives undefined past a missing step', () => {
    expect(valueAt([record, line], '../../../id')).toBe(7);
    expect(valueAt([record], 'customer.phone.area')).toBeUndefined();
    expect(valueAt([record], 'id.x')).toBeUndefined();
  });

  it('reads a path parsed once the same way in a scope of another depth', () => {
    expect(valueAt([record, line, part], '../sku')).toBe('x');
    expect(valueAt([record, line], '../sku')).toBeUndefined();
    expect(valueAt([record, line], '../id')).toBe(7);
  });
});
