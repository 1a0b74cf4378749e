import path from 'node:path';
import { ColumnProfile, PairProfile } from './column-profile.ts';
import { MISFITS_SHOWN } from './columns.ts';
import type { FileProfile, Misfit } from './file-profile.ts';

/** Records read into a profile's columns: its rows but those that did not fit. */
const records = (p: FileProfile) => p.rows - p.misfitCount;

/**
 * One profile of a table's files read apart, a profile per header (`parts`, in the order of their first
 * file): by column name, `fields` first (the widest header's order), a column a part's files lack being
 * null in each of their records, as the load leaves it.
 */
export function mergeProfiles(parts: FileProfile[], fields: string[], files: string[]): FileProfile {
  const [first] = parts as [FileProfile, ...FileProfile[]];
  if (parts.length === 1) return first;
  const names = [...new Set([...fields, ...parts.flatMap((p) => p.columns.map((c) => c.name))])];
  return {
    ...first,
    path: files[0] as string,
    paths: files,
    rows: parts.reduce((n, p) => n + p.rows, 0),
    columns: names.map((name, position) => mergedColumn(parts, name, position)),
    pairs: mergedPairs(parts),
    ...mergedMisfits(parts, files),
  };
}

function mergedColumn(parts: FileProfile[], name: string, position: number): ColumnProfile {
  const col = new ColumnProfile(name, position);
  for (const p of parts) {
    const seen = p.columns.find((c) => c.name === name);
    if (seen) col.absorb(seen);
    else col.nulls += records(p);
  }
  return col;
}

/**
 * The pairs every part followed or lacks a column of (its records count as pairs with a null); a pair
 * some part had both columns of but did not follow (past its first id-like columns) is unknown: dropped.
 */
function mergedPairs(parts: FileProfile[]): PairProfile[] {
  const all = new Map(
    parts.flatMap((p) => p.pairs.map((pair) => [pair.columns.join('\u0000'), pair.columns])),
  );
  const out: PairProfile[] = [];
  for (const [key, columns] of all) {
    const merged = new PairProfile(columns);
    const known = parts.every((p) => {
      const pair = p.pairs.find((q) => q.columns.join('\u0000') === key);
      if (pair) absorbPair(merged, pair);
      else if (columns.every((c) => p.columns.some((col) => col.name === c))) return false;
      else merged.withNull += records(p);
      return true;
    });
    if (known) out.push(merged);
  }
  return out;
}

function absorbPair(into: PairProfile, pair: PairProfile): void {
  into.withNull += pair.withNull;
  into.duplicates += pair.duplicates;
  if (!pair.seen) into.seen = undefined;
  if (!into.seen || !pair.seen) return;
  // A pair both parts hold is a duplicate across them; past the bound the pairs are given up.
  const repeats = into.seen.absorb(pair.seen);
  if (repeats === undefined) into.seen = undefined;
  else into.duplicates += repeats;
}

/** The parts' misfits in file order, each naming its file, as many listed as for one profile. */
function mergedMisfits(parts: FileProfile[], files: string[]): { misfits: Misfit[]; misfitCount: number } {
  const named = parts.flatMap((p) => p.misfits.map((m) => ({ ...m, file: m.file ?? path.basename(p.path) })));
  const order = (m: Misfit) => files.findIndex((f) => path.basename(f) === m.file);
  named.sort((a, b) => order(a) - order(b) || a.line - b.line);
  return {
    misfits: named.slice(0, MISFITS_SHOWN),
    misfitCount: parts.reduce((n, p) => n + p.misfitCount, 0),
  };
}
