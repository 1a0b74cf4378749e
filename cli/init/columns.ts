import { DEFAULT_MAX_RECORD_BYTES } from '../../shared/config/dataset.ts';
import { oversizedReason } from '../../shared/formats/chunking.ts';
import type { Skim } from '../../shared/formats/parsing.ts';
import { ColumnProfile, PairProfile } from './column-profile.ts';
import type { FileProfile } from './file-profile.ts';
import { isNullToken, keyText, NULL_TOKEN_MAX_LENGTH } from './values.ts';

/** Misfit rows listed per file; the rest are counted. */
export const MISFITS_SHOWN = 20;
/** Names that say "identifier": key candidates, and the columns whose pairs are followed as a link table's composite key. */
export const ID_LIKE = /(^id$|_id$|_code$|_key$|_no$)/;
/** Names of a row's place among its parent's (`stop_sequence`, `ordering`, `line_no`): a pair's second half. */
export const SEQUENCE_LIKE =
  /(^|_)(seq|sequence|sequential|ordering|position|line|line_no|line_number|item|item_no|item_number|number)$/;
/** Natural keys: `isbn`, `sku`, `email`, … (a link table of books and authors is `(isbn, author_id)`). */
const NATURAL_KEY = /(^|_)(isbn|issn|sku|ean|upc|gtin|email|code|slug|username|login|uuid|guid|iban|vin)$/;

/**
 * Whether a column's name makes it a key candidate among its file's columns (snake_case): an id-like
 * name, or a natural key's in a file with no key of its own (no `id`, no first column `…_id`). A
 * `users (id, email)` file keeps no set of its emails: hashing them would be most of its pass, for a
 * key the `id` already is.
 */
export function keyLike(column: string, columns: readonly string[]): boolean {
  if (ID_LIKE.test(column)) return true;
  if (!NATURAL_KEY.test(column)) return false;
  return !columns.some((c, i) => c === 'id' || (i === 0 && c.endsWith('_id')));
}

/** Whether a column (by field name and position) may be a key or relate to another file: else it keeps no distinct set. */
export type KeepValues = (field: string, position: number) => boolean;

/**
 * The part of the work one reader of the records does: the columns it classifies (by position; undefined:
 * all) and whether it follows the pairs. A profiling thread classifies its own columns only (see
 * `profile-threads.ts`); a reader alone does everything.
 */
export interface Share {
  owns: readonly boolean[] | undefined;
  pairs: boolean;
}

export const WHOLE: Share = { owns: undefined, pairs: true };

/** Columns in first-seen order; pairs of id-like columns followed for composite keys. */
export class Columns {
  readonly byName = new Map<string, ColumnProfile>();
  /** Records read into the profiles (misfits are not). */
  records = 0;
  #pairsFollowed = false;
  /** The file being read, named in its misfits when the profile reads several. */
  file: string | undefined;
  readonly profile: FileProfile;
  readonly snake: (name: string) => string;
  readonly keep: KeepValues;

  constructor(profile: FileProfile, snake: (name: string) => string, keep: KeepValues) {
    this.profile = profile;
    this.snake = snake;
    this.keep = keep;
  }

  column(name: string): ColumnProfile {
    let col = this.byName.get(name);
    if (!col) {
      col = new ColumnProfile(name, this.byName.size);
      if (!this.keep(name, col.position)) col.nameless = 'no name relates it to a key or another file';
      // A field first seen after some records was missing (null) in all of them.
      col.nulls = this.records;
      this.byName.set(name, col);
      this.profile.columns.push(col);
    }
    return col;
  }

  /** Fixes the pairs once the header (or the first record) has named the columns. */
  followPairs(): void {
    if (this.#pairsFollowed) return;
    this.#pairsFollowed = true;
    const names = this.profile.columns.map((c) => this.snake(c.name));
    const ids = this.profile.columns.filter((_, i) => keyLike(names[i] ?? '', names)).slice(0, 8);
    for (let i = 0; i < ids.length; i++)
      for (let j = i + 1; j < ids.length; j++)
        this.profile.pairs.push(new PairProfile([ids[i]?.name ?? '', ids[j]?.name ?? '']));
    // The parent's id (the first column, or the first id-like one) with a row's place in it: `(tconst, ordering)`.
    const owners = [...new Set([this.profile.columns[0], ids[0]])].filter((c) => c !== undefined);
    const places = this.profile.columns.filter(
      (c, i) => SEQUENCE_LIKE.test(names[i] ?? '') && !ids.includes(c),
    );
    for (const place of places.slice(0, 2))
      for (const owner of owners)
        if (owner !== place) this.profile.pairs.push(new PairProfile([owner.name, place.name]));
  }

  /**
   * The columns a block's parse may skim: settled as text, keeping no distinct values, in no pair. Their
   * values only count as values or nulls, and no null token is longer than the longest kept whole. A
   * share's reader skims every column it does not classify, but the pairs' when it follows them.
   */
  skim(share: Share): Skim {
    const paired = new Set(this.profile.pairs.flatMap((p) => p.columns));
    return {
      fields: this.profile.columns.map((c, i) =>
        paired.has(c.name)
          ? !share.pairs && share.owns?.[i] === false
          : c.settled || share.owns?.[i] === false,
      ),
      upTo: NULL_TOKEN_MAX_LENGTH,
    };
  }

  /** A record's key texts for the pairs (undefined for a null). */
  addPairs(keyOf: (name: string) => string | undefined): void {
    for (const pair of this.profile.pairs) pair.add(keyOf(pair.columns[0]), keyOf(pair.columns[1]));
  }

  /** A row that does not fit, named by its line. */
  misfit(line: number, reason: string): void {
    const { profile, file } = this;
    profile.misfitCount++;
    if (profile.misfits.length < MISFITS_SHOWN)
      profile.misfits.push({ line, reason, ...(file ? { file } : {}) });
  }

  /** The first record its quotes failed: the file may have no quoting (`quoting.ts`). */
  quoteMisfit(line: number, reason: string): void {
    const { profile, file } = this;
    profile.quoteMisfit ??= { line, reason, ...(file ? { file } : {}) };
  }

  /** A record over `maxRecordBytes`, rejected unread by the load (the dataset's default limit, which the generated datasets keep). */
  oversized(line: number, size: number): void {
    this.profile.rows++;
    this.misfit(line, oversizedReason(size, DEFAULT_MAX_RECORD_BYTES));
  }

  addCsvRecord(values: string[], share: Share): void {
    this.records++;
    const cols = this.profile.columns;
    const owns = share.owns;
    for (let i = 0; i < values.length; i++)
      if (owns === undefined || owns[i]) cols[i]?.addText(values[i] ?? '');
    if (this.profile.pairs.length === 0 || !share.pairs) return;
    this.addPairs((name) => {
      const col = this.byName.get(name);
      const text = col ? values[col.position] : undefined;
      return text === undefined || isNullToken(text) ? undefined : text;
    });
  }

  /** An NDJSON or Parquet record, its fields by name (read by one reader only: see `profile-threads.ts`). */
  addJsonRecord(fields: Record<string, unknown>): void {
    for (const name of Object.keys(fields)) this.column(name);
    this.followPairs();
    this.records++;
    for (const col of this.profile.columns) {
      const value = fields[col.name];
      col.addValue(value, keyText(value));
    }
    this.addPairs((name) => {
      const value = fields[name];
      return value === null || value === undefined ? undefined : keyText(value);
    });
  }
}
