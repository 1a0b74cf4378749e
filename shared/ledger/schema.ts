import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/**
/**
 * Where a file is in its life: the values the table's CHECK admits (a test holds the two together).
 * `loading`: its chunks are not all done. `waiting`: they are, and rows of it wait for parent rows
 * another file brings (retried until they load or their wait runs out); it is not final. `stalled`: a
 * chunk (or the split) failed for its whole retry budget and waits in a dead-letter queue for a
 * replay; it is not final.
 */
export const FILE_STATES = [
  'queued',
  'splitting',
  'loading',
  'waiting',
  'stalled',
  'loaded',
  'failed',
  'skipped',
] as const;
export type FileState = (typeof FILE_STATES)[number];
const FINAL = ['loaded', 'failed', 'skipped'] as const satisfies readonly FileState[];
/** A file in one of these has finished (`finished_at` is set). */
export type FinalState = (typeof FINAL)[number];
export const FINAL_STATES: readonly FileState[] = FINAL;
/** The states in which a file's waiting rows are retried. */
export const WAITING_STATES: readonly FileState[] = ['loading', 'waiting'];

/** A chunk's states, as the table's CHECK admits them; `dead`: see ChunkTable. */
export const CHUNK_STATES = ['pending', 'loaded', 'dead'] as const;
export type ChunkState = (typeof CHUNK_STATES)[number];

type CreatedAt = ColumnType<Date, never, never>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;

/** The row counters a file and each of its chunks keep: read = inserted + updated + unchanged + waiting + rejected. */
interface RowCounters {
  rows_read: Generated<number>;
  rows_inserted: Generated<number>;
  rows_updated: Generated<number>;
  rows_rejected: Generated<number>;
  /** Written and found as they were (an upsert's `is distinct from` skip, `insert-ignore`, a key superseded in its chunk). */
  rows_unchanged: Generated<number>;
  /** Records (lines) with a row in `dropload.orphan`, waiting for a parent: not loaded yet. */
  rows_waiting: Generated<number>;
}

/** One object version seen by the pipeline: the unit of "load once". */
export interface FileTable extends RowCounters {
  id: Generated<number>;
  bucket: string;
  key: string;
  /** S3 version id; '' where the bucket is not versioned (the ETag then pins the content). */
  version_id: string;
  etag: string;
  size: number;
  dataset: string | null;
  state: FileState;
  columns: string[] | null;
  chunk_count: number | null;
  chunks_done: Generated<number>;
  rows_expected: number | null;
  /** A gzip file: the size of its expanded bytes, which its chunks' byte ranges are in. */
  expanded_bytes: ColumnType<number | null, number | null | undefined, number | null>;
  /** What is wrong now (a failed attempt being retried, why it stalled or failed); cleared when it is not. */
  error: Generated<string | null>;
  /** A remark on a file that loads anyway (no rows, columns nothing reads). */
  note: Generated<string | null>;
  /** A failed file: what to do about it, set with the failure by the error that ended it. */
  action: Generated<string | null>;
  created_at: CreatedAt;
  updated_at: Timestamp;
  finished_at: Timestamp | null;
  /** S3's Last-Modified of this version (HEAD at split); with `sequencer`, orders a key's versions for `replace`. */
  last_modified: Timestamp | null;
  /** The announcing S3 event's per-key `sequencer`, when the event had one. */
  sequencer: string | null;
  /** The file's current retry chain for its waiting rows: only a message carrying it schedules the next step. */
  retry_token: Generated<number>;
  /** When the current chain's pending retry message is due; NULL: none is pending. Long past: it was lost. */
  retry_due: ColumnType<Date | null, never, Date | string | null>;
  /** When the current chain's handler took its message; NULL: none is running. */
  retry_started_at: ColumnType<Date | null, never, Date | string | null>;
  /** Times its work stopped without an outcome and started again (see ledger/resumes.ts). */
  resumes: Generated<number>;
  /** When the last of those resumes began; NULL: none. */
  resumed_at: ColumnType<Date | null, never, Date | string | null>;
  /** Seconds, in all, the file had made no progress before its resumes: its downtime. */
  idle_seconds: Generated<number>;
}

/** One byte range of a file; its `loaded` row commits in the same transaction as its data. */
export interface ChunkTable extends RowCounters {
  file_id: number;
  idx: number;
  start_byte: number;
  end_byte: number;
  first_line: number;
  /** `dead`: failed for its whole retry budget; its message is in the dead-letter queue. */
  state: ChunkState;
  oversized: ColumnType<boolean, boolean | undefined, never>;
  unterminated: ColumnType<boolean, boolean | undefined, never>;
  attempts: Generated<number>;
  error: string | null;
  /** When its loading began (its worker took it); null for chunks loaded before the column existed. */
  started_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  loaded_at: Timestamp | null;
}

/**
 * What kind of reject a line is, stored with it (`dropload.reject.kind`, whose CHECK admits these) by the
 * code that rejected it:
 * - `unreadable`: the record could not be read, and its stored `raw` is not its text as in the file (the
 *   first KiB of a record over `maxRecordBytes` or of a quote never closed before the end of the file; a
 *   line whose invalid UTF-8 was replaced on decoding), so it cannot be read again: `retry-rejects` leaves it;
 * - `malformed`: the line, stored as it is in the file, is not a record (malformed CSV, a field count unlike
 *   the header's, invalid JSON, not a JSON object, nested too deep);
 * - `invalid`: the schema refused the record, or threw on it;
 * - `unwritable`: a value the schema passed cannot be written (a BigInt inside a JSON value);
 * - `refused`: the database refused the row (a CHECK, NOT NULL or unique constraint, a NUL byte);
 * - `orphan`: the row waited for a parent that did not come within `orphanWaitSeconds` (or its table is
 *   no longer a target of the dataset).
 */
export const REJECT_KINDS = [
  'unreadable',
  'malformed',
  'invalid',
  'unwritable',
  'refused',
  'orphan',
] as const;
export type RejectKind = (typeof REJECT_KINDS)[number];

/**
 * How an open reject was resolved (`dropload.reject.resolved_by`, whose CHECK admits these):
 * - `retry`: `retry-rejects` loaded its line (the file's counts moved it from rejected to loaded);
 * - `newer-row`: a later file of the same keyed dataset loaded a row with its key;
 * - `operator`: `dropload rejects resolve`, with the operator's reason.
 */
export const REJECT_RESOLUTIONS = ['retry', 'newer-row', 'operator'] as const;
export type RejectResolution = (typeof REJECT_RESOLUTIONS)[number];

/** Set by resolving a reject, never by storing it. */
type Resolved<T> = ColumnType<T | null, never, T | null>;
/** Stored with a reject when known, never changed. */
type StoredOnce<T> = ColumnType<T | null, T | null | undefined, never>;

/**
 * A data line that did not load, with what an operator needs to fix it. It is open until resolved
 * (`resolved_at` set), and kept afterwards as history.
 */
export interface RejectTable {
  id: Generated<number>;
  file_id: number;
  chunk_idx: number;
  line: number;
  column: string | null;
  kind: RejectKind;
  reason: string;
  raw: string;
  created_at: CreatedAt;
  resolved_at: Resolved<Date>;
  resolved_by: Resolved<RejectResolution>;
  /** The operator's reason, or the file and line whose row superseded it (`newer-row`). */
  resolution: Resolved<string>;
  /** `newer-row`: the file whose row resolved it. */
  resolved_file_id: Resolved<number>;
  /** With `row_key`: the keyed dataset whose newer rows resolve it. */
  dataset: StoredOnce<string>;
  /** The record's key fields as read from the file (a JSON array of their texts), when it could be read. */
  row_key: StoredOnce<string>;
}

/**
 * A row of a multi-table dataset waiting for its parent (by natural key): parked in its chunk's
 * transaction, claimed `for update skip locked` and deleted by the retry that writes it or turns it into
 * a reject once `expires_at` has passed.
 */
export interface OrphanTable {
  id: Generated<number>;
  file_id: number;
  chunk_idx: number;
  line: number;
  /** The target table of the record's first row that waits (of the one row, for a row parked before records were). */
  target: string;
  /** The record as its writer stores it (jsonb; the shape is the load stage's, see `encodeUnit`): written as JSON text. */
  row: ColumnType<unknown, string, never>;
  /** What it waits for, as a reject will name it: `shop.customers row with email = x@y`. */
  missing: string;
  /** The (first) parent table it waits for, schema-qualified: what a commit into that table wakes. */
  parent_table: string;
  /** That parent's natural-key columns, as a person reads them: `email`, `order_no, line_no`. */
  parent_key: string;
  /** That parent row, by the key texts the record names it with (see `ParentRow`); null when parked before. */
  parent_row: ColumnType<ParentRow | null, string | null | undefined, string | null>;
  raw: string;
  attempts: Generated<number>;
  created_at: CreatedAt;
  expires_at: ColumnType<Date, Date | string, never>;
}

/** Rows one file wrote into one target table of its multi-table dataset (see migration `table_counts`). */
export interface TableCountTable {
  file_id: number;
  table_name: string;
  rows_inserted: number;
  rows_updated: number;
  rows_unchanged: number;
}

/** A parent row by natural key: its table as the config names it, and its key columns' texts. */
export interface ParentRow {
  table: string;
  key: Record<string, string | null>;
}

export interface Database {
  'dropload.file': FileTable;
  'dropload.table_count': TableCountTable;
  'dropload.chunk': ChunkTable;
  'dropload.reject': RejectTable;
  'dropload.orphan': OrphanTable;
}

export type FileRow = Selectable<FileTable>;
export type NewFile = Insertable<FileTable>;
export type FileUpdate = Updateable<FileTable>;
export type ChunkRow = Selectable<ChunkTable>;
export type NewChunk = Insertable<ChunkTable>;
export type NewReject = Insertable<RejectTable>;
export type RejectRow = Selectable<RejectTable>;
export type OrphanRow = Selectable<OrphanTable>;
export type TableCountRow = Selectable<TableCountTable>;
