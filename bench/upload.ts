import { createReadStream } from 'node:fs';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { type ObjectRef, unquoteEtag } from '../shared/s3-events.ts';

/** Under the embedded emulator's 11 MiB request limit, over S3's 5 MiB minimum part. */
const PART_BYTES = 8 * 1024 * 1024;

async function* parts(file: string): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let size = 0;
  for await (const piece of createReadStream(file, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
    pending.push(piece);
    size += piece.length;
    if (size >= PART_BYTES) {
      yield Buffer.concat(pending);
      pending = [];
      size = 0;
    }
  }
  if (size > 0 || pending.length === 0) yield Buffer.concat(pending);
}

/**
 * Uploads a file in parts: the runner's single PutObject is refused by the embedded emulator above
 * 11 MiB, and the benchmark file is ~110 MB.
 */
export async function uploadMultipart(
  s3: S3Client,
  bucket: string,
  key: string,
  file: string,
): Promise<ObjectRef> {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const done: { ETag: string; PartNumber: number }[] = [];
  let size = 0;
  for await (const body of parts(file)) {
    const PartNumber = done.length + 1;
    const res = await s3.send(
      new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber, Body: body }),
    );
    done.push({ ETag: res.ETag ?? '', PartNumber });
    size += body.length;
  }
  const res = await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: bucket,
      Key: key,
      UploadId,
      MultipartUpload: { Parts: done },
    }),
  );
  return { bucket, key, etag: unquoteEtag(res.ETag ?? ''), versionId: res.VersionId, size };
}
