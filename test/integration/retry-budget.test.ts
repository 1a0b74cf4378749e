import { GetObjectCommand } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { renderReports, reportOf } from '../../cli/report.ts';
import { RETRY_POLICY } from '../../shared/core/backoff.ts';
import { replayDeadLetters } from '../../shared/ops/replay.ts';
import type { Receipt } from '../../shared/pipeline/receipts.ts';
import {
  accountedFor,
  csv,
  depth,
  drop,
  expectedSum,
  finished,
  type Started,
  type StartOptions,
  startFaultPipeline,
  tableState,
} from '../support/faults.ts';

/**
 * Retries are bounded in time, not in luck: a message that keeps failing is retried for the policy's
 * budget with its reason noted on the file, then parked with its file `stalled` (reason and replay
 * command in `status` and the receipt); a database outage is outlived without a replay, even one
 * longer than the budget, because a message is only parked once the ledger can say so.
 */

let started: Started[] = [];
async function start(options: StartOptions = {}): Promise<Started> {
  const s = await startFaultPipeline(options);
  started.push(s);
  return s;
}
afterEach(async () => {
  for (const s of started) await s.stop();
  started = [];
});

/** The file's receipt once it says `state` (it is written just after the ledger moves). */
async function receipt(s: Started, key: string, state: string): Promise<Receipt> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await s.p.stack.s3
      .send(new GetObjectCommand({ Bucket: s.p.stack.bucket, Key: `reports/${key}.json` }))
      .catch(() => undefined);
    const body = res ? (JSON.parse(await (res.Body?.transformToString() ?? '{}')) as Receipt) : undefined;
    if (body?.state === state || Date.now() > deadline) return body as Receipt;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('retry budget', () => {
  it('a permanent fault that reads as transient (55P03) stalls its file with the reason and the replay command; a replay after the fix loads it', async () => {
    const s = await start();
    const key = 'incoming/locked/l.csv';
    await drop(s, key, 'id\n1\n2\n3\n');

    // While it is retried, the file says so: which delivery failed, of how many, and why.
    const retrying = await finished(s, key, 20_000, (f) => f.error !== null);
    expect(retrying.state).toBe('loading');
    expect(retrying.error).toMatch(
      /^chunk 0: delivery [1-4] of 5 failed; next try within 1 s: error: could not obtain lock on relation "fault_locked"$/,
    );
    expect(renderReports([reportOf(retrying)])).toContain(`${key}: retrying: chunk 0: delivery`);

    const stalled = await finished(s, key, 30_000, (f) => f.state === 'stalled');
    const reason =
      'chunk 0: failed 5 deliveries over at least 4 s; its message is in the dead-letter queue: error: could not obtain lock on relation "fault_locked"';
    const replay = `npx dropload replay --queue chunks --file "${key}"`;
    expect(stalled.error).toBe(reason);
    const report = reportOf(stalled);
    expect(report.action).toBe(replay);
    expect(renderReports([report])).toContain(
      `${key}: STALLED: ${reason}\n${key}: once the cause is fixed, run: ${replay}`,
    );
    const stalledReceipt = await receipt(s, key, 'stalled');
    expect([stalledReceipt.state, stalledReceipt.error, stalledReceipt.action]).toEqual([
      'stalled',
      reason,
      replay,
    ]);
    const chunk = await s.check
      .selectFrom('dropload.chunk')
      .select(['state', 'attempts'])
      .where('file_id', '=', stalled.id)
      .executeTakeFirstOrThrow();
    expect(chunk).toEqual({ state: 'dead', attempts: 5 });
    const deadline = Date.now() + 10_000;
    while ((await depth(s, s.p.stack.chunks.dlqUrl)) < 1 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 200));
    expect(await depth(s, s.p.stack.chunks.dlqUrl)).toBe(1);

    // The operator fixes the cause and replays: the file loads, and nothing of the old error stays.
    await sql`update fault_switch set refuse = false`.execute(s.check);
    const replayed = await replayDeadLetters(
      { sqs: s.p.stack.sqs, logger: s.p.deps.logger },
      { queue: 'chunks', sourceUrl: s.p.stack.chunks.url, dlqUrl: s.p.stack.chunks.dlqUrl, file: key },
    );
    expect(replayed.mode === 'messages' && replayed.moved).toBe(1);
    const loaded = await finished(s, key);
    expect([loaded.state, loaded.error, loaded.rows_read, loaded.rows_inserted]).toEqual([
      'loaded',
      null,
      3,
      3,
    ]);
    const done = await receipt(s, key, 'loaded');
    expect([done.state, done.error, done.action]).toEqual(['loaded', null, null]);
    const n = await sql<{ n: number }>`select count(*)::int as n from fault_locked`.execute(s.check);
    expect(n.rows[0]?.n).toBe(3);
    expect(await depth(s, s.p.stack.chunks.dlqUrl)).toBe(0);
  });

  it('a database outage longer than the whole retry budget: nothing is parked unnoted, and every file loads exactly once it is back', async () => {
    const s = await start();
    // One file mid-load when the database goes, one dropped while it is gone (its split fails too).
    await drop(s, 'incoming/rows/before.csv', csv(1, 20000, [3]));
    await finished(s, 'incoming/rows/before.csv', 20_000, (f) => f.chunks_done > 0);
    s.proxy.down();
    await drop(s, 'incoming/rows/during.csv', csv(20001, 23000));
    // Three budgets long: every message spends its five deliveries while the ledger cannot hear of it.
    await new Promise((r) => setTimeout(r, 12_000));
    expect(await depth(s, s.p.stack.chunks.dlqUrl)).toBe(0);
    expect(await depth(s, s.p.stack.ingest.dlqUrl)).toBe(0);
    s.proxy.up();
    const before = await finished(s, 'incoming/rows/before.csv');
    const during = await finished(s, 'incoming/rows/during.csv');
    expect([
      before.state,
      before.rows_read,
      before.rows_inserted,
      before.rows_rejected,
      before.error,
    ]).toEqual(['loaded', 20000, 19999, 1, null]);
    expect([during.state, during.rows_read, during.rows_inserted, during.error]).toEqual([
      'loaded',
      3000,
      3000,
      null,
    ]);
    expect(await tableState(s)).toEqual({ n: 22999, sum: expectedSum(1, 23000, [3]) });
    await accountedFor(s, before);
    await accountedFor(s, during);
    expect(await depth(s, s.p.stack.chunks.dlqUrl)).toBe(0);
    expect(await depth(s, s.p.stack.ingest.dlqUrl)).toBe(0);
  }, 120_000);

  it('database outages of 10 s, 30 s and 120 s under the real retry policy end exact, without a replay', async () => {
    // Three pipelines side by side, each with its own cut-able connection; the first resets the database.
    const outages = [10, 30, 120];
    const pipelines: Started[] = [];
    for (const [i] of outages.entries())
      pipelines.push(await start({ retry: RETRY_POLICY, keepDatabase: i > 0 }));
    await Promise.all(
      outages.map(async (seconds, i) => {
        const s = pipelines[i] as Started;
        const from = i * 100_000 + 1;
        const key = `incoming/rows/outage-${seconds}s.csv`;
        await drop(s, key, csv(from, from + 9999));
        await finished(s, key, 20_000, (f) => f.chunks_done > 0);
        s.proxy.down();
        await new Promise((r) => setTimeout(r, seconds * 1000));
        s.proxy.up();
        // After the outage the next delivery comes within the policy's cap (60 s).
        const file = await finished(s, key, 150_000);
        expect([file.state, file.rows_read, file.rows_inserted, file.error]).toEqual([
          'loaded',
          10000,
          10000,
          null,
        ]);
        expect(await tableState(s, from, from + 9999)).toEqual({
          n: 10000,
          sum: expectedSum(from, from + 9999),
        });
        await accountedFor(s, file);
        expect(await depth(s, s.p.stack.chunks.dlqUrl)).toBe(0);
        const dead = await s.p.stack.sqs.send(
          new ReceiveMessageCommand({ QueueUrl: s.p.stack.ingest.dlqUrl, WaitTimeSeconds: 0 }),
        );
        expect(dead.Messages ?? []).toEqual([]);
      }),
    );
  }, 360_000);
});
