import { describe, expect, it } from 'vitest';
import { lastRecordEnd, RecordScanner, type RecordSpan } from '../../shared/formats/chunking.ts';
import { bytesOf, chunk, ndjson, plan, prng, spans, text, utf8 } from './helpers.ts';

/** Every way of feeding a file that matters: whole, byte by byte, and a few odd piece sizes. */
const SPLITS = [[], 1, 2, 3, 5, 7] as const;

async function planEveryWay(input: string | Uint8Array, options: Parameters<typeof plan>[1] = {}) {
  const plans = await Promise.all(SPLITS.map((s) => plan(input, options, typeof s === 'number' ? s : [])));
  const [first, ...rest] = plans;
  for (const p of rest) expect(p).toEqual(first);
  if (!first) throw new Error('no plan');
  return first;
}

type Span = Omit<RecordSpan, 'lines'>;

function scanWithLines(
  input: string | Uint8Array,
  format: 'csv' | 'ndjson' = 'csv',
  split = 0,
): RecordSpan[] {
  const bytes = typeof input === 'string' ? utf8(input) : input;
  const out: RecordSpan[] = [];
  const scanner = new RecordScanner({ format, delimiter: ',' }, (s) => out.push(s));
  if (split > 0) for (let i = 0; i < bytes.length; i += split) scanner.push(bytes.subarray(i, i + split));
  else scanner.push(bytes);
  scanner.end();
  return out;
}

function scan(input: string | Uint8Array, format: 'csv' | 'ndjson' = 'csv', split = 0): Span[] {
  return scanWithLines(input, format, split).map(({ lines: _lines, ...rest }) => rest);
}

const span = (start: number, end: number, line: number, unterminated = false): Span => ({
  start,
  end,
  line,
  unterminated,
});

describe('RecordScanner', () => {
  it('counts the physical lines each record covers, an unclosed quote to the end of input included', () => {
    expect(scanWithLines('a\n"b\nc"\nd\n').map((r) => r.lines)).toEqual([1, 2, 1]);
    expect(scanWithLines('a\n"b\nc\nd\n').map((r) => [r.line, r.lines, r.unterminated])).toEqual([
      [1, 1, false],
      [2, 3, true],
    ]);
    expect(scanWithLines('a\n"b').map((r) => [r.line, r.lines, r.unterminated])).toEqual([
      [1, 1, false],
      [2, 1, true],
    ]);
  });

  it('ends a record at each LF and reports its start line', () => {
    expect(scan('a,b\n1,2\n')).toEqual([span(0, 4, 1), span(4, 8, 2)]);
  });

  it('keeps a newline inside quotes in the record and counts the line', () => {
    expect(scan('1,"x\ny"\n2,z\n')).toEqual([span(0, 8, 1), span(8, 12, 3)]);
  });

  it('does not open a quote in the middle of an unquoted field', () => {
    // 5'10" is an unquoted value: its quote must not swallow the next line.
    expect(scan('1,5\'10"\n2,z\n')).toEqual([span(0, 8, 1), span(8, 12, 2)]);
  });

  it('reads "" inside a quoted field as an escaped quote, not the end of the field', () => {
    expect(scan('1,"a""\nb"\n2,z\n')).toEqual([span(0, 10, 1), span(10, 14, 3)]);
  });

  it('reopens a quote only right after a closing quote or at a field start', () => {
    // `"a"x"` closes after a, then x, then a quote mid-field: the LF ends the record.
    expect(scan('"a"x",b\n2,z\n')).toEqual([span(0, 8, 1), span(8, 12, 2)]);
  });

  it('flushes a last record without newline at end()', () => {
    expect(scan('1,2\n3,4')).toEqual([span(0, 4, 1), span(4, 7, 2)]);
  });

  it('marks a record still inside a quote at end of input as unterminated', () => {
    expect(scan('1,2\n3,"x\n4,5\n')).toEqual([span(0, 4, 1), span(4, 13, 2, true)]);
  });

  it('reports no record for blank lines (LF, CRLF, CR only) but counts their lines', () => {
    expect(scan('\n\r\n\r\r\n1,2\n\n')).toEqual([span(6, 10, 4)]);
  });

  it('reports nothing for empty input', () => {
    expect(scan('')).toEqual([]);
  });

  it('ignores quotes in NDJSON', () => {
    expect(scan('"\n{"a":1}\n', 'ndjson')).toEqual([span(0, 2, 1), span(2, 10, 2)]);
  });

  it('gives the same spans however the input is split', () => {
    const input = '\r\n1,"a\r\n""b"""\r\n2,c\n"x,y",\'z"\n3,"open\n';
    const whole = scan(input);
    expect(whole).toEqual([span(2, 16, 2), span(16, 20, 4), span(20, 30, 5), span(30, 38, 6, true)]);
    for (const n of [1, 2, 3, 4]) expect(scan(input, 'csv', n)).toEqual(whole);
  });

  it('starts at the given offset and line', () => {
    const out: RecordSpan[] = [];
    const scanner = new RecordScanner({ format: 'csv', delimiter: ',', offset: 3, line: 10 }, (s) =>
      out.push(s),
    );
    scanner.push(utf8('a\nb\n'));
    expect(scanner.position).toBe(7);
    scanner.end();
    expect(out).toEqual([
      { ...span(3, 5, 10), lines: 1 },
      { ...span(5, 7, 11), lines: 1 },
    ]);
  });

  it('uses the configured delimiter for field starts', () => {
    const out: RecordSpan[] = [];
    const scanner = new RecordScanner({ format: 'csv', delimiter: ';' }, (s) => out.push(s));
    // After `;` a quote opens a field; after `,` (not the delimiter here) it does not.
    scanner.push(utf8('a;"x\ny"\nb,"c\nd\n'));
    scanner.end();
    expect(out).toEqual([
      { ...span(0, 8, 1), lines: 2 },
      { ...span(8, 13, 3), lines: 1 },
      { ...span(13, 15, 4), lines: 1 },
    ]);
  });
});

/**
 * Where the scanner's last record ending in `bytes` ends, blank lines after it included: the last line
 * break outside quotes. A line break is outside quotes when a record fed right after it starts there.
 */
function scannerLastEnd(bytes: Uint8Array, format: 'csv' | 'ndjson', delimiter: string): number {
  let last = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0x0a) continue;
    const starts: number[] = [];
    const scanner = new RecordScanner({ format, delimiter }, (s) => starts.push(s.start));
    scanner.push(bytes.subarray(0, i + 1));
    scanner.push(utf8('x\n'));
    if (starts.includes(i + 1)) last = i + 1;
  }
  return last;
}

describe('lastRecordEnd', () => {
  it('ends where the scanner ends its last record, quotes, doubled quotes, CRs and literal quotes included', () => {
    const random = prng(13);
    const alphabet = ['a', ',', ';', '"', '"', '\n', '\r', ' '];
    for (let n = 0; n < 3000; n++) {
      const length = Math.floor(random() * 24);
      let s = '';
      for (let i = 0; i < length; i++) s += alphabet[Math.floor(random() * alphabet.length)];
      const bytes = utf8(s);
      for (const [format, delimiter] of [
        ['csv', ','],
        ['csv', ';'],
        ['ndjson', ','],
      ] as const) {
        expect([s, format, delimiter, lastRecordEnd(bytes, { format, delimiter })]).toEqual([
          s,
          format,
          delimiter,
          scannerLastEnd(bytes, format, delimiter),
        ]);
      }
    }
  });

  it('reads a field opened by a quote to its closing quote; a quote mid-field is literal', () => {
    expect(lastRecordEnd(utf8('a,"b\nc"\nd,"e\n'), { format: 'csv', delimiter: ',' })).toBe(8);
    expect(lastRecordEnd(utf8('a,5\'10"\nb\n'), { format: 'csv', delimiter: ',' })).toBe(10);
    expect(lastRecordEnd(utf8('"open'), { format: 'csv', delimiter: ',' })).toBe(0);
  });
});

describe('planChunks', () => {
  it('cuts at record ends: quoted LF newlines stay inside their record', async () => {
    const input = 'id,note\n1,"a\nb"\n2,c\n';
    const p = await planEveryWay(input, { chunkBytes: 1 });
    expect(p).toMatchObject({ bom: false, headerLine: 1, headerOversized: false, records: 2, bytes: 20 });
    expect(text(p.header ?? new Uint8Array())).toBe('id,note\n');
    expect(spans(p)).toEqual([chunk(8, 16, 2, 1), chunk(16, 20, 4, 1)]);
    expect(p.chunks.map((c) => c.index)).toEqual([0, 1]);
  });

  it('cuts CRLF files at CRLF ends, with CRLF inside quotes kept', async () => {
    const input = 'id,note\r\n1,"a\r\nb"\r\n2,c\r\n';
    const p = await planEveryWay(input, { chunkBytes: 1 });
    expect(text(p.header ?? new Uint8Array())).toBe('id,note\r\n');
    expect(spans(p)).toEqual([chunk(9, 19, 2, 1), chunk(19, 24, 4, 1)]);
    expect(p.bytes).toBe(24);
  });

  it('handles mixed line endings and a last line without newline', async () => {
    const input = 'a,b\r\n1,2\n3,4\r\n5,6';
    const p = await planEveryWay(input, { chunkBytes: 1 });
    expect(spans(p)).toEqual([chunk(5, 9, 2, 1), chunk(9, 14, 3, 1), chunk(14, 17, 4, 1)]);
    expect(p.records).toBe(3);
    expect(p.bytes).toBe(17);
  });

  it('skips a UTF-8 BOM: header bytes exclude it, offsets count it', async () => {
    const input = bytesOf([0xef, 0xbb, 0xbf], 'a,b\n1,2\n3,4\n');
    const p = await planEveryWay(input, { chunkBytes: 1 });
    expect(p.bom).toBe(true);
    expect([...(p.header ?? [])]).toEqual([...utf8('a,b\n')]);
    expect(spans(p)).toEqual([chunk(7, 11, 2, 1), chunk(11, 15, 3, 1)]);
    expect(p.bytes).toBe(15);
    expect(text(input.subarray(7, 11))).toBe('1,2\n');
  });

  it('treats a file that starts with only part of a BOM as having none', async () => {
    const p = await planEveryWay(bytesOf([0xef, 0xbb], 'a\n1\n'));
    expect(p.bom).toBe(false);
    expect([...(p.header ?? [])]).toEqual([0xef, 0xbb, ...utf8('a\n')]);
    expect(spans(p)).toEqual([chunk(4, 6, 2, 1)]);
  });

  it('plans a BOM-only file and an empty file as no records', async () => {
    const bomOnly = await planEveryWay(bytesOf([0xef, 0xbb, 0xbf]));
    expect(bomOnly).toEqual({
      bom: true,
      headerLine: 1,
      headerOversized: false,
      leading: new Uint8Array([0xef, 0xbb, 0xbf]),
      chunks: [],
      records: 0,
      bytes: 3,
      lines: 1,
    });
    const empty = await planEveryWay('');
    expect(empty).toEqual({
      bom: false,
      headerLine: 1,
      headerOversized: false,
      leading: new Uint8Array(0),
      chunks: [],
      records: 0,
      bytes: 0,
      lines: 1,
    });
  });

  it('does not count blank lines as records; blank lines between chunks belong to neither', async () => {
    const input = 'a,b\n\n1,2\n\r\n\n3,4\n\n';
    const one = await planEveryWay(input);
    expect(spans(one)).toEqual([chunk(5, 16, 3, 2)]);
    expect(one.records).toBe(2);
    expect(one.bytes).toBe(17);
    const many = await planEveryWay(input, { chunkBytes: 1 });
    expect(spans(many)).toEqual([chunk(5, 9, 3, 1), chunk(12, 16, 6, 1)]);
  });

  it('finds the header after leading blank lines and reports its line', async () => {
    const p = await planEveryWay('\r\n\na,b\r\n1,2\n');
    expect(p.headerLine).toBe(3);
    expect(text(p.header ?? new Uint8Array())).toBe('a,b\r\n');
    expect(spans(p)).toEqual([chunk(8, 12, 4, 1)]);
  });

  it('keeps the whole header after blank lines even when it is close to maxRecordBytes', async () => {
    // The header is 14 bytes with its LF, the limit 14: it fits, wherever it starts.
    const input = '\n\n\nid,name,email\n1,a,b\n';
    const p = await planEveryWay(input, { maxRecordBytes: 14 });
    expect(p.headerOversized).toBe(false);
    expect(p.headerLine).toBe(4);
    expect(text(p.header ?? new Uint8Array())).toBe('id,name,email\n');
    expect(spans(p)).toEqual([chunk(17, 23, 5, 1)]);
  });

  it('fills a chunk until it reaches chunkBytes, then starts the next', async () => {
    const input = `a,b\n${'1,2\n'.repeat(5)}`;
    const p = await planEveryWay(input, { chunkBytes: 8 });
    expect(spans(p)).toEqual([chunk(4, 12, 2, 2), chunk(12, 20, 4, 2), chunk(20, 24, 6, 1)]);
    expect(p.chunks.map((c) => c.index)).toEqual([0, 1, 2]);
    // One byte short of the second record: a chunk takes records until it has at least chunkBytes.
    const p9 = await planEveryWay(input, { chunkBytes: 9 });
    expect(spans(p9)).toEqual([chunk(4, 16, 2, 3), chunk(16, 24, 5, 2)]);
  });

  it('keeps "" escaped quotes (and a newline after them) inside one record', async () => {
    const input = 'a,b\n1,"say ""hi"", ok"\n2,"x""\ny"\n3,z\n';
    const p = await planEveryWay(input, { chunkBytes: 1 });
    expect(spans(p)).toEqual([chunk(4, 23, 2, 1), chunk(23, 33, 3, 1), chunk(33, 37, 5, 1)]);
    expect(text(utf8(input).subarray(23, 33))).toBe('2,"x""\ny"\n');
  });

  it('does not open a quote for a quote in the middle of an unquoted field', async () => {
    const input = 'a,b\n1,5\'10"\n2,x\n';
    const p = await planEveryWay(input, { chunkBytes: 1 });
    expect(spans(p)).toEqual([chunk(4, 12, 2, 1), chunk(12, 16, 3, 1)]);
    expect(p.records).toBe(2);
  });

  it('isolates a record over maxRecordBytes in its own chunk, marked oversized', async () => {
    const long = `3,${'x'.repeat(20)}\n`; // 23 bytes
    const input = `a,b\n1,2\n${long}4,5\n6,7\n`;
    const p = await planEveryWay(input, { maxRecordBytes: 10 });
    expect(spans(p)).toEqual([
      chunk(4, 8, 2, 1),
      chunk(8, 31, 3, 1, { oversized: true }),
      chunk(31, 39, 4, 2),
    ]);
    expect(p.records).toBe(4);
  });

  it('counts the line terminator against maxRecordBytes: exactly the limit is fine, one byte more is not', async () => {
    const input = 'a\n12345678\r\n123456789\r\n';
    // Records are 10 and 11 bytes with their CRLF.
    const p = await planEveryWay(input, { maxRecordBytes: 10 });
    expect(spans(p)).toEqual([chunk(2, 12, 2, 1), chunk(12, 23, 3, 1, { oversized: true })]);
  });

  it('marks the header oversized, and keeps no header bytes, when it is over maxRecordBytes', async () => {
    const p = await planEveryWay('abc,def\n1,2\n', { maxRecordBytes: 7 });
    expect(p.headerOversized).toBe(true);
    expect(p.header).toBeUndefined();
    expect(spans(p)).toEqual([chunk(8, 12, 2, 1)]);
  });

  it('isolates a quote left open at end of file as one unterminated record', async () => {
    const input = 'a,b\n1,2\n3,"open\n4,5\n';
    const p = await planEveryWay(input);
    expect(spans(p)).toEqual([chunk(4, 8, 2, 1), chunk(8, 20, 3, 1, { unterminated: true, lines: 2 })]);
    expect(p.records).toBe(2);
    expect(p.bytes).toBe(20);
  });

  it('marks a record both oversized and unterminated when the open quote runs past the limit', async () => {
    const input = `a\n1\n"${'y'.repeat(30)}\n`;
    const p = await planEveryWay(input, { maxRecordBytes: 16 });
    expect(spans(p)).toEqual([
      chunk(2, 4, 2, 1),
      chunk(4, 36, 3, 1, { oversized: true, unterminated: true, lines: 1 }),
    ]);
  });

  it('plans NDJSON with no header and quotes ignored', async () => {
    const input = '{"n":1}\n"\n{"n":"x"}\n';
    const p = await planEveryWay(input, { ...ndjson, chunkBytes: 1 });
    expect(p.header).toBeUndefined();
    expect(p.headerLine).toBe(1);
    expect(spans(p)).toEqual([chunk(0, 8, 1, 1), chunk(8, 10, 2, 1), chunk(10, 20, 3, 1)]);
    expect(p.records).toBe(3);
  });

  it('plans NDJSON with a BOM and blank lines', async () => {
    const input = bytesOf([0xef, 0xbb, 0xbf], '\n{"n":1}\r\n\r\n{"n":2}');
    const p = await planEveryWay(input, { ...ndjson });
    expect(p.bom).toBe(true);
    expect(spans(p)).toEqual([chunk(4, 22, 2, 2)]);
    expect(p.bytes).toBe(22);
  });

  it('splits on a custom delimiter', async () => {
    const input = 'a;b\n1;"x\n;y"\n2;z\n';
    const p = await planEveryWay(input, { delimiter: ';', chunkBytes: 1 });
    expect(spans(p)).toEqual([chunk(4, 13, 2, 1), chunk(13, 17, 4, 1)]);
  });
});

describe('planChunks onChunks: the plan so far, while the file is read', () => {
  // 20 records of 10 bytes after a 6-byte header, cut every 30 bytes, fed 25 bytes at a time.
  const input = `id,val\n${Array.from({ length: 20 }, (_, i) => `${String(i).padStart(3, '0')},abcde\n`).join('')}`;

  it('reports each piece that cut chunks, numbered, with the header; the whole plan is the same as without it', async () => {
    const seen: { chunks: number[]; header: string; bytes: number }[] = [];
    const whole = await plan(
      input,
      {
        chunkBytes: 30,
        onChunks: async (p) => {
          seen.push({
            chunks: p.chunks.map((c) => c.index),
            header: new TextDecoder().decode(p.header),
            bytes: p.bytes,
          });
        },
      },
      25,
    );
    expect(seen).toEqual([
      { chunks: [0], header: 'id,val\n', bytes: 50 },
      { chunks: [0, 1], header: 'id,val\n', bytes: 75 },
      { chunks: [0, 1, 2], header: 'id,val\n', bytes: 100 },
      // The piece of bytes 100–125 cuts none.
      { chunks: [0, 1, 2, 3], header: 'id,val\n', bytes: 150 },
      { chunks: [0, 1, 2, 3, 4], header: 'id,val\n', bytes: 175 },
      { chunks: [0, 1, 2, 3, 4, 5], header: 'id,val\n', bytes: 200 },
    ]);
    expect(whole).toEqual(await plan(input, { chunkBytes: 30 }, 25));
    expect(whole.chunks.map((c) => [c.index, c.start, c.end])).toEqual([
      [0, 7, 37],
      [1, 37, 67],
      [2, 67, 97],
      [3, 97, 127],
      [4, 127, 157],
      [5, 157, 187],
      [6, 187, 207],
    ]);
  });
});
