import { gzipSync } from 'node:zlib';
import { GetObjectCommand, NoSuchKey, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { PurgeQueueCommand } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { overview } from '../../cli/console-api.ts';
import { renderReports, statusReports } from '../../cli/report.ts';
import { unquoteEtag } from '../../shared/aws/s3-events.ts';
import type { FileRow } from '../../shared/ledger/schema.ts';
import { backfill } from '../../shared/ops/backfill.ts';
import type { Receipt } from '../../shared/pipeline/receipts.ts';
import {
  backfillDeps,
  backfillOptions,
  csv,
  drop,
  expectedSum,
  expectLoadedOnce,
  fileRow,
  finished,
  type Started,
  type StartOptions,
  startFaultPipeline,
  tableState,
} from '../support/faults.ts';

/**
 * A file whose work stopped without an outcome (a worker killed mid-chunk, chunk messages lost with a
 * stack that stopped) and started again says so where an operator looks: `status` (and `--json`), the
 * console and the receipt, with when and how long it sat idle; its rows still load exactly once.
 */

type Wrap = NonNullable<StartOptions['wrap']>;

let current: Started | undefined;
afterEach(async () => {
  await current?.stop();
  current = undefined;
});

/** Load workers that die, without a trace in the ledger, on their first `deaths` invocations. */
function dyingLoads(deaths: number): { wrap: Wrap; died: () => number } {
  let died = 0;
  const wrap: Wrap = (fn, handler) =>
    fn === 'split'
      ? handler
      : async (event, context) => {
          if (died < deaths) {
            died++;
            throw new Error('load worker killed mid-chunk');
          }
          return handler(event, context);
        };
  return { wrap, died: () => died };
}

/** `status` as it prints the file's lines, and the file row they come from. */
async function statusOf(s: Started, key: string) {
  const reports = (await statusReports(s.check, 10)).filter((r) => r.key === key);
  return { text: renderReports(reports).split('\n'), report: reports[0] };
}

/** The file's receipt, once written (just after the commit that finished the file). */
async function receiptOf(s3: S3Client, bucket: string, key: string): Promise<Receipt> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `reports/${key}.json` }));
      return JSON.parse((await res.Body?.transformToString()) ?? '') as Receipt;
    } catch (err) {
      if (!(err instanceof NoSuchKey) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** What the ledger says, in the words `status` must print them. */
function expectedLine(file: FileRow): string {
  const seconds =
    Math.round((new Date(file.finished_at ?? 0).getTime() - file.created_at.getTime()) / 100) / 10;
  const idle = Math.round(file.idle_seconds * 10) / 10;
  const at = new Date(file.resumed_at ?? 0).toISOString().slice(11, 19);
  return `${file.key}: resumed 1× after an interruption, at ${at} UTC; of its ${seconds.toFixed(1)} s, ${idle.toFixed(1)} were idle before it and ${(seconds - idle).toFixed(1)} active; nothing to do: no row is lost or loaded twice`;
}

describe('a file resumed after an interruption says so', () => {
  it('a load worker killed mid-chunk: its chunks come back after their visibility timeout, counted as one resume', async () => {
    const loads = dyingLoads(1);
    current = await startFaultPipeline({ wrap: loads.wrap });
    const s = current;
    const key = 'incoming/rows/killed.csv';
    await drop(s, key, csv(1, 6000, [10]));
    const file = await expectLoadedOnce(s, key, 1, 6000, [10]);
    expect(loads.died()).toBe(1);
    // The dead invocation's chunks (one or several) came back together: one interruption.
    expect(file.resumes).toBe(1);
    // The file sat idle for some of the time the dead worker's messages were invisible (2 s).
    expect(file.idle_seconds).toBeGreaterThan(0);

    const { text, report } = await statusOf(s, key);
    expect(text).toEqual([
      expect.stringMatching(/^file +dataset +state +chunks +read +loaded +waiting +rejected +open +seconds$/),
      expect.stringMatching(
        new RegExp(
          `^${key} +rows +loaded +${file.chunk_count}/${file.chunk_count} +6000 +5999 +0 +1 +1 +\\d+\\.\\d$`,
        ),
      ),
      '',
      expectedLine(file),
    ]);
    const resumed = {
      times: 1,
      lastAt: new Date(file.resumed_at ?? 0).toISOString(),
      idleSeconds: Math.round(file.idle_seconds * 10) / 10,
    };
    expect(report?.resumed).toEqual(resumed);
    expect((await receiptOf(s.p.stack.s3, s.p.stack.bucket, key)).resumed).toEqual(resumed);
    const consoleFile = (
      await overview(
        { db: s.check, sqs: s.p.stack.sqs, logger: s.p.deps.logger, queues: async () => s.p.stack.chunks },
        10,
      )
    ).files.find((f) => f.key === key);
    expect(consoleFile?.resumed).toEqual(resumed);
    expect(consoleFile?.notes).toEqual([expectedLine(file)]);

    // A file no worker died on says nothing of the kind.
    await drop(s, 'incoming/rows/calm.csv', csv(6001, 6100));
    const calm = await finished(s, 'incoming/rows/calm.csv');
    expect([calm.state, calm.resumes, calm.resumed_at, calm.idle_seconds]).toEqual(['loaded', 0, null, 0]);
    expect((await statusOf(s, 'incoming/rows/calm.csv')).text).toHaveLength(2);
    expect((await receiptOf(s.p.stack.s3, s.p.stack.bucket, 'incoming/rows/calm.csv')).resumed).toBeNull();
  });

  it('chunk messages lost mid-load (a stack that stopped): `backfill --resume` resumes it, counted once', async () => {
    // Every load worker is held, then dies, once the queue is purged: the file is left loading.
    let hold = true;
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const wrap: Wrap = (fn, handler) =>
      fn === 'split'
        ? handler
        : async (event, context) => {
            if (hold) {
              await gate;
              throw new Error('load worker killed with its stack');
            }
            return handler(event, context);
          };
    current = await startFaultPipeline({ wrap });
    const s = current;
    const key = 'incoming/rows/lost.csv';
    await drop(s, key, csv(1, 6000));
    await finished(s, key, 60_000, (f) => f.state === 'loading');
    await s.p.stack.sqs.send(new PurgeQueueCommand({ QueueUrl: s.p.stack.chunks.url }));
    release();
    await new Promise((r) => setTimeout(r, 300));
    hold = false;
    expect((await fileRow(s, key))?.resumes).toBe(0);

    const resumed = await backfill(backfillDeps(s), backfillOptions(s, true));
    expect(resumed.items.map((i) => [i.ref.key, i.action])).toEqual([[key, 'enqueued']]);
    const file = await finished(s, key);
    expect([file.state, file.rows_read, file.rows_inserted, file.resumes]).toEqual(['loaded', 6000, 6000, 1]);
    expect(await tableState(s)).toEqual({ n: 6000, sum: expectedSum(1, 6000) });
    expect((await statusOf(s, key)).text.slice(2)).toEqual(['', expectedLine(file)]);
    expect((await receiptOf(s.p.stack.s3, s.p.stack.bucket, key)).resumed?.times).toBe(1);
    // A finished file announced again is a duplicate, not a resume.
    await drop(s, key, csv(1, 6000));
    await new Promise((r) => setTimeout(r, 1000));
    expect((await fileRow(s, key))?.resumes).toBe(1);
  });

  it('a failed file is final: `backfill --resume` (a restarted `dev`) does not announce it again; a changed object loads', async () => {
    current = await startFaultPipeline();
    const s = current;
    const put = async (key: string, body: Uint8Array | string) => {
      const res = await s.p.stack.s3.send(
        new PutObjectCommand({ Bucket: s.p.stack.bucket, Key: key, Body: body }),
      );
      await s.p.announce({
        bucket: s.p.stack.bucket,
        key,
        etag: unquoteEtag(res.ETag ?? ''),
        size: body.length,
      });
    };
    const gz = gzipSync(Buffer.from(csv(1, 2000)));
    await put('incoming/rows/empty.csv', '');
    await put('incoming/rows/cut.csv.gz', gz.subarray(0, gz.length >> 1));
    const before = await Promise.all(
      ['incoming/rows/empty.csv', 'incoming/rows/cut.csv.gz'].map((key) => finished(s, key)),
    );
    expect(before.map((f) => [f.key, f.state, f.chunks_done])).toEqual([
      ['incoming/rows/empty.csv', 'failed', 0],
      ['incoming/rows/cut.csv.gz', 'failed', 0],
    ]);

    const resumed = await backfill(backfillDeps(s), backfillOptions(s, true));
    expect(resumed.items.map((i) => [i.ref.key, i.action])).toEqual([
      ['incoming/rows/cut.csv.gz', 'seen'],
      ['incoming/rows/empty.csv', 'seen'],
    ]);
    await new Promise((r) => setTimeout(r, 1000));
    const after = await Promise.all(before.map((f) => fileRow(s, f.key)));
    // Not split again: the same row, the same finish, no resume.
    expect(after.map((f) => [f?.id, f?.state, f?.finished_at, f?.resumes])).toEqual(
      before.map((f) => [f.id, 'failed', f.finished_at, 0]),
    );

    // The object fixed in place is another version: announced (new to the ledger), and it loads.
    await s.p.stack.s3.send(
      new PutObjectCommand({ Bucket: s.p.stack.bucket, Key: 'incoming/rows/empty.csv', Body: csv(1, 10) }),
    );
    const fixed = await backfill(backfillDeps(s), backfillOptions(s, true));
    expect(fixed.items.map((i) => [i.ref.key, i.action, i.unfinished])).toEqual([
      ['incoming/rows/cut.csv.gz', 'seen', undefined],
      ['incoming/rows/empty.csv', 'enqueued', undefined],
    ]);
    const loaded = await finished(
      s,
      'incoming/rows/empty.csv',
      60_000,
      (f) => f.id !== before[0]?.id && f.state === 'loaded',
    );
    expect([loaded.rows_inserted, loaded.resumes]).toEqual([10, 0]);
  });
});
