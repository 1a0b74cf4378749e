import path from 'node:path';
import { snakeIdentifier } from '../../shared/config/column-names.ts';
import { stemOf } from '../../shared/config/file-names.ts';
import { baseName, fieldNames, formatOfFile } from './file-profile.ts';

/** Files read as one dataset: one file, or exports of one table (`orders-2024-01.csv`, `orders-2024-02.csv`). */
export interface FileGroup {
  /** In name order. */
  files: string[];
  /** The dataset's name before snake_case: the file's, or the exports' common stem (`orders`). */
  base: string;
  /** The group's widest header: every file's fields are among these, the dataset's columns in this order. */
  fields: string[];
  /** The files by header, each list sharing one header (read together), in name order. */
  variants: string[][];
}

interface Candidate {
  file: string;
  base: string;
  fields: string[];
}

/** Files whose fields are all among the widest's: a group's files, or one group per file. */
interface Cluster {
  members: Candidate[];
  /** The fields a file may have to join: the widest header's (and a stored table's). */
  fields: Set<string>;
  /** Seeded by the table an earlier `init` made of the stem: named after it whatever its files. */
  stored: boolean;
}

const includes = (all: Set<string>, some: Iterable<string>) => [...some].every((f) => all.has(f));

/**
 * Files in one folder whose names differ only in a trailing date or number, and of one format (a `.gz`
 * is the same table compressed), are one dataset named after the stem when their headers agree but for
 * columns some files lack: each file's fields are all among the widest file's (a month that added a
 * column, or lacks one). Files whose headers disagree otherwise (a renamed column) stay datasets of
 * their own. `stored` are the fields of the tables an earlier `init` made: a file of a stem naming one
 * joins it when either's fields are all among the other's, so a new month evolves its table; a file
 * naming one itself stays that table's.
 */
export async function groupFiles(
  files: string[],
  delimiter?: string,
  stored: Record<string, string[]> = {},
): Promise<FileGroup[]> {
  const buckets = new Map<string, Candidate[]>();
  for (const file of files) {
    const base = baseName(file);
    const stem = stemOf(base);
    const { format, delimiter: d } = await formatOfFile(file, delimiter);
    // A file that made a table of its own name before (`address2.csv`) stays that table's.
    const grouped = stem && stem !== base && !stored[snakeIdentifier(base)];
    const key = grouped ? [path.dirname(file), stem, format, d].join('\u0001') : file;
    const bucket = buckets.get(key) ?? [];
    bucket.push({ file, base, fields: await fieldNames(file, delimiter) });
    buckets.set(key, bucket);
  }
  return [...buckets.values()].flatMap((bucket) => clusters(bucket, stored)).map(asGroup);
}

/**
 * A bucket's files, widest header first, each joining the first cluster whose fields include its own
 * (a cluster's first file is its widest); the stored table's cluster also takes a file including all
 * of its fields, and grows to that file's.
 */
function clusters(bucket: Candidate[], stored: Record<string, string[]>): Cluster[] {
  const { base } = bucket[0] as Candidate;
  const stem = stemOf(base);
  const table =
    stem && stem !== base && !stored[snakeIdentifier(base)] ? stored[snakeIdentifier(stem)] : undefined;
  const out: Cluster[] = table ? [{ members: [], fields: new Set(table), stored: true }] : [];
  const widestFirst = [...bucket].sort((a, b) => b.fields.length - a.fields.length);
  for (const c of widestFirst) {
    const joined =
      out.find((k) => includes(k.fields, c.fields)) ??
      out.find((k) => k.stored && includes(new Set(c.fields), k.fields));
    if (!joined) out.push({ members: [c], fields: new Set(c.fields), stored: false });
    else {
      joined.members.push(c);
      for (const f of c.fields) joined.fields.add(f);
    }
  }
  const order = (k: Cluster) => Math.min(...k.members.map((m) => bucket.indexOf(m)));
  return out.filter((k) => k.members.length > 0).sort((a, b) => order(a) - order(b));
}

function asGroup(k: Cluster): FileGroup {
  // The widest first: its header gives the columns' order, the others' fields (stored only) follow.
  const fields = [...new Set(k.members.flatMap((m) => m.fields))];
  const members = [...k.members].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  const variants = new Map<string, string[]>();
  for (const m of members) {
    const key = m.fields.join('\u0000');
    variants.set(key, [...(variants.get(key) ?? []), m.file]);
  }
  const first = members[0] as Candidate;
  return {
    files: members.map((m) => m.file),
    base: members.length > 1 || k.stored ? stemOf(first.base) : first.base,
    fields,
    variants: [...variants.values()],
  };
}
