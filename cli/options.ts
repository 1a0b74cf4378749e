import { InvalidArgumentError } from 'commander';

/** Commander parser for options that take a count: a positive whole number or a usage error. */
export function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}
