import type { Dataset } from '../config/dataset.ts';
import { type FileRejectedError, OverwrittenError } from '../core/errors.ts';
import type { FileRow } from '../ledger/schema.ts';

/** A chunk of the failing file: its index, its first line, and whether its rows were committed. */
export interface ChunkPart {
  idx: number;
  first_line: number;
  state: string;
}

/**
 * What a newer version of the same key does to the rows this one committed in a table, by how it writes
 * there: `overwritten`: it upserts on the key, so each row whose key it also has takes its values;
 * `kept`: a key it inserts (or inserts-ignoring) does not replace a row that has it: these rows stay;
 * `beside`: no key, its rows are appended beside these (or refused as duplicates by a unique key the
 * table has and the dataset does not name).
 */
type NewerVersion = 'overwritten' | 'kept' | 'beside';

const effectOf = (t: { key: string[]; mode: string }): NewerVersion =>
  t.key.length === 0 ? 'beside' : t.mode === 'upsert' ? 'overwritten' : 'kept';

/** The dataset's tables by what a newer version does to this one's rows there. */
function newerVersionEffects(dataset: Dataset | undefined): Map<NewerVersion, string[]> {
  const tables: [string, NewerVersion][] = !dataset
    ? []
    : dataset.kind === 'table'
      ? [[dataset.table, effectOf(dataset)]]
      : dataset.targets.map((t) => [t.table, effectOf(t)]);
  const effects = new Map<NewerVersion, string[]>();
  for (const [table, effect] of tables) effects.set(effect, [...(effects.get(effect) ?? []), table]);
  return effects;
}

/** No table of the dataset has a key: its rows are told apart by their values. */
function noKey(dataset: Dataset | undefined): boolean {
  const effects = newerVersionEffects(dataset);
  return effects.size === 1 && effects.has('beside');
}

/** What the failure is told with: the failing file's loaded chunks, its rows in the tables, and how to remove them. */
interface Loaded {
  head: string;
  rows: number;
  tables: string;
  counts: string;
  rest: string;
  /** The lines its loaded chunks read, adjacent chunks as one range. */
  lines: string;
  /** How its rows are told from others' without a file id: by their key, or (no key) by their values. */
  match: string;
  /** Deleting its rows by the file id they carry (`sourceColumn`), when they carry one. */
  byId: string | undefined;
  /** Once its rows are removed, what loads the newer version's rows they kept out (`reloadNewer`). */
  reload: string;
}

/**
 * What a failure says about a file some of whose chunks had committed rows before it (a file renamed,
 * deleted or overwritten while it loaded): its message alone ("… no longer exists") would read as if
 * nothing loaded. Says which chunks loaded, how many of its rows went into the table, that the rest were
 * not, and how to remove those rows. Overwritten (`OverwrittenError`), a newer version of the key loads on
 * its own, and what it does to these rows depends on how the dataset writes (see `newerVersionEffects`).
 */
export function partialFailure(
  dataset: Dataset | undefined,
  file: FileRow,
  chunks: ChunkPart[],
  err: FileRejectedError,
): { error: string; action: string } {
  const told = loadedPart(dataset, file, chunks, err.message);
  if (!(err instanceof OverwrittenError)) return renamed(told);
  const effects = newerVersionEffects(dataset);
  const over = effects.get('overwritten') ?? [];
  if (over.length === 0) return stayingBeside(told, effects.has('beside') ? 'beside' : 'kept');
  const others = [...(effects.get('kept') ?? []), ...(effects.get('beside') ?? [])];
  return others.length === 0 ? upsertedOver(told) : partlyUpsertedOver(told, over, others);
}

function loadedPart(
  dataset: Dataset | undefined,
  file: FileRow,
  chunks: ChunkPart[],
  reason: string,
): Loaded {
  const loaded = chunks.filter((c) => c.state === 'loaded');
  // A split that sends chunks while it cuts (split/streamed-chunks.ts) may end before it counted them all.
  const total = file.chunk_count ?? chunks.length;
  const of = file.chunk_count === null ? `of the ${total} cut so far` : `of ${total}`;
  return {
    head: `${reason}; chunk(s) ${loaded.map((c) => c.idx + 1).join(', ')} ${of} had loaded before that: `,
    rows: file.rows_inserted + file.rows_updated,
    tables: dataset?.kind === 'table' ? `table ${dataset.table}` : 'its tables',
    counts: `(${file.rows_inserted} inserted, ${file.rows_updated} updated)`,
    rest:
      file.chunk_count === null
        ? 'the rest of the file was not loaded'
        : `the other ${total - loaded.length} chunk(s) were not loaded`,
    lines: lineRanges(loaded, chunks),
    match: noKey(dataset) ? 'by their values (the dataset has no key)' : 'by their keys',
    reload: reloadNewer(dataset, file.key),
    byId:
      dataset?.kind === 'table' && dataset.sourceColumn
        ? `delete from ${dataset.table} where ${dataset.sourceColumn} = ${file.id}`
        : undefined,
  };
}

const NO_ID = '(the rows carry no file id: no sourceColumn)';

/**
 * What brings the newer version's rows in once this one's are removed: those a key refused as duplicates
 * are its rejects (`retry-rejects` loads them); those an insert-ignore skipped are in no ledger, so only
 * loading it again does, and the same bytes under the same key count as loaded already.
 */
function reloadNewer(dataset: Dataset | undefined, key: string): string {
  const modes = !dataset
    ? []
    : dataset.kind === 'table'
      ? [dataset.mode]
      : dataset.targets.map((t) => t.mode);
  const retry = `, then \`npx dropload retry-rejects ${key}\` loads the newer version's rows refused meanwhile as duplicate keys`;
  return modes.includes('insert-ignore')
    ? `${retry}; the rows an insert-ignore skipped load only with the newer version dropped again under a new name (the same bytes under the same key count as loaded)`
    : retry;
}

/** How to remove all of its rows. */
const removeAll = (t: Loaded) =>
  t.byId ?? `delete its rows from lines ${t.lines} of the file ${t.match} ${NO_ID}`;

/** Renamed or deleted: every committed row stays until someone removes it. */
function renamed(t: Loaded): { error: string; action: string } {
  return {
    error: `${t.head}${t.rows} rows of this file are in ${t.tables} ${t.counts}, ${t.rest}`,
    action:
      `${t.rows} rows of it stay in ${t.tables}: if it was renamed or replaced, the new key loads in full, so remove them (${removeAll(t)}); ` +
      'otherwise remove them and drop the file again',
  };
}

/**
 * Overwritten on a dataset that upserts on its key: the newer version updates each of these rows whose
 * key it also has, so deleting them by key would delete its rows. Only rows whose keys it lacks remain of
 * this one; with a `sourceColumn` the rows it updated carry its file id, so deleting by this file's id is exact.
 */
function upsertedOver(t: Loaded): { error: string; action: string } {
  const remove = t.byId
    ? `${t.byId} (the rows the newer version updated carry its file id, not this one's)`
    : `delete, by their keys, only the rows of lines ${t.lines} of this version whose keys the newer version does not have ${NO_ID}`;
  return {
    error: `${t.head}${t.rows} rows of this version went into ${t.tables} ${t.counts}, ${t.rest}; the newer version upserts on the same key: each of those rows whose key it also has takes its values when it loads`,
    action: `do not delete this version's ${t.rows} rows by key: the rows of the keys the newer version also has are its rows now. Once it has loaded, remove only what remains of this one, if anything: ${remove}`,
  };
}

/**
 * Overwritten on a multi-table dataset that upserts some of its tables and not others: in the first the
 * newer version takes over the rows whose keys it has; in the others this version's rows stay.
 */
function partlyUpsertedOver(t: Loaded, over: string[], others: string[]): { error: string; action: string } {
  return {
    error: `${t.head}${t.rows} rows of this version went into ${t.tables} ${t.counts}, ${t.rest}; the newer version upserts on the same key in ${over.join(', ')}: each of those rows whose key it also has takes its values when it loads`,
    action: `in ${over.join(', ')} do not delete this version's rows by key: the rows of the keys the newer version also has are its rows now. In ${others.join(', ')} this version's rows stay: remove those (${removeAll(t)})${t.reload}`,
  };
}

/** Overwritten on a dataset whose newer version leaves these rows as they are (no key, or a key it inserts). */
function stayingBeside(t: Loaded, effect: 'kept' | 'beside'): { error: string; action: string } {
  const [stay, then] =
    effect === 'kept'
      ? [
          "the newer version does not replace a row whose key is there already (its rows of those keys are rejected or ignored), so these keep this version's values",
          t.reload,
        ]
      : [
          "they stay beside the newer version's rows (the dataset has no key; where the table has a unique key, the newer version's rows of the same keys are refused instead)",
          t.reload,
        ];
  return {
    error: `${t.head}${t.rows} rows of this file are in ${t.tables} ${t.counts}, ${t.rest}`,
    action: `${t.rows} rows of it stay in ${t.tables}: ${stay}; remove them (${removeAll(t)})${then}`,
  };
}

/** The lines of the loaded chunks, adjacent chunks as one range: a chunk ends before the next one's first line. */
function lineRanges(loaded: ChunkPart[], chunks: ChunkPart[]): string {
  const ranges: { from: number; next: ChunkPart | undefined }[] = [];
  for (const c of loaded) {
    const next = chunks.find((o) => o.idx === c.idx + 1);
    const last = ranges.at(-1);
    if (last && last.next?.idx === c.idx) last.next = next;
    else ranges.push({ from: c.first_line, next });
  }
  return ranges.map((r) => `${r.from}–${r.next ? r.next.first_line - 1 : 'end'}`).join(', ');
}
