import { readFile } from 'node:fs/promises';
import { type Kysely, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineDataset } from '../../shared/config/dataset.ts';
import { planChunks, STRAY_QUOTE_HINT } from '../../shared/formats/chunking.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { rejectKindsOfKey, rejectsOfKey, startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/**
 * A stray quote (IMDb's TSVs have no quoting; one title is `"Weird" Al Special`) never swallows the
 * lines after it: with quoting, its record is the one line, rejected; without (`quote: false`), it loads.
 */

const migration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('stray_titles')
      .addColumn('tconst', 'text', (c) => c.primaryKey())
      .addColumn('primary_title', 'text', (c) => c.notNull())
      .execute();
  },
};
const schema = z.object({ tconst: z.string(), primaryTitle: z.string() });
const titles = (name: string, options: { quote?: false; chunkBytes?: number; maxRecordBytes?: number }) =>
  defineDataset({
    name,
    format: 'csv',
    delimiter: '\t',
    table: 'stray_titles',
    columns: { primaryTitle: 'primary_title' },
    mode: 'upsert',
    key: ['tconst'],
    schema,
    ...options,
  });
const config = {
  datasets: [
    titles('quoted', {}),
    titles('unquoted', { quote: false }),
    titles('chunked', { chunkBytes: 64 * 1024 }),
    titles('limited', { maxRecordBytes: 4096 }),
  ],
  migrations: { '20260101000000_stray': migration },
};

let p: TestPipeline;
let db: Kysely<Database>;
beforeAll(async () => {
  p = await startTestPipeline(config, ['stray_titles']);
  db = p.deps.db;
});
afterAll(async () => {
  await p?.stop();
});

const fixture = () => readFile('test/fixtures/init/imdb/titles.tsv', 'utf8');
const stored = async () =>
  (await sql<{ n: number }>`select count(*)::int as n from stray_titles`.execute(db)).rows[0]?.n;
const titleOf = async (tconst: string) =>
  (await sql<{ t: string }>`select primary_title as t from stray_titles where tconst = ${tconst}`.execute(db))
    .rows[0]?.t;
const firstLines = async (key: string) =>
  (
    await sql<{
      l: number;
    }>`select c.first_line as l from dropload.chunk c join dropload.file f on f.id = c.file_id
      where f.key = ${key} order by c.idx`.execute(db)
  ).rows.map((r) => r.l);
const clear = () => sql`truncate stray_titles`.execute(db);
const malformed = `malformed CSV: Trailing quote on quoted field is malformed (${STRAY_QUOTE_HINT})`;

/** `rows` lines of IMDb-like TSV (tconst, title), a `"Weird" Al` title of the same length on each line in `stray`. */
function tsv(rows: number, stray: Set<number>): string {
  let text = 'tconst\tprimaryTitle\n';
  for (let line = 2; line <= rows + 1; line++) {
    const title = stray.has(line)
      ? `"Weird" Al ${line} ${'x'.repeat(35)}`
      : `Title ${line} ${'x'.repeat(40)}`;
    text += `tt${String(line).padStart(7, '0')}\t${title}\n`;
  }
  return text;
}

describe('a stray quote', () => {
  it('with quoting, rejects its own line alone: the other 199 rows load', async () => {
    await clear();
    const { reports } = await p.load('incoming/quoted/titles.tsv', await fixture());
    expect(reports[0]?.rows).toMatchObject({ read: 200, loaded: 199, rejected: 1 });
    expect(await rejectsOfKey(db, 'incoming/quoted/titles.tsv')).toEqual([
      {
        line: 50,
        column: null,
        reason: malformed,
        raw: 'tt0000049\tshort\t"Weird" Al Special\t"Weird" Al Special\t1\t1949\t\\N\t109\tDrama',
      },
    ]);
    expect(await rejectKindsOfKey(db, 'incoming/quoted/titles.tsv')).toEqual(['malformed']);
    expect(await stored()).toBe(199);
    // A quote inside a field is text, with quoting too.
    expect(await titleOf('tt0000120')).toBe('The "Best" Of');
  });

  it('with `quote: false`, is text: all 200 rows load, the title with its quotes', async () => {
    await clear();
    const { reports } = await p.load('incoming/unquoted/titles.tsv', await fixture());
    expect(reports[0]?.rows).toMatchObject({ read: 200, loaded: 200, rejected: 0 });
    expect(await stored()).toBe(200);
    expect(await titleOf('tt0000049')).toBe('"Weird" Al Special');
  });

  it('next to chunk boundaries loses and repeats no row: each one rejects its own line', async () => {
    await clear();
    // About 1080 lines a chunk of 64 KiB: strays on the first and last lines of chunks and inside them.
    const plan = await planChunks(
      (async function* () {
        yield Buffer.from(tsv(3000, new Set()));
      })(),
      { format: 'csv', delimiter: '\t', chunkBytes: 64 * 1024, maxRecordBytes: 1024 ** 2 },
    );
    const firsts = plan.chunks.map((c) => c.firstLine);
    expect(firsts).toHaveLength(3);
    const stray = new Set([2, 500, ...firsts.slice(1).flatMap((l) => [l - 1, l, l + 1]), 3001]);
    expect(stray.size).toBe(9);
    const { reports } = await p.load('incoming/chunked/titles.tsv', tsv(3000, stray));
    expect(reports[0]?.rows).toMatchObject({ read: 3000, loaded: 3000 - stray.size, rejected: stray.size });
    expect(reports[0]?.chunks.total).toBe(3);
    expect(await firstLines('incoming/chunked/titles.tsv')).toEqual(firsts);
    const rejects = await rejectsOfKey(db, 'incoming/chunked/titles.tsv');
    expect(rejects.map((r) => [r.line, r.reason])).toEqual([...stray].map((line) => [line, malformed]));
    expect(await stored()).toBe(3000 - stray.size);
  });

  it('that opens a quoted field closed only many lines on makes a record over maxRecordBytes, rejected as such', async () => {
    await clear();
    // Line 11's title opens a quote (`"Weird Al`) that line 201's first quote closes: one record of 191 lines.
    let text = tsv(300, new Set());
    const lines = text.split('\n');
    lines[10] = 'tt0000011\t"Weird Al Special';
    lines[200] = 'tt0000201\tThe "Best" Of';
    text = lines.join('\n');
    const size = lines.slice(10, 201).join('\n').length + 1;
    const { reports } = await p.load('incoming/limited/titles.tsv', text);
    expect(reports[0]?.rows).toMatchObject({ read: 110, loaded: 109, rejected: 1 });
    const rejects = await rejectsOfKey(db, 'incoming/limited/titles.tsv');
    expect(rejects.map((r) => [r.line, r.reason])).toEqual([
      [
        11,
        `record is ${size} bytes, over the limit of 4096 bytes (maxRecordBytes) (a quoted field runs over several lines from here: ${STRAY_QUOTE_HINT})`,
      ],
    ]);
    expect(await rejectKindsOfKey(db, 'incoming/limited/titles.tsv')).toEqual(['unreadable']);
  });
});
