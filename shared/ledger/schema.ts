import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/**
 * Where a file is in its life; `loaded`, `failed` and `skipped` are final. `loading`: chunks are not
 * all done. `waiting`: they are, and rows of it wait for parent rows another file brings (retried
 * until they load or their wait runs out). `stalled`: a chunk (or the split) failed for its whole retry
 * budget and waits in a dead-letter queue for a replay.
 */
export type FileState =
  | 'queued'
  | 'splitting'
  | 'loading'
  | 'waiting'
  | 'stalled'
  | 'loaded'
  | 'failed'
  | 'skipped';
export const FINAL_STATES: readonly FileState[] = ['loaded', 'failed', 'skipped'];
/** The states in which a file's waiting rows are retried. */
export const WAITING_STATES: readonly FileState[] = ['loading', 'waiting'];

type CreatedAt = ColumnType<Date, never, never>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;

/** One object version seen by the pipeline: the unit of "load once". */
export interface FileTable {
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
  rows_read: Generated<number>;
  rows_inserted: Generated<number>;
  rows_updated: Generated<number>;
  rows_rejected: Generated<number>;
  /** What is wrong now (a failed attempt being retried, why it stalled or failed); cleared when it is not. */
  error: Generated<string | null>;
  /** A remark on a file that loads anyway (no rows, columns nothing reads). */
  note: Generated<string | null>;
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
}

/** One byte range of a file; its `loaded` row commits in the same transaction as its data. */
export interface ChunkTable {
  file_id: number;
  idx: number;
  start_byte: number;
  end_byte: number;
  first_line: number;
  /** `dead`: failed for its whole retry budget; its message is in the dead-letter queue. */
  state: 'pending' | 'loaded' | 'dead';
  oversized: ColumnType<boolean, boolean | undefined, never>;
  unterminated: ColumnType<boolean, boolean | undefined, never>;
  rows_read: Generated<number>;
  rows_inserted: Generated<number>;
  rows_updated: Generated<number>;
  rows_rejected: Generated<number>;
  attempts: Generated<number>;
  error: string | null;
  loaded_at: Timestamp | null;
}

/** A data line that did not load, with what an operator needs to fix it. */
export interface RejectTable {
  id: Generated<number>;
  file_id: number;
  chunk_idx: number;
  line: number;
  column: string | null;
  reason: string;
  raw: string;
  created_at: CreatedAt;
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
  /** The target table the row is for. */
  target: string;
  /** The row as its writer stores it (jsonb; the shape is the load stage's, see `encodeRow`): written as JSON text. */
  row: ColumnType<unknown, string, never>;
  /** What it waits for, as a reject will name it: `shop.customers row with email = x@y`. */
  missing: string;
  /** The (first) parent table it waits for, schema-qualified: what a commit into that table wakes. */
  parent_table: string;
  /** That parent's natural-key columns, as a person reads them: `email`, `order_no, line_no`. */
  parent_key: string;
  raw: string;
  attempts: Generated<number>;
  created_at: CreatedAt;
  expires_at: ColumnType<Date, Date | string, never>;
}

export interface Database {
  'dropload.file': FileTable;
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
export type OrphanRow = Selectable<OrphanTable>;
