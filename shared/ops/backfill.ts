import { type _Object, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Kysely } from 'kysely';
import { notificationFor, type ObjectRef, unquoteEtag } from '../aws/s3-events.ts';
import { ConfigError, TransientError } from '../core/errors.ts';
import { withoutNul } from '../ledger/ledger.ts';
import { type Database, FINAL_STATES } from '../ledger/schema.ts';
import { filesWithWaitingRows } from '../ledger/waiting.ts';
import { retryNow } from '../load/retry-chain.ts';
import type { Log } from '../pipeline/services.ts';

export interface BackfillDeps {
  s3: S3Client;
  sqs: SQSClient;
  db: Kysely<Database>;
  logger: Log;
}

export interface BackfillOptions {
  bucket: string;
  ingestQueueUrl: string;
  /** The datasets' prefixes: only objects under them can load. */
  datasetPrefixes: string[];
  /** Narrows the listing to keys under this prefix. */
  prefix?: string;
  /** Only objects last modified at or after this time. */
  since?: Date;
  dryRun?: boolean;
  /**
   * Also announce versions the ledger has but never finished (their messages were lost, say with an
   * emulator that keeps nothing across a restart): the split step re-sends the chunks not yet loaded.
   */
  resume?: boolean;
  /**
   * The chunk queue: with `resume`, rows waiting for their parents get a retry there now (their retry
   * message may have been lost too). Without it, waiting rows are left to the sweep.
   */
  chunkQueueUrl?: string;
  /** Region written into the notifications, as S3 would. */
  region?: string;
}

export interface BackfillItem {
  ref: ObjectRef;
  lastModified?: Date;
  /** `seen`: the ledger already has this key and ETag. */
  action: 'enqueued' | 'would-enqueue' | 'seen';
  /** Resuming: the ledger has this version, unfinished (else, when (would be) enqueued, it is new to it). */
  unfinished?: true;
}

export interface BackfillResult {
  prefixes: string[];
  items: BackfillItem[];
  /** Objects the ledger has never seen: enqueued, or under `dryRun` only listed. */
  unseen: number;
  seen: number;
  /** With `resume`: the files whose waiting rows got a retry now (under `dryRun`: would get one). */
  redriven: { fileId: number; key: string }[];
}

/**
 * Which prefixes to list: each dataset prefix, narrowed to `--prefix` where it lies inside one, and
 * without prefixes nested in another listed one (each key is listed once).
 */
export function listingPrefixes(datasetPrefixes: string[], narrow?: string): string[] {
  const candidates = datasetPrefixes.flatMap((d) => {
    if (!narrow || d.startsWith(narrow)) return [d];
    return narrow.startsWith(d) ? [narrow] : [];
  });
  const unique = [...new Set(candidates)];
  const outermost = unique.filter((p) => !unique.some((q) => q !== p && p.startsWith(q)));
  if (outermost.length === 0) {
    throw new ConfigError(
      `--prefix ${narrow}: no dataset prefix lies under or above it (dataset prefixes: ${datasetPrefixes.join(', ')})`,
    );
  }
  return outermost.sort();
}

async function* listObjects(s3: S3Client, bucket: string, prefix: string): AsyncGenerator<_Object[]> {
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    yield page.Contents ?? [];
    token = page.NextContinuationToken;
  } while (token);
}

/** The `key\0etag` pairs of a page the ledger has registered, each with whether that version is finished. */
async function ledgerVersions(
  db: Kysely<Database>,
  bucket: string,
  keys: string[],
): Promise<Map<string, boolean>> {
  if (keys.length === 0) return new Map();
  const rows = await db
    .selectFrom('dropload.file')
    .select(['key', 'etag'])
    // Finished: its outcome is final. A failed file is, whether or not rows of it loaded: resuming it
    // would only fail it again (an empty or truncated file) and rewrite its receipt. A changed object is
    // another ETag, new to the ledger, and loads as its own file.
    .select((eb) => eb('state', 'in', FINAL_STATES).as('finished'))
    .where('bucket', '=', bucket)
    .where('key', 'in', keys.map(withoutNul))
    .execute();
  const versions = new Map<string, boolean>();
  for (const r of rows) versions.set(`${r.key}\0${r.etag}`, Boolean(r.finished));
  return versions;
}

const SQS_BATCH = 10;

async function enqueue(sqs: SQSClient, queueUrl: string, refs: ObjectRef[], region?: string): Promise<void> {
  for (let i = 0; i < refs.length; i += SQS_BATCH) {
    const res = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: refs
          .slice(i, i + SQS_BATCH)
          .map((ref, j) => ({ Id: String(j), MessageBody: notificationFor(ref, region) })),
      }),
    );
    if (res.Failed && res.Failed.length > 0) {
      throw new TransientError(
        `ingest queue refused ${res.Failed.length} message(s): ${res.Failed[0]?.Message}`,
      );
    }
  }
}

/**
 * Announces the objects the pipeline never saw (uploaded while notifications were off, or before
 * the stack existed) by sending the ingest queue the event S3 would have sent. Identity is key+ETag:
 * ListObjectsV2 gives no version ids (and not every endpoint has ListObjectVersions), so the split
 * pins the current version itself. Sending an object twice is harmless: the ledger splits a version once.
 */
export async function backfill(deps: BackfillDeps, options: BackfillOptions): Promise<BackfillResult> {
  const prefixes = listingPrefixes(options.datasetPrefixes, options.prefix);
  const items: BackfillItem[] = [];
  for (const prefix of prefixes) {
    for await (const page of listObjects(deps.s3, options.bucket, prefix)) {
      const fresh = page.filter(
        (o) => o.Key && !o.Key.endsWith('/') && (!options.since || (o.LastModified ?? 0) >= options.since),
      );
      const versions = await ledgerVersions(
        deps.db,
        options.bucket,
        fresh.map((o) => o.Key as string),
      );
      const pageItems = fresh.map((o): BackfillItem => {
        const ref = {
          bucket: options.bucket,
          key: o.Key as string,
          etag: unquoteEtag(o.ETag ?? ''),
          size: o.Size,
        };
        // The ledger stores keys as it can (see withoutNul): compare them that way.
        const finished = versions.get(`${withoutNul(ref.key)}\0${ref.etag}`);
        // Resuming re-announces what may still load: the versions not finished, as well as new ones.
        const seen = options.resume ? finished === true : finished !== undefined;
        return {
          ref,
          lastModified: o.LastModified,
          action: seen ? 'seen' : options.dryRun ? 'would-enqueue' : 'enqueued',
          ...(!seen && finished === false ? { unfinished: true as const } : {}),
        };
      });
      const unseen = pageItems.filter((i) => i.action === 'enqueued').map((i) => i.ref);
      await enqueue(deps.sqs, options.ingestQueueUrl, unseen, options.region);
      items.push(...pageItems);
    }
  }
  const seen = items.filter((i) => i.action === 'seen').length;
  const unseen = items.length - seen;
  const redriven = options.resume ? await redriveWaiting(deps, options) : [];
  deps.logger.info('backfill', {
    prefixes,
    unseen,
    seen,
    redriven: redriven.length,
    dryRun: Boolean(options.dryRun),
  });
  return { prefixes, items, unseen, seen, redriven };
}

/** Resuming: waiting rows get a retry now (a new chain each: their old message may be gone too). */
async function redriveWaiting(deps: BackfillDeps, options: BackfillOptions) {
  if (!options.chunkQueueUrl) return [];
  const files = (await filesWithWaitingRows(deps.db)).filter((f) => f.bucket === options.bucket);
  if (options.dryRun) return files.map((f) => ({ fileId: f.id, key: f.key }));
  const steps = await retryNow(
    { ...deps, chunkQueueUrl: options.chunkQueueUrl },
    files.map((f) => f.id),
  );
  const sent = new Set(steps.map((s) => s.fileId));
  return files.filter((f) => sent.has(f.id)).map((f) => ({ fileId: f.id, key: f.key }));
}
