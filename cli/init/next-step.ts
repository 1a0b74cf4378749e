import path from 'node:path';
import { quote } from 'shell-quote';
import { type LocalFile, placeFile } from '../../shared/config/local-files.ts';

// What `init` prints after `next:`: the `run` that loads the files it profiled into the tables it wrote.

/** What the printed `run` would be given, and where it would load. */
export interface RunInputs {
  /** The generated config. */
  config: string;
  /** The paths `init` was given, and the files `run` finds there (`localFiles`). */
  paths: string[];
  found: LocalFile[];
  /** Every dataset of the config (earlier `init`s' too): `run` routes a file by all of their names. */
  datasets: string[];
  /** Whether DATABASE_URL is set: `run` loads there, else into an embedded database gone when it exits. */
  databaseUrl: boolean;
}

/** The next step: its `run` command(s), and whether they are one run (which needs no database of its own). */
export interface NextStep {
  commands: string[];
  /** Where `run` loads: DATABASE_URL's database, or the embedded one each `run` starts and drops. */
  into: 'DATABASE_URL' | 'embedded';
}

interface TableFiles {
  name: string;
  files: string[];
}

/** Whether `run` given these files sends each profiled one to its table's dataset, and nothing else. */
function loadsExactly(files: LocalFile[], tables: TableFiles[], datasets: string[]): boolean {
  const tableOf = new Map(tables.flatMap((t) => t.files.map((f) => [path.resolve(f), t.name] as const)));
  const keys = new Set<string>();
  for (const f of files) {
    const placed = placeFile(f, datasets);
    if (!placed || tableOf.get(path.resolve(f.file)) !== placed.dataset) return false;
    keys.add(`${placed.dataset}/${placed.tail}`);
  }
  // Each file once (no two uploading to one key), and every profiled file among them.
  return keys.size === files.length && files.length === tableOf.size;
}

/**
 * One `run` of every file, in one process: its children wait for their parents within it, so it loads
 * on the embedded database too. Given the paths `init` was (`run shop/`) when `run` finds exactly the
 * profiled files there, each routed to its table's dataset; else the files themselves. Should `run`
 * route one elsewhere (it sits in a folder named like another dataset), a `run` per table, parents
 * first, the files with `--dataset`: those need DATABASE_URL, to keep the tables between the runs.
 */
export function runCommands(tables: TableFiles[], loadOrder: string[], inputs: RunInputs): string[] {
  // Quoted for a POSIX shell: a path with spaces or quotes is printed as one argument, as it was given.
  const run = (args: string[]) => `npx dropload --config ${quote([inputs.config])} run ${quote(args)}`;
  if (inputs.found.length > 0 && loadsExactly(inputs.found, tables, inputs.datasets))
    return [run(inputs.paths)];
  const listed = tables.flatMap((t) => t.files.map((file) => ({ file, base: path.dirname(file) })));
  if (loadsExactly(listed, tables, inputs.datasets)) return [run(listed.map((f) => f.file))];
  const byName = new Map(tables.map((t) => [t.name, t]));
  return loadOrder.flatMap((qualified) => {
    const t = byName.get(qualified.split('.').at(-1) as string);
    return t ? [run([...t.files, '--dataset', t.name])] : [];
  });
}

/** The line above the commands: what they load, and into which database. */
export function nextHeader(next: NextStep): string {
  const into =
    next.into === 'DATABASE_URL'
      ? 'the database at DATABASE_URL'
      : 'an embedded database, gone when run exits (set DATABASE_URL to keep the tables)';
  if (next.commands.length === 1)
    return `next: load every file in one run (it applies the migrations; children wait for their parents within it), into ${into}:`;
  return `next: load the files, parents first (run applies the migrations), into ${into}; each run is a process of its own, so the later ones find the earlier ones' rows only with DATABASE_URL set:`;
}
