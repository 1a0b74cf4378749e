import { z } from 'zod';

/** The two queues a message travels on: S3 events to split, chunk messages to load. */
export type QueueName = 'ingest' | 'chunks';

/** What the split step tells a load worker: one byte range of one pinned object version. */
export const ChunkMessage = z.object({
  fileId: z.number().int(),
  dataset: z.string(),
  bucket: z.string(),
  key: z.string(),
  versionId: z.string().optional(),
  etag: z.string(),
  index: z.number().int().nonnegative(),
  count: z.number().int().positive(),
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
 * Retry the rows of a multi-table file that wait for their parents (sent delayed, with backoff, on the
 * chunk queue). Safe to deliver twice: the retry claims the waiting rows in the transaction that writes them.
 */
export const OrphanMessage = z.object({
  kind: z.literal('orphans'),
  fileId: z.number().int(),
  /** 1-based: the backoff of the next retry grows with it. */
  attempt: z.number().int().positive(),
});
export type OrphanMessage = z.infer<typeof OrphanMessage>;

/** Anything on the chunk queue: a chunk (no `kind`, as split has always sent them) or an orphan retry. */
export const LoadMessage = z.union([OrphanMessage, ChunkMessage]);
export type LoadMessage = z.infer<typeof LoadMessage>;

export function isOrphanMessage(message: LoadMessage): message is OrphanMessage {
  return 'kind' in message && message.kind === 'orphans';
}
