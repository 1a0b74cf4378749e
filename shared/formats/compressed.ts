import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { collectBody, type PinnedObject, readRange, streamObject } from '../aws/object-store.ts';
import type { Dataset } from '../config/dataset.ts';
import { EXPANDED_PREFIX } from '../core/bucket-layout.ts';
import { FileRejectedError } from '../core/errors.ts';
import { type FilePlan, planChunks } from './chunking.ts';
import { asGzipError } from './gzip-error.ts';

/**
 * A gzip stream cannot be read from the middle, so a compressed file is expanded once, in the split
 * step, into a plain object beside it; its chunks are then byte ranges of that object and the load
 * workers read them as they read an uncompressed file. The cost: one more pass of the expanded bytes
 * through S3 (an upload in the split step, and their storage until the file is finished: whoever
 * finishes it deletes the copy), and a split step bound by one core's gunzip speed.
 *
 * The copy is a cache, never the source of truth. A chunk message pins the ORIGINAL object version
 * (ETag, version id) and says how many expanded bytes its ranges were planned on (`expandedBytes`);
 * the copy is found by the file's id. Whoever needs the copy and finds it missing (split re-sending a
 * file's chunks after a crash, a load worker after the copy expired or was deleted) re-makes it from
 * the pinned original: gunzip is deterministic, so the bytes are the same, and their count is checked
 * against the one recorded with the plan. The copy's own ETag is deliberately not pinned: a re-made
 * copy need not get the same one (a multipart ETag depends on the part size, and under SSE-KMS an
 * ETag is not a digest of the bytes at all). Instead each read checks what the copy says it is — the
 * original it was expanded from (object metadata) and its total size (Content-Range) — in the same
 * response as the bytes. S3 replaces an object whole, so two workers re-making one copy at once
 * cost work, never correctness.
 */

/** What a chunk's byte ranges are read from: the pinned object and, for a gzip file, its expanded size. */
export interface ChunkSource extends PinnedObject {
  /** Set for gzip files: the ranges are in this many expanded bytes, read from the file's expanded copy. */
  expandedBytes?: number;
}

export const expandedKey = (fileId: number): string => `${EXPANDED_PREFIX}${fileId}`;

const SOURCE_METADATA = 'dropload-source';
/** Which original version a copy was expanded from (S3 metadata is ASCII: the ETag and version id are). */
const sourceTag = (original: PinnedObject): string => `${original.etag} ${original.versionId ?? ''}`.trim();

/**
 * Below this many expanded bytes the compression ratio is not judged: a small file costs little
 * whatever its ratio, and a file's first bytes (a header, a run of similar rows) can compress far
 * better than the file as a whole.
 */
export const RATIO_CHECKED_AFTER_BYTES = 64 * 1024 * 1024;
/** S3 allows 10,000 parts; lib-storage's default part is 5 MiB (so at most ~48 GiB per object). */
const MIN_PART_BYTES = 5 * 1024 * 1024;
const MAX_PARTS = 10_000;

/** gzip's magic number; the key's suffix is not trusted either way. */
export async function isGzip(s3: S3Client, obj: PinnedObject, size: number): Promise<boolean> {
  if (size < 2) return false;
  const head = await readRange(s3, obj, 0, 2);
  return head[0] === 0x1f && head[1] === 0x8b;
}

/** Counts the bytes that pass, so the guard after gunzip can compare output with input. */
class Counter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    done(null, chunk);
  }
}

interface Limits {
  /** Fail once the expanded bytes pass this many. */
  maxBytes: number;
  /** What to say then. */
  tooLarge: () => FileRejectedError;
  /** Fail once the expanded bytes are more than this many times the compressed bytes read (past the floor). */
  maxRatio?: number;
}

/** Stops the expansion as soon as it passes a limit: a bomb is never expanded in full. */
class ExpansionGuard extends Transform {
  bytes = 0;
  readonly #limits: Limits;
  readonly #compressed: Counter;
  constructor(limits: Limits, compressed: Counter) {
    super();
    this.#limits = limits;
    this.#compressed = compressed;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    const broken = this.#broken();
    if (broken) done(broken);
    else done(null, chunk);
  }

  #broken(): FileRejectedError | undefined {
    const { maxBytes, maxRatio, tooLarge } = this.#limits;
    if (this.bytes > maxBytes) return tooLarge();
    // The compressed count includes input gunzip has not turned into output yet: the ratio errs low.
    const compressed = this.#compressed.bytes;
    if (maxRatio && this.bytes > RATIO_CHECKED_AFTER_BYTES && this.bytes > maxRatio * compressed) {
      return new FileRejectedError(
        `gzip data expands more than ${maxRatio}× (maxExpansionRatio): ${compressed} compressed bytes had expanded to ${this.bytes} bytes when it was stopped; raise maxExpansionRatio for this dataset if the file is genuine`,
      );
    }
    return undefined;
  }
}

/**
 * Streams the original through gunzip into the file's expanded copy, handing the same pieces to `tap`
 * (the chunk planner; a drain when re-making): memory stays at a few upload parts and one piece,
 * whatever the size.
 * On any failure the upload is aborted and nothing is left under the copy's key.
 */
async function writeExpanded<T>(
  s3: S3Client,
  original: PinnedObject,
  fileId: number,
  limits: Limits,
  tap: (pieces: AsyncIterable<Uint8Array>) => Promise<T>,
): Promise<{ bytes: number; tapped: T }> {
  const key = expandedKey(fileId);
  const toUpload = new PassThrough();
  const toTap = new PassThrough();
  const upload = new Upload({
    client: s3,
    params: {
      Bucket: original.bucket,
      Key: key,
      Body: toUpload,
      Metadata: { [SOURCE_METADATA]: sourceTag(original) },
    },
    partSize: Math.max(MIN_PART_BYTES, Math.ceil(limits.maxBytes / MAX_PARTS)),
  });
  let uploaded = false;
  const compressed = new Counter();
  const guard = new ExpansionGuard(limits, compressed);
  const expanding = pipeline(
    await streamObject(s3, original),
    compressed,
    createGunzip(),
    guard,
    async function* (source) {
      for await (const piece of source as AsyncIterable<Buffer>) {
        // Every consumer takes each piece before the next is read: memory stays at one piece each.
        const a = toUpload.write(piece);
        const b = toTap.write(piece);
        if (!a) await new Promise((r) => toUpload.once('drain', r));
        if (!b) await new Promise((r) => toTap.once('drain', r));
      }
      toUpload.end();
      toTap.end();
    },
  );
  try {
    const [, tapped] = await Promise.all([
      expanding,
      tap(toTap),
      upload.done().then(() => {
        uploaded = true;
      }),
    ]);
    return { bytes: guard.bytes, tapped };
  } catch (err) {
    await upload.abort().catch(() => {});
    await abortParts(s3, upload, original.bucket, key);
    toTap.destroy();
    toUpload.destroy();
    if (uploaded) await deleteExpanded(s3, original.bucket, fileId).catch(() => {});
    throw asGzipError(err);
  }
}

/**
 * Deletes the parts an aborted upload stored, before the split reports its failure. lib-storage's
 * `abort()` only signals: its own AbortMultipartUpload goes out once the part in flight ends, after
 * this split may have moved on or its process ended, leaving the parts (a `dev` state folder's
 * `objects/_multipart`, a bucket's until its lifecycle rule). A part still in flight then finds no upload.
 */
async function abortParts(s3: S3Client, upload: Upload, bucket: string, key: string): Promise<void> {
  if (!upload.uploadId) return;
  await s3
    .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: upload.uploadId }))
    .catch(() => {});
}

/** Decompresses the object into `.dropload/expanded/<fileId>` while planning chunks on the same stream. */
export async function expandAndPlan(
  s3: S3Client,
  original: PinnedObject,
  fileId: number,
  dataset: Dataset,
): Promise<{ expanded: ChunkSource; plan: FilePlan }> {
  const limit = dataset.maxExpandedBytes;
  const { bytes, tapped } = await writeExpanded(
    s3,
    original,
    fileId,
    {
      maxBytes: limit,
      maxRatio: dataset.maxExpansionRatio,
      tooLarge: () =>
        new FileRejectedError(`file expands past maxExpandedBytes (${limit} bytes) when decompressed`),
    },
    (pieces) => planChunks(pieces, dataset),
  );
  return { expanded: { ...original, expandedBytes: bytes }, plan: tapped };
}

/**
 * Expands the pinned original again into the file's copy, after the first copy went missing. The
 * chunks were planned on `expandedBytes` bytes: any other count means the original is not what was
 * split, and the file fails with that reason rather than loading ranges of different bytes.
 */
async function remakeExpanded(s3: S3Client, source: ChunkSource, fileId: number): Promise<void> {
  const expected = source.expandedBytes ?? 0;
  const changed = (got: string) =>
    new FileRejectedError(
      `s3://${source.bucket}/${source.key} no longer expands to the ${expected} bytes its chunks were planned on (${got}) while its expanded copy was re-made; drop the file again`,
    );
  const { bytes } = await writeExpanded(
    s3,
    source,
    fileId,
    { maxBytes: expected, tooLarge: () => changed(`more than ${expected} bytes`) },
    drain,
  );
  if (bytes !== expected) {
    await deleteExpanded(s3, source.bucket, fileId).catch(() => {});
    throw changed(`${bytes} bytes`);
  }
}

/**
 * The expanded size of a gzip file split before the ledger recorded it: its copy's size if the copy is
 * there, else that of a copy re-made now. Either must reach the end of the file's last planned chunk.
 */
export async function adoptExpanded(
  s3: S3Client,
  original: PinnedObject,
  fileId: number,
  dataset: Dataset,
  plannedEnd: number,
): Promise<number> {
  const tooShort = (bytes: number) =>
    new FileRejectedError(
      `s3://${original.bucket}/${original.key} expands to ${bytes} bytes, short of the ${plannedEnd} its chunks were planned on; drop the file again`,
    );
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: original.bucket, Key: expandedKey(fileId) }));
    const bytes = head.ContentLength ?? 0;
    if (bytes >= plannedEnd) return bytes;
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
  const limit = dataset.maxExpandedBytes;
  const { bytes } = await writeExpanded(
    s3,
    original,
    fileId,
    {
      maxBytes: limit,
      tooLarge: () =>
        new FileRejectedError(`file expands past maxExpandedBytes (${limit} bytes) when decompressed`),
    },
    drain,
  );
  if (bytes < plannedEnd) {
    await deleteExpanded(s3, original.bucket, fileId).catch(() => {});
    throw tooShort(bytes);
  }
  return bytes;
}

/** Nothing to plan when re-making a copy: the pieces only go to the upload. */
async function drain(pieces: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const _piece of pieces) {
    // consumed
  }
}

/** One re-make per copy at a time in this process (several local workers, or one Lambda's batch). */
const remaking = new Map<string, Promise<void>>();

/**
 * Makes sure the file's expanded copy is there and is the one its chunks were planned on, re-making
 * it from the pinned original when it is missing or is not (a copy of another original at that key).
 */
export async function ensureExpanded(s3: S3Client, source: ChunkSource, fileId: number): Promise<void> {
  if (await copyMatches(s3, source, fileId)) return;
  const id = `${source.bucket}/${fileId}`;
  let running = remaking.get(id);
  if (!running) {
    running = remakeExpanded(s3, source, fileId).finally(() => remaking.delete(id));
    remaking.set(id, running);
  }
  await running;
}

/** No copy at the key (404), or one too short for the range asked (416: not the copy the chunks were planned on). */
function isMissing(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  return status === 404 || status === 416 || ['NoSuchKey', 'NotFound', 'InvalidRange'].includes(e.name ?? '');
}

async function copyMatches(s3: S3Client, source: ChunkSource, fileId: number): Promise<boolean> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: source.bucket, Key: expandedKey(fileId) }));
    return (
      head.ContentLength === source.expandedBytes && head.Metadata?.[SOURCE_METADATA] === sourceTag(source)
    );
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}

/**
 * Bytes [start, end) of the file's expanded copy, or undefined when the copy is missing or is not the
 * one the chunks were planned on (its size and original are checked in the same response as the bytes).
 */
export async function readExpandedRange(
  s3: S3Client,
  source: ChunkSource,
  fileId: number,
  start: number,
  end: number,
): Promise<Uint8Array | undefined> {
  if (end <= start) return new Uint8Array(0);
  try {
    const res = await s3.send(
      new GetObjectCommand({
        Bucket: source.bucket,
        Key: expandedKey(fileId),
        Range: `bytes=${start}-${end - 1}`,
      }),
    );
    const total = Number(res.ContentRange?.split('/')[1]);
    if (total !== source.expandedBytes || res.Metadata?.[SOURCE_METADATA] !== sourceTag(source)) {
      (res.Body as { destroy?: () => void } | undefined)?.destroy?.();
      return undefined;
    }
    return res.Body
      ? await collectBody(res.Body as AsyncIterable<Uint8Array>, end - start)
      : new Uint8Array(0);
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

/**
 * Deletes a file's expanded copy (once its chunks no longer need it). In a versioned bucket this
 * leaves a delete marker; the bucket's lifecycle rule for the prefix removes the old bytes.
 */
export async function deleteExpanded(s3: S3Client, bucket: string, fileId: number): Promise<void> {
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: expandedKey(fileId) }));
}
