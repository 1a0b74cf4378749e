import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { EXPANDED_PREFIX } from './bucket-layout.ts';
import { type FilePlan, planChunks } from './chunking.ts';
import type { Dataset } from './dataset.ts';
import { FileRejectedError } from './errors.ts';
import { headObject, type PinnedObject, readRange, streamObject } from './object-store.ts';
import { unquoteEtag } from './s3-events.ts';

/**
 * A gzip stream cannot be read from the middle, so a compressed file is expanded once, in the split
 * step, into a plain object beside it; its chunks are then byte ranges of that object and the load
 * workers read them exactly as they read an uncompressed file. The cost: one more pass of the
 * expanded bytes through S3 (an upload in the split step, and their storage until the lifecycle rule
 * for the `.dropload/` prefix removes them), and a split step bound by one core's gunzip speed.
 */

export const expandedKey = (fileId: number): string => `${EXPANDED_PREFIX}${fileId}`;

/** gzip's magic number; the key's suffix is not trusted either way. */
export async function isGzip(s3: S3Client, obj: PinnedObject, size: number): Promise<boolean> {
  if (size < 2) return false;
  const head = await readRange(s3, obj, 0, 2);
  return head[0] === 0x1f && head[1] === 0x8b;
}

class ExpansionLimit extends Transform {
  #seen = 0;
  readonly #limit: number;
  constructor(limit: number) {
    super();
    this.#limit = limit;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#limit) {
      done(
        new FileRejectedError(`file expands past maxExpandedBytes (${this.#limit} bytes) when decompressed`),
      );
      return;
    }
    done(null, chunk);
  }
}

/** Decompresses the object into `.dropload/expanded/<fileId>` while planning chunks on the same stream. */
export async function expandAndPlan(
  s3: S3Client,
  obj: PinnedObject,
  fileId: number,
  dataset: Dataset,
): Promise<{ expanded: PinnedObject; plan: FilePlan }> {
  const key = expandedKey(fileId);
  const toUpload = new PassThrough();
  const toPlan = new PassThrough();
  const upload = new Upload({ client: s3, params: { Bucket: obj.bucket, Key: key, Body: toUpload } });
  const expanding = pipeline(
    await streamObject(s3, obj),
    createGunzip(),
    new ExpansionLimit(dataset.maxExpandedBytes),
    async function* (source) {
      for await (const piece of source as AsyncIterable<Buffer>) {
        // Both consumers must take each piece before the next is read: memory stays at one piece each.
        const a = toUpload.write(piece);
        const b = toPlan.write(piece);
        if (!a) await new Promise((r) => toUpload.once('drain', r));
        if (!b) await new Promise((r) => toPlan.once('drain', r));
      }
      toUpload.end();
      toPlan.end();
    },
  );
  try {
    const [, plan, uploaded] = await Promise.all([expanding, planChunks(toPlan, dataset), upload.done()]);
    return { expanded: { bucket: obj.bucket, key, etag: unquoteEtag(uploaded.ETag ?? '') }, plan };
  } catch (err) {
    await upload.abort().catch(() => {});
    toPlan.destroy();
    toUpload.destroy();
    if (err instanceof FileRejectedError) throw err;
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('Z_') || /unexpected end of file|incorrect header check|invalid/i.test(String(err))) {
      throw new FileRejectedError(`gzip data is corrupt or truncated: ${(err as Error).message}`);
    }
    throw err;
  }
}

/** The expanded object of an already split file, pinned to its current ETag (for re-sending chunks). */
export async function expandedObject(s3: S3Client, bucket: string, fileId: number): Promise<PinnedObject> {
  const key = expandedKey(fileId);
  const head = await headObject(s3, bucket, key);
  return { bucket, key, etag: head.etag };
}
