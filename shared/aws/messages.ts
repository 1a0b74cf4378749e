import { z } from 'zod';

/** What the split step tells a load worker: one byte range of one pinned object version. */
export const ChunkMessage = z.object({
  fileId: z.number().int(),
  dataset: z.string(),
  bucket: z.string(),
  key: z.string(),
  versionId: z.string().optional(),
  etag: z.string(),
  index: z.number().int().nonnegative(),
  /** The file's chunk count; absent from the chunks a split sends while it still cuts the file. */
  count: z.number().int().positive().optional(),
  /** Byte range [start, end) of whole records. */
  start: z.number().int().nonnegative(),
  end: z.number().int().nonnegative(),
  /** Physical line number (1-based) of the range's first byte. */
  firstLine: z.number().int().positive(),
  /** CSV header fields, in file order; absent for NDJSON. */
  columns: z.array(z.string()).optional(),
  /** The range is one record longer than the dataset's limit: reject it without reading it whole. */
  oversized: z.boolean().optional(),
  /** The range ends inside a quote that is never closed. */
  unterminated: z.boolean().optional(),
  /**
   * A gzip file: the object above is the compressed original, and the range is in its expanded bytes
   * (this many in all), read from its expanded copy (re-made from the original when it is gone).
   */
  expandedBytes: z.number().int().positive().optional(),
});
export type ChunkMessage = z.infer<typeof ChunkMessage>;

/**
 * Retry the rows of a multi-table file that wait for their parents (on the chunk queue: at once when a
 * parent lands, else delayed with backoff). Safe to deliver twice: the retry claims the waiting rows in
 * the transaction that writes them.
 */
export const OrphanMessage = z.object({
  kind: z.literal('orphans'),
  fileId: z.number().int(),
  /** 1-based: the backoff of the next retry grows with it. */
  attempt: z.number().int().positive(),
  /**
   * The file's retry chain this message belongs to (`dropload.file.retry_token`): only a message of the
   * current chain schedules the next retry. Absent on messages sent before chains had tokens: they retry only.
   */
  token: z.number().int().nonnegative().optional(),
});
export type OrphanMessage = z.infer<typeof OrphanMessage>;

/** Anything on the chunk queue: a chunk (no `kind`, as split has always sent them) or an orphan retry. */
export const LoadMessage = z.union([OrphanMessage, ChunkMessage]);
export type LoadMessage = z.infer<typeof LoadMessage>;

export function isOrphanMessage(message: LoadMessage): message is OrphanMessage {
  return 'kind' in message && message.kind === 'orphans';
}

/** Every UTF-16 code unit outside printable ASCII that JSON.stringify leaves as it is. */
const NOT_ASCII = /[\u007f-\uffff]/g;

/**
 * The body of every SQS message dropload sends: JSON in which every character outside ASCII is a `\u`
 * escape (an emoji as its surrogate pair). SQS refuses some characters in a body, and emulators refuse
 * more than SQS does (fauxqs, anything past U+FFFF); an ASCII body is valid for every one of them, and
 * JSON.parse reads it back unchanged. Outside strings JSON is ASCII already, so only string contents change.
 */
export function messageBody(message: unknown): string {
  return JSON.stringify(message).replace(
    NOT_ASCII,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
