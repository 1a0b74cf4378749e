import { once } from 'node:events';
import { createWriteStream } from 'node:fs';

/** Every this many rows one carries an invalid e-mail: psql loads it, dropload rejects it. */
export const INVALID_EVERY = 10_000;

const FIRST = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Radia', 'Niklaus'];
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Allen', 'Thompson', 'Perlman'];
const BASE_MS = Date.UTC(2020, 0, 1);
const SPAN_MS = 5 * 365 * 24 * 3600 * 1000;

/** mulberry32: tiny, fast and seeded, so the same --rows always makes the same file. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(list: readonly T[], r: number): T {
  return list[Math.floor(r * list.length)] as T;
}

/** Mostly plain notes; some empty (null), some quoted with a comma, some with doubled quotes. */
function note(i: number, r: number): string {
  if (r < 0.6) return `plain note ${i}`;
  if (r < 0.8) return '';
  if (r < 0.9) return `"note, with a comma ${i}"`;
  return `"she said ""hi"", then left"`;
}

function row(i: number, rnd: () => number): string {
  const first = pick(FIRST, rnd());
  const last = pick(LAST, rnd());
  const email =
    i % INVALID_EVERY === INVALID_EVERY / 2 ? `not-an-email-${i}` : `${first}.${last}${i}@example.com`;
  const amount = (rnd() * 100_000).toFixed(2);
  const created = new Date(BASE_MS + Math.floor(rnd() * SPAN_MS)).toISOString();
  const active = rnd() < 0.5 ? 'true' : 'false';
  const score = Math.floor(rnd() * 1000) - 100;
  return `${i},${first} ${last},${email.toLowerCase()},${amount},${created},${active},${score},${note(i, rnd())}\n`;
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
    for (let i = start; i < Math.min(start + BLOCK, rows + 1); i++) text += row(i, rnd);
    if (!out.write(text)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/** Data rows of a generated file that pass the bench schema. */
export function validRows(rows: number): number {
  return rows - Math.floor((rows + INVALID_EVERY / 2) / INVALID_EVERY);
}
