import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { fileStateLine } from '../../cli/ops.ts';
import { fileNotes, reportOf } from '../../cli/report.ts';
import { type EmbeddedEmulator, startEmbeddedEmulator } from '../../local/embedded-emulator.ts';
import { QUEUES } from '../../shared/core/topology.ts';
import { replayDeadLetters } from '../../shared/ops/replay.ts';
import { fileAction, type Receipt } from '../../shared/pipeline/receipts.ts';
import {
  depth,
  drop,
  FAULT_TABLES,
  faultConfig,
  finished,
  type Started,
  startFaultPipeline,
  tableState,
} from '../support/faults.ts';
import { startTestPipeline } from '../support/pipeline.ts';

/**
 * What the operator trial of h11 found in the split's failure paths: a key the emulator's queue
 * refused in a message body, and a split that kept failing parked where its replay command did not look.
 */

let current: Started | undefined;
let emulator: EmbeddedEmulator | undefined;
afterEach(async () => {
  await current?.stop();
  current = undefined;
  await emulator?.stop();
  emulator = undefined;
  for (const dir of stateDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

const stateDirs: string[] = [];
/** A state folder for an emulator that keeps its state, as `dev`'s; removed after the test. */
async function stateDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'dropload-h11-'));
  stateDirs.push(dir);
  return dir;
}

/** The file's receipt once it says `state` (it is written just after the ledger moves). */
async function receiptOf(s: Started, key: string, state: string): Promise<Receipt | undefined> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await s.p.stack.s3
      .send(new GetObjectCommand({ Bucket: s.p.stack.bucket, Key: `reports/${key}.json` }))
      .catch(() => undefined);
    const body = res ? (JSON.parse(await (res.Body?.transformToString() ?? '{}')) as Receipt) : undefined;
    if (body?.state === state || Date.now() > deadline) return body;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The chunk queue's largest body, as SQS lets it be set (1 KiB at the least): a refusal the test controls. */
async function chunkBodyLimit(s: Started, bytes: number): Promise<void> {
  await s.p.stack.sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl: s.p.stack.chunks.url,
      Attributes: { MaximumMessageSize: String(bytes) },
    }),
  );
}

describe('split failure paths (h11)', () => {
  it('a key with a character past U+FFFF (an emoji) loads: its chunk message is escaped ASCII, its ledger row, receipt and status keep the key', async () => {
    current = await startFaultPipeline();
    const s = current;
    const key = 'incoming/rows/a😀b é.csv';
    await drop(s, key, 'id,label\n1,a😀\n2,b\n');
    const file = await finished(s, key, 30_000);
    expect([file.key, file.state, file.error, file.rows_read, file.rows_inserted]).toEqual([
      key,
      'loaded',
      null,
      2,
      2,
    ]);
    expect(await tableState(s)).toEqual({ n: 2, sum: '3' });
    const receipt = await receiptOf(s, key, 'loaded');
    expect([receipt?.file, receipt?.state]).toEqual([key, 'loaded']);
    expect(fileStateLine(file)).toBeUndefined();
    expect(await depth(s, s.p.stack.ingest.dlqUrl)).toBe(0);
    expect(await depth(s, s.p.stack.chunks.dlqUrl)).toBe(0);
  });

  it('a split that keeps failing parks its messages in the ingest DLQ of an emulator keeping its state (as `dev`), and status and the receipt name `replay --queue ingest`, which loads it', async () => {
    // fauxqs with its state on disk loses a message whose visibility is set to 0: parked, and released by a dry run.
    emulator = await startEmbeddedEmulator({
      port: 0,
      stateDir: await stateDir(),
    });
    current = await startFaultPipeline({ endpoint: emulator.endpoint });
    const s = current;
    await chunkBodyLimit(s, 1024);
    const key = 'incoming/rows/wide.csv';
    // Its header travels in every chunk message: past 1 KiB, the chunk queue refuses them all. Announced
    // three times (as restarts of `dev` re-announce an unfinished file): three copies, each parked.
    const body = `id,label,${'x'.repeat(1100)}\n1,a,\n2,b,\n`;
    for (let i = 0; i < 3; i++) await drop(s, key, body);
    // While it is retried, status says so, with the delivery, the budget and the reason, as for a load.
    const retrying = await finished(s, key, 30_000, (f) => f.error !== null);
    expect([retrying.state, retrying.chunk_count]).toEqual(['loading', 1]);
    // (Its other lines: the ignored column, and, announced three times while splitting, its resume.)
    const notes = fileNotes(reportOf(retrying)).map((n) => n.line);
    expect(notes.filter((l) => l.includes(': retrying: '))).toEqual([
      expect.stringMatching(
        new RegExp(
          `^${key.replace(/\./g, '\\.')}: retrying: split delivery [1-4] of 5 failed; next try within 1 s: TransientError: chunk queue refused 1 message\\(s\\): .*Message must be shorter than 1024 bytes\\.$`,
        ),
      ),
    ]);
    const stalled = await finished(s, key, 30_000, (f) => f.state === 'stalled');
    const deadline = Date.now() + 15_000;
    while ((await depth(s, s.p.stack.ingest.dlqUrl)) < 3 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(await depth(s, s.p.stack.ingest.dlqUrl)).toBe(3);
    expect(await depth(s, s.p.stack.ingest.url)).toBe(0);
    expect(await depth(s, s.p.stack.chunks.dlqUrl)).toBe(0);
    const replayDeps = { sqs: s.p.stack.sqs, logger: s.p.deps.logger };
    const ingest = {
      queue: 'ingest' as const,
      sourceUrl: s.p.stack.ingest.url,
      dlqUrl: s.p.stack.ingest.dlqUrl,
    };
    const dry = await replayDeadLetters(replayDeps, { ...ingest, dryRun: true });
    expect(dry.mode === 'messages' && dry.messages.map((m) => m.keys)).toEqual([[key], [key], [key]]);
    expect(await depth(s, s.p.stack.ingest.dlqUrl)).toBe(3);

    const replay = `npx dropload replay --queue ingest --file "${key}"`;
    expect(stalled.error).toMatch(
      /^split failed 5 deliveries over at least 4 s; its message is in the dead-letter queue: .*chunk queue refused 1 message\(s\)/,
    );
    expect(fileStateLine(stalled)).toBe(
      `${key}: STALLED: ${stalled.error}; once the cause is fixed, run: ${replay}`,
    );
    expect(reportOf(stalled).action).toBe(replay);
    const receipt = await receiptOf(s, key, 'stalled');
    expect([receipt?.state, receipt?.error, receipt?.action]).toEqual(['stalled', stalled.error, replay]);

    // The cause fixed, the command it names loads the file.
    await chunkBodyLimit(s, 262144);
    // Released by the dry run: visible again within a second.
    await new Promise((r) => setTimeout(r, 1500));
    const replayed = await replayDeadLetters(replayDeps, { ...ingest, file: key });
    expect(replayed.mode === 'messages' && replayed.moved).toBe(3);
    const loaded = await finished(s, key, 30_000);
    expect([loaded.state, loaded.error, loaded.rows_inserted]).toEqual(['loaded', null, 2]);
    expect(fileAction(loaded)).toBeNull();
    expect(await depth(s, s.p.stack.ingest.dlqUrl)).toBe(0);
  });
});

describe("the local split has the deployed split function's time (h11 item 3c)", () => {
  it('its context says 300 s, and its queue keeps a message that long, even in a state folder made with 180 s', async () => {
    emulator = await startEmbeddedEmulator({
      port: 0,
      stateDir: await stateDir(),
    });
    // The ingest queue as an earlier release left it in a `dev` state folder.
    const sqs = new SQSClient({
      endpoint: emulator.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    await sqs.send(
      new CreateQueueCommand({ QueueName: QUEUES.ingest.name, Attributes: { VisibilityTimeout: '180' } }),
    );
    const remaining: number[] = [];
    const p = await startTestPipeline(faultConfig, FAULT_TABLES, {
      env: { AWS_ENDPOINT_URL: emulator.endpoint },
      wrap: (fn, h) =>
        fn === 'split'
          ? (event, context) => {
              remaining.push(context.getRemainingTimeInMillis());
              return h(event, context);
            }
          : h,
    });
    try {
      const visibility = async (url: string) =>
        (
          await p.stack.sqs.send(
            new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['VisibilityTimeout'] }),
          )
        ).Attributes?.VisibilityTimeout;
      expect([await visibility(p.stack.ingest.url), await visibility(p.stack.chunks.url)]).toEqual([
        '300',
        '180',
      ]);
      const run = await p.load('incoming/rows/t.csv', 'id,label\n1,a\n');
      expect(run.reports.map((r) => r.state)).toEqual(['loaded']);
      expect(remaining).toHaveLength(1);
      expect(remaining[0]).toBeGreaterThan(295_000);
      expect(remaining[0]).toBeLessThanOrEqual(300_000);
    } finally {
      await p.stop();
    }
  });
});
