/**
 * The text a JSON line wrote for the number at `path` (`9007199254740993`, `1e400`), where the value
 * JSON.parse made of it is not that text (a double keeps about 15 digits, and 1e400 is Infinity). Runs
 * on rejects only: it parses the line again, with the source text of each number (ES2025 JSON.parse
 * source access, in Node 22 and later). Undefined when the line is not JSON or holds no number there.
 */
export function numberSource(raw: string, path: readonly PropertyKey[]): string | undefined {
  let tree: unknown;
  try {
    tree = JSON.parse(raw, (_key: string, value: unknown, context?: { source?: string }) =>
      typeof value === 'number' && context?.source !== undefined ? new Source(context.source) : value,
    );
  } catch {
    return undefined;
  }
  let at: unknown = tree;
  for (const part of path) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<PropertyKey, unknown>)[part];
  }
  return at instanceof Source ? at.text : undefined;
}

class Source {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

/** Why JSON.parse did not read the number as written, or undefined when it did. */
export function numberLoss(source: string): string | undefined {
  const value = Number(source);
  if (!Number.isFinite(value))
    return 'beyond the range of a double, JSON numbers cannot hold it: quote it as a string';
  if (Number.isInteger(value) && Math.abs(value) > Number.MAX_SAFE_INTEGER)
    return 'beyond 2^53, JSON numbers lose digits: quote it as a string';
  const mantissa = source.replace(/[eE].*$/, '');
  if (value === 0 && /[1-9]/.test(mantissa))
    return 'too small for a double, JSON numbers read it as 0: quote it as a string';
  const significant = mantissa.replace(/[-+.]/g, '').replace(/^0+/, '').replace(/0+$/, '');
  if (significant.length > 15) return 'JSON numbers keep about 15 significant digits: quote it as a string';
  return undefined;
}
