import type { Reject } from '../ledger/ledger.ts';

const BOM = 0xfeff;

/**
 * Signs of two CSV exports joined into one file (`cat a.csv b.csv`): the second one's header, perhaps
 * behind its byte-order mark, arrives as a record. In a dataset of text columns that record passes every
 * check and would load as a row, and a mark in front of a value is invisible in the reason that quotes
 * it. The check costs a record one comparison of its first field's first character when neither is there.
 */
export function joinedFileCheck(
  columns: string[],
): ((values: string[], record: { line: number; raw(): string }) => Reject | undefined) | undefined {
  const first = columns[0];
  if (first === undefined || first === '') return undefined;
  const head = first.charCodeAt(0);
  return (values, record) => {
    const line = record.line;
    const value = values[0] as string;
    const c = value.charCodeAt(0);
    if (c !== BOM && c !== head && c !== 32 && c !== 9) return undefined;
    const marked = c === BOM;
    const text = marked ? value.slice(1) : value;
    if (
      text.trim() === first &&
      values.length === columns.length &&
      values.every((v, i) => i === 0 || v.trim() === columns[i])
    )
      return {
        line,
        column: null,
        kind: 'malformed',
        reason: `the header repeated at line ${line} (two exports concatenated?)`,
        raw: record.raw(),
      };
    if (marked)
      return {
        line,
        column: first,
        kind: 'malformed',
        reason: `a byte-order mark at the start of line ${line}: an invisible U+FEFF before ${JSON.stringify(text.slice(0, 40))} (two exports concatenated?)`,
        raw: record.raw(),
      };
    return undefined;
  };
}
