import Papa from 'papaparse';
import { describe, expect, it } from 'vitest';
import { RecordScanner, type RecordSpan } from '../../shared/formats/chunking.ts';
import { type ParsedRecord, parseText } from '../../shared/formats/parsing.ts';
import { prng } from './helpers.ts';

// The pulled CSV parser splits quote-free lines itself and hands only records with a quote to
// papaparse: it must read every text as the record scanner cuts it into records (so a chunk's parse
// agrees with its plan) and each record as papaparse reads it. The reference below is that, slowly: the
// scanner's records, each parsed by papaparse on its own. Where papaparse alone would read on past a
// malformed quote (`"a"x`), to the next quote before a delimiter, the scanner's record end stands.

const HINT = 'a stray quote? if the file has no quoting, set `quote: false` in its dataset';

function referenceCsv(text: string, delimiter: string, columns: string[], firstLine: number): ParsedRecord[] {
  const trimEol = (raw: string) => raw.replace(/\r?\n$/, '');
  const lastFieldQuoted = (raw: string) => {
    let quoted = false;
    let open = false;
    let start = true;
    for (const ch of raw) {
      if (start) {
        start = false;
        quoted = ch === '"';
        open = quoted;
        if (quoted) continue;
      }
      if (quoted && ch === '"') open = !open;
      else if (!open && ch === delimiter) start = true;
    }
    return quoted && !start;
  };
  const bytes = new TextEncoder().encode(text);
  const spans: RecordSpan[] = [];
  const scanner = new RecordScanner({ format: 'csv', delimiter, line: firstLine }, (span) =>
    spans.push(span),
  );
  scanner.push(bytes);
  scanner.end();
  const out: ParsedRecord[] = [];
  for (const span of spans) {
    const rawWithEol = new TextDecoder('utf-8', { ignoreBOM: true }).decode(
      bytes.subarray(span.start, span.end),
    );
    // papaparse drops a leading BOM: doubled, it keeps the one that is data.
    const input = rawWithEol.startsWith('\uFEFF') ? `\uFEFF${rawWithEol}` : rawWithEol;
    const result = Papa.parse<string[]>(input, { delimiter, newline: '\n' });
    const values = result.data[0] ?? [''];
    const raw = trimEol(rawWithEol);
    const last = values.length - 1;
    if (rawWithEol.endsWith('\r\n') && !lastFieldQuoted(raw)) {
      values[last] = (values[last] ?? '').replace(/\r$/, '');
    }
    const problem = result.errors.find((e) => e.row === 0);
    const hint = (reason: string, column?: string) => {
      if (!problem && span.lines < 2) return { ...(column ? { column } : {}), reason };
      const ran =
        span.lines > 1 ? `a quoted field runs from line ${span.line} over ${span.lines} lines: ` : '';
      return { ...(column ? { column } : {}), reason: `${reason} (${ran}${HINT})`, quote: true as const };
    };
    if (problem) {
      out.push({ line: span.line, raw, error: hint(`malformed CSV: ${problem.message}`) });
      continue;
    }
    if (values.length !== columns.length) {
      const column = values.length < columns.length ? columns[values.length] : undefined;
      const reason =
        values.length < columns.length
          ? `row has ${values.length} fields, the header has ${columns.length}: "${column}" and after are missing`
          : `row has ${values.length} fields, the header has ${columns.length}`;
      out.push({ line: span.line, raw, error: hint(reason, column) });
      continue;
    }
    const fields: Record<string, unknown> = {};
    for (let i = 0; i < columns.length; i++) fields[columns[i] as string] = values[i];
    out.push({ line: span.line, raw, fields });
  }
  return out;
}

/** Texts made of the pieces that matter to a CSV reader, in every order. */
function randomText(random: () => number, delimiter: string): string {
  const pieces = [
    'a',
    'bc',
    '12',
    ' ',
    delimiter,
    delimiter,
    '"',
    '""',
    '"x"',
    '"y""z"',
    `"p${delimiter}q"`,
    '"multi\nline"',
    '\n',
    '\n',
    '\r\n',
    '\r',
    '\uFEFF',
    'é',
    '" ',
    `" ${delimiter}`,
    '"\r\n',
  ];
  let text = '';
  const n = Math.floor(random() * 40);
  for (let i = 0; i < n; i++) text += pieces[Math.floor(random() * pieces.length)];
  return text;
}

describe("CSV cursor: reads the record scanner's records as papaparse reads each", () => {
  it('on generated texts full of quotes, delimiters, CRs and blank lines', () => {
    let records = 0;
    for (let seed = 1; seed <= 3000; seed++) {
      const random = prng(seed);
      const delimiter = [',', ';', '\t'][seed % 3] as string;
      const columns = ['a', 'b', 'c'].slice(0, 1 + (seed % 3));
      const text = randomText(random, delimiter);
      const options = { format: 'csv' as const, delimiter, columns, firstLine: 2 };
      const expected = referenceCsv(text, delimiter, columns, 2);
      expect(parseText(text, options), JSON.stringify(text)).toEqual(expected);
      records += expected.length;
    }
    expect(records).toBeGreaterThan(5000);
  });

  it('on the shapes of the benchmark file and its neighbours', () => {
    const texts = [
      '1,Ada Lovelace,ada@example.com,12.50,2024-01-02T03:04:05.000Z,true,7,plain note\n',
      '2,Grace,g@x.io,1,2024-01-02,false,1,"note, with a comma"\r\n3,Alan,a@b.c,2,2024,true,2,\n',
      '4,x,y,1,2,true,3,"she said ""hi"", then left"\n5,x,y,1,2,true,3,"open\n',
      '6,x,y,1,2,true,3,"ends at eof"',
      '7,x,y,1,2,true,3,"quote then text"x\n8,x,y,1,2,true,3,ok',
      '9,x,y,1,2,true,3,"spaces after"  \n10,x,y,1,2,true,3,"crlf"\r\n',
      '11,"a\r\nb",y,1,2,true,3,z\r\n\r\n\r\n12,x,y,1,2,true,3,"""\n',
    ];
    const columns = ['id', 'name', 'email', 'amount', 'created_at', 'active', 'score', 'note'];
    for (const text of texts) {
      const options = { format: 'csv' as const, delimiter: ',', columns, firstLine: 5 };
      expect(parseText(text, options), JSON.stringify(text)).toEqual(referenceCsv(text, ',', columns, 5));
    }
  });

  it('with a delimiter of two characters, one of them where a line ends, and with none in the file', () => {
    const cases: [string, string, string[]][] = [
      ['a||b|\n|c||d\n||\ne|||f\r\n"g"||h\n', '||', ['x', 'y']],
      ['one\ntwo\r\n\nthree', ',', ['only']],
      ['1;2\n3\n4;5;6\n"7";8\n9;10', ';', ['p', 'q']],
    ];
    for (const [text, delimiter, columns] of cases) {
      const options = { format: 'csv' as const, delimiter, columns, firstLine: 2 };
      const expected = referenceCsv(text, delimiter, columns, 2);
      expect(parseText(text, options), JSON.stringify(text)).toEqual(expected);
      expect(expected.length).toBeGreaterThan(2);
    }
  });
});
