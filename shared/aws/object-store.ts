import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { FileRejectedError, OverwrittenError } from '../core/errors.ts';
import { unquoteEtag } from './s3-events.ts';

export interface PinnedObject {
  bucket: string;
  key: string;
  etag: string;
  versionId?: string;
}

export interface ObjectHead {
  size: number;
  etag: string;
  versionId?: string;
  /** S3's Last-Modified of this version (whole seconds). */
  lastModified?: Date;
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** S3 says the pinned version is gone or changed: a fact about the file, not a reason to retry. */
function asFileError(err: unknown, obj: PinnedObject): unknown {
  const status = statusOf(err);
  const name = (err as Error).name;
  if (status === 404 || name === 'NoSuchKey' || name === 'NoSuchVersion' || name === 'NotFound') {
    return new FileRejectedError(
      `s3://${obj.bucket}/${obj.key} no longer exists (deleted or renamed before it was read)`,
    );
  }
  if (status === 412 || name === 'PreconditionFailed') {
    // S3 fails no unconditional HEAD so; the local emulator does when a file it reads where it lies
    // (`run`'s, see local/linked-objects.ts) changed in place: the version announced is gone.
    if (!obj.etag)
      return new FileRejectedError(
        `s3://${obj.bucket}/${obj.key} changed while it was being loaded: the version announced is gone`,
      );
    return new OverwrittenError(
      `s3://${obj.bucket}/${obj.key} was overwritten before all of it was read (ETag ${obj.etag} is gone); the new version loads as its own file`,
    );
  }
  return err;
}

export async function headObject(
  s3: S3Client,
  bucket: string,
  key: string,
  versionId?: string,
): Promise<ObjectHead> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    return {
      size: head.ContentLength ?? 0,
      etag: unquoteEtag(head.ETag ?? ''),
      versionId: head.VersionId ?? versionId,
      lastModified: head.LastModified,
    };
  } catch (err) {
    throw asFileError(err, { bucket, key, etag: '', versionId });
  }
}

/** A GET pinned to the version that was split (ETag, and version id where the bucket keeps them). */
async function getPinned(s3: S3Client, obj: PinnedObject, range?: string) {
  try {
    const res = await s3.send(
      new GetObjectCommand({
        Bucket: obj.bucket,
        Key: obj.key,
        VersionId: obj.versionId,
        IfMatch: `"${obj.etag}"`,
        Range: range,
      }),
    );
    return res.Body as AsyncIterable<Uint8Array> & { transformToByteArray(): Promise<Uint8Array> };
  } catch (err) {
    throw asFileError(err, obj);
  }
}

/** The pinned object's bytes as a stream. */
export async function streamObject(s3: S3Client, obj: PinnedObject): Promise<AsyncIterable<Uint8Array>> {
  return getPinned(s3, obj);
}

/** Bytes [start, end) of the pinned object, in one ranged GET. */
export async function readRange(
  s3: S3Client,
  obj: PinnedObject,
  start: number,
  end: number,
): Promise<Uint8Array> {
  if (end <= start) return new Uint8Array(0);
  const body = await getPinned(s3, obj, `bytes=${start}-${end - 1}`);
  try {
    return await collectBody(body, end - start);
  } catch (err) {
    throw asFileError(err, obj);
  }
}

/**
 * A response body's bytes, copied as they arrive into one buffer of the `expected` length: the SDK's
 * `transformToByteArray` keeps every piece and then concatenates them, holding a chunk's bytes twice
 * (8 MiB more at a load worker's peak; issue 14). A body longer than expected still reads whole.
 */
export async function collectBody(body: AsyncIterable<Uint8Array>, expected: number): Promise<Uint8Array> {
  let out = Buffer.allocUnsafeSlow(expected);
  let length = 0;
  for await (const piece of body) {
    if (length + piece.length > out.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(out.length * 2, length + piece.length));
      out.copy(grown, 0, 0, length);
      out = grown;
    }
    out.set(piece, length);
    length += piece.length;
  }
  return length === out.length ? out : out.subarray(0, length);
}
