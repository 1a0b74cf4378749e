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
});
export type ChunkMessage = z.infer<typeof ChunkMessage>;
