import { describe, expect, it } from 'vitest';
import { STRAY_QUOTE_HINT } from '../../shared/formats/chunking.ts';
import {
  chunkCursor,
  MAX_NESTING_DEPTH,
  nestingDepth,
  type ParseOptions,
  parseChunk,
  parseHeader,
  parseText,
  type RecordCursor,
  SKIMMED,
  textCursor,
} from '../../shared/formats/parsing.ts';
import { bytesOf, utf8 } from './helpers.ts';

/** The record papaparse's quote error makes of a line, with the hint on stray quotes. */
const strayQuote = (line: number, raw: string, what = 'Trailing quote on quoted field is malformed') => ({
  line,
  raw,
  error: { reason: `malformed CSV: ${what} (${STRAY_QUOTE_HINT})`, quote: true },
});

const csv = (columns: string[], firstLine = 2): ParseOptions => ({
  format: 'csv',
  delimiter: ',',
  columns,
  firstLine,
});
const ndjson = (firstLine = 1): ParseOptions => ({ format: 'ndjson', delimiter: ',', firstLine });
const AB = csv(['a', 'b']);

describe('parseText (CSV)', () => {
  it('reads fields by header name and keeps the raw text without its line terminator', () => {
    expect(parseText('1,x\n2,y', AB)).toEqual([
      { line: 2, raw: '1,x', fields: { a: '1', b: 'x' } },
      { line: 3, raw: '2,y', fields: { a: '2', b: 'y' } },
    ]);
  });

  it('numbers records after a multi-line record by physical line', () => {
    const input = '1,"x\ny\nz"\n2,ok\n3,"p\r\nq"\r\n4,end\n';
    expect(parseText(input, AB)).toEqual([
      { line: 2, raw: '1,"x\ny\nz"', fields: { a: '1', b: 'x\ny\nz' } },
      { line: 5, raw: '2,ok', fields: { a: '2', b: 'ok' } },
      { line: 6, raw: '3,"p\r\nq"', fields: { a: '3', b: 'p\r\nq' } },
      { line: 8, raw: '4,end', fields: { a: '4', b: 'end' } },
    ]);
  });

  it('starts numbering at firstLine', () => {
    expect(parseText('1,x\n', csv(['a', 'b'], 41))).toEqual([
      { line: 41, raw: '1,x', fields: { a: '1', b: 'x' } },
    ]);
  });

  it('strips the CR of a CRLF ending from an unquoted last field', () => {
    expect(parseText('1,x\r\n2,\r\n', AB)).toEqual([
      { line: 2, raw: '1,x', fields: { a: '1', b: 'x' } },
      { line: 3, raw: '2,', fields: { a: '2', b: '' } },
    ]);
  });

  it('strips the CR after an unquoted last field that ends with a quote (5\'10")', () => {
    expect(parseText("bob,5'10\"\r\nann,6'\r\n", csv(['name', 'height']))).toEqual([
      { line: 2, raw: 'bob,5\'10"', fields: { name: 'bob', height: '5\'10"' } },
      { line: 3, raw: "ann,6'", fields: { name: 'ann', height: "6'" } },
    ]);
  });

  it('reads a quoted last field in a CRLF file without the CR, and keeps a CR inside the quotes', () => {
    expect(parseText('1,"x"\r\n2,"y\r"\r\n3,""\r\n4,"a,""b"""\r\n', AB)).toEqual([
      { line: 2, raw: '1,"x"', fields: { a: '1', b: 'x' } },
      { line: 3, raw: '2,"y\r"', fields: { a: '2', b: 'y\r' } },
      { line: 4, raw: '3,""', fields: { a: '3', b: '' } },
      { line: 5, raw: '4,"a,""b"""', fields: { a: '4', b: 'a,"b"' } },
    ]);
  });

  it('keeps a quote in the middle of an unquoted field as a literal character', () => {
    expect(parseText('1,ab"c\n', AB)).toEqual([{ line: 2, raw: '1,ab"c', fields: { a: '1', b: 'ab"c' } }]);
  });

  it('skips blank lines (LF, CRLF) but counts them in line numbers', () => {
    expect(parseText('\n1,x\n\r\n\n2,y\r\n\r\n', AB)).toEqual([
      { line: 3, raw: '1,x', fields: { a: '1', b: 'x' } },
      { line: 6, raw: '2,y', fields: { a: '2', b: 'y' } },
    ]);
  });

  it('reads a lone "" as a record with one empty field, not a blank line', () => {
    expect(parseText('""\n', AB)).toEqual([
      {
        line: 2,
        raw: '""',
        error: { column: 'b', reason: 'row has 1 fields, the header has 2: "b" and after are missing' },
      },
    ]);
    expect(parseText('x\n""\r\ny\n', csv(['only']))).toEqual([
      { line: 2, raw: 'x', fields: { only: 'x' } },
      { line: 3, raw: '""', fields: { only: '' } },
      { line: 4, raw: 'y', fields: { only: 'y' } },
    ]);
  });

  it('rejects rows with too few fields, naming the first missing column', () => {
    expect(parseText('1\n1,2\n', csv(['a', 'b', 'c']))).toEqual([
      {
        line: 2,
        raw: '1',
        error: { column: 'b', reason: 'row has 1 fields, the header has 3: "b" and after are missing' },
      },
      {
        line: 3,
        raw: '1,2',
        error: { column: 'c', reason: 'row has 2 fields, the header has 3: "c" and after are missing' },
      },
    ]);
  });

  it('rejects rows with too many fields', () => {
    expect(parseText('1,2,3\r\n', AB)).toEqual([
      { line: 2, raw: '1,2,3', error: { column: undefined, reason: 'row has 3 fields, the header has 2' } },
    ]);
  });

  it('turns malformed quotes into an error record', () => {
    expect(parseText('1,"a"x\n', AB)).toEqual([strayQuote(2, '1,"a"x')]);
    expect(parseText('1,"open\n', AB)).toEqual([strayQuote(2, '1,"open', 'Quoted field unterminated')]);
  });

  it('ends a record with a malformed quote where the record scanner does: the lines after it are records', () => {
    // papaparse alone reads on from `"Weird"` to the next quote before a tab or line break: here, the end.
    const tsv = { format: 'csv' as const, delimiter: '\t', columns: ['id', 'title'], firstLine: 2 };
    expect(parseText('1\tTitle 1\n2\t"Weird" Al\n3\tTitle 3\n4\t"Quoted" start\n5\tTitle 5\n', tsv)).toEqual([
      { line: 2, raw: '1\tTitle 1', fields: { id: '1', title: 'Title 1' } },
      strayQuote(3, '2\t"Weird" Al'),
      { line: 4, raw: '3\tTitle 3', fields: { id: '3', title: 'Title 3' } },
      strayQuote(5, '4\t"Quoted" start'),
      { line: 6, raw: '5\tTitle 5', fields: { id: '5', title: 'Title 5' } },
    ]);
  });

  it('says where a quoted field ran over several lines and failed', () => {
    expect(parseText('1,"a\nb\nc",3\n2,x\n', AB)).toEqual([
      {
        line: 2,
        raw: '1,"a\nb\nc",3',
        error: {
          column: undefined,
          reason: `row has 3 fields, the header has 2 (a quoted field runs from line 2 over 3 lines: ${STRAY_QUOTE_HINT})`,
          quote: true,
        },
      },
      { line: 5, raw: '2,x', fields: { a: '2', b: 'x' } },
    ]);
  });

  it('reads every quote as text with `quote: false`', () => {
    const tsv = {
      format: 'csv' as const,
      delimiter: '\t',
      quote: false as const,
      columns: ['id', 'title'],
      firstLine: 2,
    };
    expect(parseText('1\t"Weird" Al\n2\t"open\n3\t"a\tb"\n', tsv)).toEqual([
      { line: 2, raw: '1\t"Weird" Al', fields: { id: '1', title: '"Weird" Al' } },
      { line: 3, raw: '2\t"open', fields: { id: '2', title: '"open' } },
      {
        line: 4,
        raw: '3\t"a\tb"',
        error: { column: undefined, reason: 'row has 3 fields, the header has 2' },
      },
    ]);
    expect(parseHeader(new TextEncoder().encode('"id"\t"ti\ttle"\n'), '\t', false)).toEqual([
      '"id"',
      '"ti',
      'tle"',
    ]);
  });

  it('keeps a U+FEFF at the start of the text as data, with raw and lines aligned', () => {
    expect(parseText('\uFEFFx,1\r\n"y",2\r\n', AB)).toEqual([
      { line: 2, raw: '\uFEFFx,1', fields: { a: '\uFEFFx', b: '1' } },
      { line: 3, raw: '"y",2', fields: { a: 'y', b: '2' } },
    ]);
  });

  it('uses the configured delimiter', () => {
    expect(parseText('1;"x;y"\n', { ...AB, delimiter: ';' })).toEqual([
      { line: 2, raw: '1;"x;y"', fields: { a: '1', b: 'x;y' } },
    ]);
    expect(parseText('1\t2,3\n', { ...AB, delimiter: '\t' })).toEqual([
      { line: 2, raw: '1\t2,3', fields: { a: '1', b: '2,3' } },
    ]);
  });

  it('cuts a line without quotes at every delimiter, empty fields and multi-character delimiters included', () => {
    const three = csv(['a', 'b', 'c']);
    expect(parseText(',,\r\nx||y||\n1||||2|\n', { ...three, delimiter: ',' }).map((r) => r.fields)).toEqual([
      { a: '', b: '', c: '' },
      undefined,
      undefined,
    ]);
    expect(
      parseText('x||y||\n1||||2|\r\n|||||\n', { ...three, delimiter: '||' }).map((r) => r.fields),
    ).toEqual([
      { a: 'x', b: 'y', c: '' },
      { a: '1', b: '', c: '2|' },
      { a: '', b: '', c: '|' },
    ]);
  });

  it('skims: a long value of a skimmed field on a line without quotes is SKIMMED, short ones and quoted lines are read', () => {
    const three = csv(['a', 'b', 'c']);
    const skim = { fields: [false, true], upTo: 4 };
    const cursor = textCursor('longer,longer,longer\nx,NULL,y\n"q",longer,z\n', { ...three, skim });
    const values: (string[] | undefined)[] = [];
    while (cursor.next()) values.push(cursor.values);
    expect(values).toEqual([
      ['longer', SKIMMED, 'longer'],
      ['x', 'NULL', 'y'],
      ['q', 'longer', 'z'],
    ]);
    expect(cursor.nextLine).toBe(5);
  });

  it('returns nothing for empty text', () => {
    expect(parseText('', AB)).toEqual([]);
  });
});

describe('parseText (NDJSON)', () => {
  it('reads one object per line, skipping blank lines but counting them', () => {
    expect(parseText('{"a":1}\r\n\n   \n{"b":"x,\\"y\\""}', ndjson(1))).toEqual([
      { line: 1, raw: '{"a":1}', fields: { a: 1 } },
      { line: 4, raw: '{"b":"x,\\"y\\""}', fields: { b: 'x,"y"' } },
    ]);
  });

  it('rejects invalid JSON with the parser message', () => {
    expect(parseText('{"a":1}\n{bad\n{"a":', ndjson(10))).toEqual([
      { line: 10, raw: '{"a":1}', fields: { a: 1 } },
      {
        line: 11,
        raw: '{bad',
        error: {
          reason: `invalid JSON: Expected property name or '}' in JSON at position 1 (line 1 column 2)`,
        },
      },
      { line: 12, raw: '{"a":', error: { reason: 'invalid JSON: Unexpected end of JSON input' } },
    ]);
  });

  it('rejects lines that are JSON but not an object', () => {
    const reason = 'line is not a JSON object';
    expect(parseText('[1]\nnull\n"s"\n42\ntrue\n', ndjson())).toEqual([
      { line: 1, raw: '[1]', error: { reason } },
      { line: 2, raw: 'null', error: { reason } },
      { line: 3, raw: '"s"', error: { reason } },
      { line: 4, raw: '42', error: { reason } },
      { line: 5, raw: 'true', error: { reason } },
    ]);
  });

  it('keeps JSON nulls as null fields', () => {
    expect(parseText('{"a":null}\n', ndjson())).toEqual([
      { line: 1, raw: '{"a":null}', fields: { a: null } },
    ]);
  });

  it('rejects a record nested deeper than the limit as that record, at any depth, and reads its neighbours', () => {
    const deep = (n: number) => `{"a":${'['.repeat(n - 1)}${']'.repeat(n - 1)}}`;
    const lines = ['{"a":1}', deep(MAX_NESTING_DEPTH), deep(MAX_NESTING_DEPTH + 1), deep(100_000), '{"b":2}'];
    const records = parseText(lines.join('\n'), ndjson());
    expect(records.map((r) => [r.line, r.error?.reason ?? 'ok'])).toEqual([
      [1, 'ok'],
      [2, 'ok'],
      [
        3,
        `record is nested ${MAX_NESTING_DEPTH + 1} levels deep, over the limit of ${MAX_NESTING_DEPTH} levels`,
      ],
      [4, `record is nested 100000 levels deep, over the limit of ${MAX_NESTING_DEPTH} levels`],
      [5, 'ok'],
    ]);
  });
});

describe('nestingDepth', () => {
  it('counts objects and arrays, the value itself as level 1, without recursion', () => {
    expect(nestingDepth(1)).toBe(0);
    expect(nestingDepth({})).toBe(1);
    expect(nestingDepth({ a: [1, { b: [] }], c: 'x' })).toBe(4);
    expect(nestingDepth(JSON.parse(`${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`))).toBe(1_000_000);
  });

  it('stops at the first level past stopAbove', () => {
    expect(nestingDepth([[[[[]]]]], 2)).toBe(3);
  });
});

describe('parseChunk', () => {
  it('decodes valid UTF-8 and parses like parseText', () => {
    const input = 'ü,"😀\n€"\r\n2,ß\n';
    expect(parseChunk(utf8(input), AB)).toEqual(parseText(input, AB));
    expect(parseChunk(utf8(input), AB)).toEqual([
      { line: 2, raw: 'ü,"😀\n€"', fields: { a: 'ü', b: '😀\n€' } },
      { line: 4, raw: '2,ß', fields: { a: '2', b: 'ß' } },
    ]);
  });

  it('keeps a U+FEFF that starts a chunk (a BOM mid-file is data)', () => {
    expect(parseChunk(bytesOf([0xef, 0xbb, 0xbf], 'x,1\n'), AB)).toEqual([
      { line: 2, raw: '\uFEFFx,1', fields: { a: '\uFEFFx', b: '1' } },
    ]);
  });

  it('rejects only the line with invalid UTF-8, with its line number, and parses its neighbours', () => {
    const bytes = bytesOf('1,ok\n2,b', [0xff], 'd\n3,"x\ny"\n', '4,', [0xc3], '\n\n5,last');
    expect(parseChunk(bytes, csv(['a', 'b'], 7))).toEqual([
      { line: 7, raw: '1,ok', fields: { a: '1', b: 'ok' } },
      {
        line: 8,
        raw: '2,b\uFFFDd',
        error: {
          reason: 'bytes are not valid UTF-8 (first bad byte at offset 3 of the line)',
          unreadable: true,
        },
      },
      { line: 9, raw: '3,"x\ny"', fields: { a: '3', b: 'x\ny' } },
      {
        line: 11,
        raw: '4,\uFFFD',
        error: {
          reason: 'bytes are not valid UTF-8 (first bad byte at offset 2 of the line)',
          unreadable: true,
        },
      },
      { line: 13, raw: '5,last', fields: { a: '5', b: 'last' } },
    ]);
  });

  it('rejects the whole multi-line record that carries invalid UTF-8, at the line it starts on', () => {
    const bytes = bytesOf('1,"a\nb', [0xfe], '"\r\n2,c\r\n');
    expect(parseChunk(bytes, csv(['a', 'b'], 2))).toEqual([
      {
        line: 2,
        raw: '1,"a\nb\uFFFD"',
        error: {
          reason: 'bytes are not valid UTF-8 (first bad byte at offset 6 of the line)',
          unreadable: true,
        },
      },
      { line: 4, raw: '2,c', fields: { a: '2', b: 'c' } },
    ]);
  });

  it('rejects an NDJSON line with invalid UTF-8 and parses the others', () => {
    const bytes = bytesOf('{"a":1}\n{"a":"', [0x80], '"}\r\n\n{"a":3}\n');
    expect(parseChunk(bytes, ndjson(5))).toEqual([
      { line: 5, raw: '{"a":1}', fields: { a: 1 } },
      {
        line: 6,
        raw: '{"a":"\uFFFD"}',
        error: {
          reason: 'bytes are not valid UTF-8 (first bad byte at offset 6 of the line)',
          unreadable: true,
        },
      },
      { line: 8, raw: '{"a":3}', fields: { a: 3 } },
    ]);
  });
});

describe('chunkCursor', () => {
  /** Each record as [line, values, fields, error reason, raw]. */
  const pulled = (cursor: RecordCursor) => {
    const out: unknown[][] = [];
    while (cursor.next())
      out.push([cursor.line, cursor.values, cursor.fields, cursor.error?.reason, cursor.raw()]);
    return out;
  };
  const NOT_UTF8 = 'bytes are not valid UTF-8 (first bad byte at offset 3 of the line)';

  it('gives a CSV chunk with invalid UTF-8 its records as a valid chunk has them: values in header order', () => {
    const bytes = bytesOf('1,"x\ny"\n\n2,b', [0xff], '\n\uFEFFa,b\n3,c,d\n4,last');
    expect(pulled(chunkCursor(bytes, csv(['a', 'b'], 7)))).toEqual([
      [7, ['1', 'x\ny'], undefined, undefined, '1,"x\ny"'],
      [10, undefined, undefined, NOT_UTF8, '2,b\uFFFD'],
      [11, ['\uFEFFa', 'b'], undefined, undefined, '\uFEFFa,b'],
      [12, undefined, undefined, 'row has 3 fields, the header has 2', '3,c,d'],
      [13, ['4', 'last'], undefined, undefined, '4,last'],
    ]);
  });

  it('gives an NDJSON chunk with invalid UTF-8 its records as fields', () => {
    const bytes = bytesOf('{"a":1}\n{"a":', [0x80], '}\n{"a":"\\ud800"}\n');
    expect(pulled(chunkCursor(bytes, ndjson(1)))).toEqual([
      [1, undefined, { a: 1 }, undefined, '{"a":1}'],
      [
        2,
        undefined,
        undefined,
        'bytes are not valid UTF-8 (first bad byte at offset 5 of the line)',
        '{"a":\uFFFD}',
      ],
      [3, undefined, { a: '\ud800' }, undefined, '{"a":"\\ud800"}'],
    ]);
  });
});

describe('parseHeader', () => {
  it('reads field names, trimmed, quotes removed, without the line terminator', () => {
    expect(parseHeader(utf8(' id ,"full name",email \r\n'), ',')).toEqual(['id', 'full name', 'email']);
    // A quote after a space does not open a quoted name: like the scanner, only at the field's start.
    expect(parseHeader(utf8('a, "b"\n'), ',')).toEqual(['a', '"b"']);
    expect(parseHeader(utf8('a;b;"c;d"\n'), ';')).toEqual(['a', 'b', 'c;d']);
  });

  it('reads a header without line terminator, and an empty one as no names', () => {
    expect(parseHeader(utf8('x,y'), ',')).toEqual(['x', 'y']);
    expect(parseHeader(utf8('\n'), ',')).toEqual([]);
  });
});
