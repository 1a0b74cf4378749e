import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PurgeQueueCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmbeddedEmulator } from '../../local/embedded-emulator.ts';
import { backfill } from '../../shared/ops/backfill.ts';
import {
  accountedFor,
  backfillDeps,
  backfillOptions,
  csv,
  depth,
  drop,
  expectedSum,
  expectLoadedOnce,
  finished,
  type Started,
  type StartOptions,
  startFaultPipeline,
  tableState,
} from '../support/faults.ts';

/**
 * The fault suite: each test breaks something real (a worker dying after commit, the database
 * refusing or dropping connections, poison messages) while files load, then checks the table holds
 * exactly the expected rows, every line is accounted for, every file finished, and the DLQs hold
 * only what they should.
 */

let current: Started | undefined;
async function start(options: StartOptions = {}): Promise<Started> {
  current = await startFaultPipeline(options);
  return current;
}
async function cleanup() {
  await current?.stop();
  current = undefined;
}
afterEach(cleanup);

/** fauxqs with its state in SQLite, so a restart keeps queues, in-flight messages and objects. */
async function persistentEmulator(stateDir: string, port = 0) {
  const emulator = await startEmbeddedEmulator({ port, stateDir });
  return { ...emulator, address: emulator.endpoint, port: emulator.address.port };
}

describe('fault suite', () => {
  it('the S3/SQS endpoint restarts mid-load: messages and objects survive, the file finishes once', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'dropload-fauxqs-'));
    let emulator = await persistentEmulator(dataDir);
    const port = emulator.port;
    try {
      current = await start({ endpoint: emulator.address });
      const s = current;
      await drop(s, 'incoming/rows/emulator.csv', csv(1, 20000, [5]));
      for (;;) {
        const f = await s.check
          .selectFrom('dropload.file')
          .select(['chunks_done', 'chunk_count'])
          .where('key', '=', 'incoming/rows/emulator.csv')
          .executeTakeFirst();
        if (f && f.chunks_done > 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await emulator.stop();
      await new Promise((r) => setTimeout(r, 1000));
      emulator = await persistentEmulator(dataDir, port);
      await expectLoadedOnce(s, 'incoming/rows/emulator.csv', 1, 20000, [5]);
      expect(await depth(s, s.p.stack.chunks.dlqUrl)).toBe(0);
    } finally {
      await cleanup();
      await emulator.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('a load worker killed between commit and acknowledge: the redelivered chunks change nothing', async () => {
    let crashes = 0;
    current = await start({
      wrap: (fn, handler) =>
        fn === 'split'
          ? handler
          : async (event, context) => {
              const result = await handler(event, context);
              // The first three invocations die after their transaction committed, before SQS hears back.
              if (crashes < 3) {
                crashes++;
                throw new Error('worker killed after commit');
              }
              return result;
            },
    });
    const s = current;
    await drop(s, 'incoming/rows/crash.csv', csv(1, 6000, [10, 20]));
    const file = await finished(s, 'incoming/rows/crash.csv');
    expect(crashes).toBe(3);
    // The crashes lost no work (each came after its commit): nothing was resumed.
    expect([file.state, file.rows_read, file.rows_inserted, file.rows_rejected, file.resumes]).toEqual([
      'loaded',
      6000,
      5998,
      2,
      0,
    ]);
    expect(await tableState(s)).toEqual({ n: 5998, sum: expectedSum(1, 6000, [10, 20]) });
    await accountedFor(s, file);
    // Let the crashed deliveries come back and be acknowledged as duplicates.
    await new Promise((r) => setTimeout(r, 3000));
    expect(await tableState(s)).toEqual({ n: 5998, sum: expectedSum(1, 6000, [10, 20]) });
    expect(await depth(s, s.p.stack.chunks.url)).toBe(0);
    expect(await depth(s, s.p.stack.chunks.dlqUrl)).toBe(0);
  });

  it('a load invocation that throws is told naming its file and chunk, and that its message comes back (h9 item 3)', async () => {
    const told: string[] = [];
    let crashes = 0;
    current = await start({
      onFailure: (line) => told.push(line),
      wrap: (fn, handler) =>
        fn === 'split'
          ? handler
          : async (event, context) => {
              if (crashes++ < 2) throw new Error('worker killed');
              return handler(event, context);
            },
    });
    const s = current;
    await drop(s, 'incoming/rows/told.csv', csv(1, 10));
    const file = await finished(s, 'incoming/rows/told.csv');
    expect([file.state, file.rows_read, file.rows_inserted]).toEqual(['loaded', 10, 10]);
    const bucket = s.p.stack.bucket;
    expect(told).toEqual(
      [1, 2].map(
        (n) =>
          `load of s3://${bucket}/incoming/rows/told.csv chunk 1 of 1 failed (Error: worker killed); retried: its message comes back after the visibility timeout (2 s) (delivery ${n} of 5 before it is parked in the dead-letter queue)`,
      ),
    );
  });

  it('the database refuses connections for a while: loads wait, retry with backoff, and finish', async () => {
    current = await start();
    const s = current;
    s.proxy.down();
    await drop(s, 'incoming/rows/outage.csv', csv(1, 3000));
    await new Promise((r) => setTimeout(r, 2500));
    s.proxy.up();
    await expectLoadedOnce(s, 'incoming/rows/outage.csv', 1, 3000);
    expect(await depth(s, s.p.stack.ingest.dlqUrl)).toBe(0);
    expect(await depth(s, s.p.stack.chunks.dlqUrl)).toBe(0);
  });

  it('a database outage is told once when it starts and once when it ends, not per sweep or message (h11 item 4)', async () => {
    const told: string[] = [];
    current = await start({ onFailure: (line) => told.push(line) });
    const s = current;
    s.proxy.down();
    await drop(s, 'incoming/rows/during.csv', csv(1, 3000));
    // Longer than two sweeps (every 5 s): each of them fails, as the loads do.
    await new Promise((r) => setTimeout(r, 12_000));
    s.proxy.up();
    await expectLoadedOnce(s, 'incoming/rows/during.csv', 1, 3000);
    const deadline = Date.now() + 10_000;
    while (told.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(told).toHaveLength(2);
    expect(told[0]).toMatch(
      /^the database is unreachable \(\w+: .+\): loads and the sweep of waiting rows are retrying, each message for at least 4 s \(5 deliveries, backoff 1 s doubling to 1 s\); a message is parked only once the database can record it$/,
    );
    expect(told[1]).toMatch(
      /^the database is reachable again \(unreachable for (1[0-9]|2[0-9]) s\): loads go on$/,
    );
  });

  it('the database drops every connection mid-load (as in a restart): nothing half-written, nothing lost', async () => {
    current = await start();
    const s = current;
    await drop(s, 'incoming/rows/restart.csv', csv(1, 20000, [777]));
    // Wait until some chunks have committed, then cut every open connection, mid-transaction or not.
    for (;;) {
      const f = await s.check
        .selectFrom('dropload.file')
        .select(['chunks_done', 'chunk_count'])
        .where('key', '=', 'incoming/rows/restart.csv')
        .executeTakeFirst();
      if (f && f.chunks_done > 0) {
        expect(f.chunks_done).toBeLessThan(f.chunk_count ?? 0);
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    s.proxy.down();
    await new Promise((r) => setTimeout(r, 1000));
    s.proxy.up();
    await expectLoadedOnce(s, 'incoming/rows/restart.csv', 1, 20000, [777]);
    expect(await depth(s, s.p.stack.chunks.dlqUrl)).toBe(0);
  });

  it('chunk messages lost mid-load (a purged queue): backfill --resume finishes the file, nothing doubled', async () => {
    current = await start();
    const s = current;
    await drop(s, 'incoming/rows/lost.csv', csv(1, 20000));
    for (;;) {
      const f = await s.check
        .selectFrom('dropload.file')
        .select(['chunks_done'])
        .where('key', '=', 'incoming/rows/lost.csv')
        .executeTakeFirst();
      if (f && f.chunks_done > 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await s.p.stack.sqs.send(new PurgeQueueCommand({ QueueUrl: s.p.stack.chunks.url }));
    await new Promise((r) => setTimeout(r, 3000));
    const stuck = await s.check
      .selectFrom('dropload.file')
      .selectAll()
      .where('key', '=', 'incoming/rows/lost.csv')
      .executeTakeFirstOrThrow();
    expect(stuck.state).toBe('loading');
    expect(stuck.chunks_done).toBeLessThan(stuck.chunk_count ?? 0);

    const plain = await backfill(backfillDeps(s), backfillOptions(s, false));
    expect(plain.unseen).toBe(0);
    const resumed = await backfill(backfillDeps(s), backfillOptions(s, true));
    expect(resumed.items.map((i) => [i.ref.key, i.action])).toEqual([['incoming/rows/lost.csv', 'enqueued']]);
    await expectLoadedOnce(s, 'incoming/rows/lost.csv', 1, 20000);
  });

  it('poison messages and unknown errors end in the DLQ after their retry budget, the file stalled with the error', async () => {
    current = await start();
    const s = current;
    await s.p.stack.sqs.send(
      new SendMessageCommand({ QueueUrl: s.p.stack.chunks.url, MessageBody: '{"not":"a chunk"}' }),
    );
    await drop(s, 'incoming/broken/b.csv', 'id\n1\n');
    await drop(s, 'incoming/rows/good.csv', csv(1, 100));
    const good = await finished(s, 'incoming/rows/good.csv');
    expect(good.state).toBe('loaded');
    // 5 receives, 2 s apart (plus backoff), then the queue's redrive policy moves both to the DLQ.
    const deadline = Date.now() + 40_000;
    while ((await depth(s, s.p.stack.chunks.dlqUrl)) < 2 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 250));
    const dead = await s.p.stack.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: s.p.stack.chunks.dlqUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 30,
      }),
    );
    const bodies = (dead.Messages ?? []).map(
      (m) => JSON.parse(m.Body ?? '{}') as { key?: string; not?: string },
    );
    expect(bodies.map((b) => b.key ?? b.not).sort()).toEqual(['a chunk', 'incoming/broken/b.csv']);
    const broken = await s.check
      .selectFrom('dropload.file')
      .selectAll()
      .where('key', '=', 'incoming/broken/b.csv')
      .executeTakeFirstOrThrow();
    expect(broken.state).toBe('stalled');
    expect(broken.error).toBe(
      'chunk 0: failed 5 deliveries over at least 4 s; its message is in the dead-letter queue: error: the database refuses this table today',
    );
    expect(await tableState(s)).toEqual({ n: 100, sum: expectedSum(1, 100) });
    expect(await depth(s, s.p.stack.ingest.dlqUrl)).toBe(0);
  });
});
