import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { type ColumnSource, fileWriter, ParquetWriter, schemaFromColumnData } from 'hyparquet-writer';
// The tests' seeded PRNG: the same --rows always makes the same file.
import { prng as random } from '../test/unit/helpers.ts';

/** Every this many rows one carries an invalid e-mail: psql loads it, dropload rejects it. */
export const INVALID_EVERY = 10_000;

const FIRST = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Radia', 'Niklaus'];
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Allen', 'Thompson', 'Perlman'];
const BASE_MS = Date.UTC(2020, 0, 1);
const SPAN_MS = 5 * 365 * 24 * 3600 * 1000;

function pick<T>(list: readonly T[], r: number): T {
  return list[Math.floor(r * list.length)] as T;
}

/** Mostly plain notes; some empty (null), some with a comma, some with quotes. */
function note(i: number, r: number): string | null {
  if (r < 0.6) return `plain note ${i}`;
  if (r < 0.8) return null;
  if (r < 0.9) return `note, with a comma ${i}`;
  return 'she said "hi", then left';
}

interface Row {
  id: number;
  name: string;
  email: string;
  amount: number;
  created: Date;
  active: boolean;
  score: number;
  note: string | null;
}

function row(i: number, rnd: () => number): Row {
  const first = pick(FIRST, rnd());
  const last = pick(LAST, rnd());
  const email =
    i % INVALID_EVERY === INVALID_EVERY / 2 ? `not-an-email-${i}` : `${first}.${last}${i}@example.com`;
  return {
    id: i,
    name: `${first} ${last}`,
    email: email.toLowerCase(),
    amount: Math.round(rnd() * 10_000_000) / 100,
    created: new Date(BASE_MS + Math.floor(rnd() * SPAN_MS)),
    active: rnd() < 0.5,
    score: Math.floor(rnd() * 1000) - 100,
    note: note(i, rnd()),
  };
}

function csvNote(text: string | null): string {
  if (text === null) return '';
  return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function csvLine(r: Row): string {
  return `${r.id},${r.name},${r.email},${r.amount.toFixed(2)},${r.created.toISOString()},${r.active},${r.score},${csvNote(r.note)}\n`;
}

export const HEADER = 'id,name,email,amount,created_at,active,score,note\n';

/** Writes `rows` data rows plus a header to `file`; the same seed and count give the same bytes. */
export async function generateCsv(file: string, rows: number, seed = 42): Promise<void> {
  const out = createWriteStream(file);
  const rnd = random(seed);
  out.write(HEADER);
  const BLOCK = 10_000;
  for (let start = 1; start <= rows; start += BLOCK) {
    let text = '';
    for (let i = start; i < Math.min(start + BLOCK, rows + 1); i++) text += csvLine(row(i, rnd));
    if (!out.write(text)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/** Data rows of a generated file that pass the bench schema. */
export function validRows(rows: number): number {
  return rows - Math.floor((rows + INVALID_EVERY / 2) / INVALID_EVERY);
}

/** Rows per Parquet row group, and per batch the generator holds. */
const ROW_GROUP = 100_000;

/** A batch of rows as the writer's typed columns. */
function columns(batch: Row[]): ColumnSource[] {
  const column = <T>(get: (r: Row) => T) => batch.map(get);
  return [
    { name: 'id', data: column((r) => BigInt(r.id)), type: 'INT64' },
    { name: 'name', data: column((r) => r.name), type: 'STRING' },
    { name: 'email', data: column((r) => r.email), type: 'STRING' },
    { name: 'amount', data: column((r) => r.amount), type: 'DOUBLE' },
    { name: 'created_at', data: column((r) => r.created), type: 'TIMESTAMP' },
    { name: 'active', data: column((r) => r.active), type: 'BOOLEAN' },
    { name: 'score', data: column((r) => r.score), type: 'INT32' },
    { name: 'note', data: column((r) => r.note), type: 'STRING' },
  ];
}

/**
 * The same rows as `generateCsv` makes (same seed), as Parquet with typed columns in row groups of
 * 100,000, written one row group at a time: the 1 GB file's 8.9M rows are never all in memory.
 */
export async function generateParquet(file: string, rows: number, seed = 42): Promise<void> {
  const rnd = random(seed);
  let writer: ParquetWriter | undefined;
  for (let start = 1; start <= rows; start += ROW_GROUP) {
    const batch = Array.from({ length: Math.min(ROW_GROUP, rows + 1 - start) }, (_, i) =>
      row(start + i, rnd),
    );
    const columnData = columns(batch);
    writer ??= new ParquetWriter({ writer: fileWriter(file), schema: schemaFromColumnData({ columnData }) });
    // Untyped: the schema, made from the first batch, already holds the types.
    writer.write({
      columnData: columnData.map(({ name, data }) => ({ name, data })),
      rowGroupSize: ROW_GROUP,
    });
  }
  writer?.finish();
}
