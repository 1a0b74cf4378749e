import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../core/errors.ts';
import { snakeCase, snakeIdentifier } from './column-names.ts';
import { fileBase, stemOf } from './file-names.ts';

// Which dataset a local file given to `run` goes to, and under which key. `init` asks the same of the
// files it profiled, so the `run` it prints sends each to the dataset it wrote for it.

/** A file given to `run`, or found under a folder given. */
export interface LocalFile {
  file: string;
  /** The folder given on the command line it was found under (its own folder for a file argument). */
  base: string;
}

/** The files named, folders read recursively, each folder's in name order. */
export async function localFiles(paths: string[]): Promise<LocalFile[]> {
  const out: LocalFile[] = [];
  for (const p of paths) {
    const s = await stat(p).catch(() => undefined);
    if (!s) throw new UsageError(`no such file: ${p}`);
    if (s.isDirectory()) {
      const entries = (await readdir(p, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
      const files = entries.map((e) => path.join(e.parentPath, e.name)).sort();
      out.push(...files.map((file) => ({ file, base: p })));
    } else out.push({ file: p, base: path.dirname(p) });
  }
  return out;
}

/** Where a file goes: its dataset, and its key's tail below the dataset's prefix. */
export interface Placement {
  dataset: string;
  /** The path below the dataset's folder (or the folder given), so `2024/01.csv` and `2025/01.csv` stay apart. */
  tail: string;
}

const keyTail = (file: string, from: string) => path.relative(from, file).split(path.sep).join('/');

/**
 * The dataset named after the file as `init` names one: its name in snake_case (`order_details.csv`,
 * `Order Details.tsv.gz` → `order_details`), else its name without a trailing date or number
 * (`orders-2024-01.csv` → `orders`, one of a table's monthly exports).
 */
function namedAfterFile(file: string, datasets: readonly string[]): string | undefined {
  const base = fileBase(file);
  const stem = stemOf(base);
  // init's names (plain identifiers: `Müller.csv` → `muller`), then the loader's (`müller`).
  const names = (n: string) => [snakeIdentifier(n), snakeCase(n)];
  return [...names(base), ...(stem ? names(stem) : [])].find((n) => datasets.includes(n));
}

/**
 * `--dataset` when given; else the nearest enclosing folder named like a dataset; else, only for a
 * file no such folder routes, the dataset named after the file (`namedAfterFile`). Undefined: none.
 */
export function placeFile(
  { file, base }: LocalFile,
  datasets: readonly string[],
  named?: string,
): Placement | undefined {
  const absolute = path.resolve(file);
  const given = (dataset: string) => ({ dataset, tail: keyTail(absolute, path.resolve(base)) });
  if (named) return given(named);
  const parts = absolute.split(path.sep);
  const at = parts.findLastIndex((f, i) => i < parts.length - 1 && datasets.includes(f));
  if (at >= 0)
    return { dataset: parts[at] as string, tail: keyTail(absolute, parts.slice(0, at + 1).join(path.sep)) };
  const dataset = namedAfterFile(file, datasets);
  return dataset ? given(dataset) : undefined;
}
