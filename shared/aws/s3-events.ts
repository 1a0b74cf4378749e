import { S3Schema } from '@aws-lambda-powertools/parser/schemas/s3';
import { z } from 'zod';
import { messageBody } from './messages.ts';

/** One object version the split step is asked to load. */
export interface ObjectRef {
  bucket: string;
  key: string;
  /** Without quotes; may be absent in hand-made events. */
  etag?: string;
  versionId?: string;
  size?: number;
  /** S3's per-key event order (hex); present in S3's own PUT/POST/copy/multipart events. */
  sequencer?: string;
}

// Only the parts of Powertools' S3 record that loading depends on: replayed, backfilled and
// LocalStack events need not carry request ids or source IPs to be valid work.
const S3Record = S3Schema.shape.Records.element;
const LoadableRecord = z.object({
  eventName: S3Record.shape.eventName,
  s3: z.object({
    bucket: S3Record.shape.s3.shape.bucket.pick({ name: true }),
    object: S3Record.shape.s3.shape.object,
  }),
});
const NotificationBody = z.union([
  z.object({ Records: z.array(LoadableRecord) }),
  // S3 sends this once when notifications are configured; there is nothing to load.
  z.object({ Event: z.literal('s3:TestEvent') }).transform(() => ({ Records: [] })),
]);

/** S3 URL-encodes keys in notifications, with spaces as `+`. */
export function decodeS3Key(encoded: string): string {
  return decodeURIComponent(encoded.replace(/\+/g, ' '));
}

export function encodeS3Key(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/');
}

export const unquoteEtag = (etag: string): string => etag.replace(/^"|"$/g, '');

/** The object-created references in one SQS message body (an S3 event notification). */
export function objectRefsFromBody(body: string): ObjectRef[] {
  const parsed = NotificationBody.parse(JSON.parse(body));
  return parsed.Records.filter((r) => r.eventName.startsWith('ObjectCreated:')).map((r) => ({
    bucket: r.s3.bucket.name,
    key: decodeS3Key(r.s3.object.key),
    etag: r.s3.object.eTag ? unquoteEtag(r.s3.object.eTag) : undefined,
    versionId: r.s3.object.versionId || undefined,
    size: r.s3.object.size,
    sequencer: r.s3.object.sequencer || undefined,
  }));
}

let lastSequencer = 0;

/** A made-up event's sequencer, in S3's form (hex): increasing within this process, as S3's are for one key. */
function madeUpSequencer(): string {
  lastSequencer = Math.max(Date.now(), lastSequencer + 1);
  return lastSequencer.toString(16).toUpperCase().padStart(16, '0');
}

/** An S3 event notification as S3 itself would send it, for emulators without notifications and for backfill. */
export function notificationFor(
  ref: ObjectRef,
  region = 'us-east-1',
  eventName = 'ObjectCreated:Put',
): string {
  const record = {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: region,
    eventTime: new Date().toISOString(),
    eventName,
    userIdentity: { principalId: 'dropload' },
    requestParameters: { sourceIPAddress: '127.0.0.1' },
    responseElements: { 'x-amz-request-id': 'dropload', 'x-amz-id-2': 'dropload' },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 'dropload',
      bucket: {
        name: ref.bucket,
        ownerIdentity: { principalId: 'dropload' },
        arn: `arn:aws:s3:::${ref.bucket}`,
      },
      object: {
        key: encodeS3Key(ref.key),
        size: ref.size ?? 0,
        ...(ref.etag ? { eTag: ref.etag } : {}),
        ...(ref.versionId ? { versionId: ref.versionId } : {}),
        sequencer: ref.sequencer ?? madeUpSequencer(),
      },
    },
  };
  return messageBody({ Records: [record] });
}
