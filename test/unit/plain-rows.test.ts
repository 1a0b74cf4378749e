import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { resolveDataset } from '../../shared/config/dataset.ts';
import { chunkRows, type RowExtra } from '../../shared/load/chunk-rows.ts';
import { copyField } from '../../shared/load/write/copy.ts';
import { copyLines, type RowPass } from '../../shared/load/write/writing.ts';
import { utf8 } from './helpers.ts';

// A plain row's strings go into COPY without a look for characters to escape: the COPY text must be
// what copyField makes of every value, whichever rows are plain, and only rows that cannot hold such a
// character may be.

const dataset = resolveDataset({
  name: 'plain',
  format: 'csv',
  table: 'plain',
  schema: z.object({
    id: z.coerce.number(),
    name: z.string(),
    note: z.string().optional(),
    // A schema that makes its own string: never the record's text.
    tag: z.string().transform((s) => s.replace('x', '\t')),
  }),
});

/** The COPY text of a chunk, each row's plain flag, and the text copyField makes of the same rows. */
function copyOf(text: string, extras: RowExtra[] = []) {
  const columns = ['id', 'name', 'note', 'tag'];
  const options = { format: 'csv' as const, delimiter: ',', columns, firstLine: 2 };
  const rows = chunkRows(dataset, utf8(text), options, extras);
  const fields = [...dataset.fields, ...extras.map((_, i) => `extra${i}`)];
  const copied = [...copyLines(fields, rows(), [])].join('');
  const pass = rows();
  const plain: boolean[] = [];
  let want = '';
  for (let values = pass.next(); values; values = pass.next()) {
    plain.push(pass.plain === true);
    want += `${values.map(copyField).join('\t')}\n`;
  }
  return { copied, want, plain };
}

describe('plain rows: COPY text without a look at each string', () => {
  it('are the rows of a chunk without backslash, tab or CR whose strings are the record’s, on one line', () => {
    const text = [
      '1,Ada,plain,a',
      '2,"Grace ""G"" H",,b',
      '3,Alan,"two\nlines",c',
      '4,Edsger,x made,x',
      '5,Barbara,"quoted, comma","d"',
      '6,Émile,日本,😀',
      '7,nul\0here,n,t',
      '9007199254740993,1e400,"",t',
      '',
    ].join('\n');
    const { copied, want, plain } = copyOf(text);
    expect(copied).toBe(want);
    expect(copied).toBe(
      '1\tAda\tplain\ta\n2\tGrace "G" H\t\\N\tb\n3\tAlan\ttwo\\nlines\tc\n4\tEdsger\tx made\t\\t\n' +
        '5\tBarbara\tquoted, comma\td\n6\tÉmile\t日本\t😀\n9007199254740992\t1e400\t\\N\tt\n',
    );
    // The row with a NUL is refused before COPY (Postgres text cannot hold it), as without plain rows.
    expect(plain).toEqual([true, true, false, false, true, true, true]);
  });

  it('are none in a chunk with a backslash, tab or carriage return anywhere', () => {
    for (const text of [
      '1,a\\b,n,t\n2,Ada,n,t\n',
      '1,a\tb,n,t\n2,Ada,n,t\n',
      '1,Ada,n,t\r\n2,Ada,n,t\r\n',
      '1,"a\rb",n,t\n2,Ada,n,t\n',
      '1,Ada,n,t\n2,Ada,n,"t\\"\n',
    ]) {
      const { copied, want, plain } = copyOf(text);
      expect(copied, JSON.stringify(text)).toBe(want);
      expect(plain, JSON.stringify(text)).toEqual([false, false]);
    }
  });

  it('are none when an extra adds a string, and stay plain with line numbers and other constants', () => {
    const text = '1,Ada,n,t\n2,Alan,n,t\n';
    expect(copyOf(text, [{ value: 'a\tb' }])).toEqual({
      copied: '1\tAda\tn\tt\ta\\tb\n2\tAlan\tn\tt\ta\\tb\n',
      want: '1\tAda\tn\tt\ta\\tb\n2\tAlan\tn\tt\ta\\tb\n',
      plain: [false, false],
    });
    expect(copyOf(text, ['line', { value: 7 }]).plain).toEqual([true, true]);
  });
});

/** A pass over `rows` as given, each row plain or not as `plain` says. */
function passOf(rows: unknown[][], plain?: boolean): RowPass {
  let at = -1;
  return {
    next: () => rows[++at],
    rows: 0,
    line: 0,
    raw: () => '',
    rejects: [],
    ...(plain === undefined ? {} : { plain }),
  };
}

describe('COPY text of the columns jsonStringColumns marks (an NDJSON string into json/jsonb)', () => {
  const rows = [
    [1, '[1,2]', 'a "q" \\ b\tc', { k: 'v\t' }],
    [2, 'ok', null, [1, 'x']],
    [3, { n: 1 }, 'plain', 'null'],
  ];
  const json = [false, true, false, true];

  it('a marked column’s string as its JSON text, escaped for COPY; every other value as copyField makes it', () => {
    const want = rows
      .map((r) =>
        r.map((v, f) => copyField(json[f] && typeof v === 'string' ? JSON.stringify(v) : v)).join('\t'),
      )
      .join('\n');
    expect([...copyLines(['id', 'doc', 'note', 'j'], passOf(rows), [], json)].join('')).toBe(`${want}\n`);
    expect(want).toBe(
      '1\t"[1,2]"\ta "q" \\\\ b\\tc\t{"k":"v\\\\t"}\n2\t"ok"\t\\N\t[1,"x"]\n3\t{"n":1}\tplain\t"null"',
    );
  });

  it('without marks, the same rows as copyField makes every value; the rows themselves unchanged', () => {
    const want = rows.map((r) => r.map((v) => copyField(v)).join('\t')).join('\n');
    expect([...copyLines(['id', 'doc', 'note', 'j'], passOf(rows), [])].join('')).toBe(`${want}\n`);
    expect(rows[1]).toEqual([2, 'ok', null, [1, 'x']]);
  });

  it('a row marked plain still has its marked strings as JSON text', () => {
    const lines = [...copyLines(['id', 'doc'], passOf([[1, 'ok']], true), [], [false, true])].join('');
    expect(lines).toBe('1\t"ok"\n');
  });
});
