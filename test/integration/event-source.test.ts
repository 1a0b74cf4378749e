import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedEmulator, startEmbeddedEmulator } from '../../local/embedded-emulator.ts';
import { EventSource } from '../../local/event-source.ts';
import { awsClients } from '../../shared/runtime/environment.ts';

/**
 * The in-process event source mapping's stop. `dropload run`, whose in-memory emulator ends with it,
 * abandons the long polls in progress, so it ends when its files are done, not a poll later (issue 14);
 * a plain stop waits them out, so a poll takes no message sent after it.
 */
describe('EventSource.stop', () => {
  let emulator: EmbeddedEmulator;
  beforeAll(async () => {
    emulator = await startEmbeddedEmulator({ port: 0 });
  });
  afterAll(() => emulator.stop());

  const sqs = () => awsClients({ AWS_ENDPOINT_URL: emulator.endpoint }).sqs;
  let invoked = 0;
  const source = (name: string, queueUrl: string, pollSeconds: number) =>
    new EventSource({
      sqs: sqs(),
      queueUrl,
      queueArn: `arn:aws:sqs:us-east-1:000000000000:${name}`,
      functionName: name,
      handler: async () => {
        invoked++;
        return undefined;
      },
      batchSize: 1,
      batchingWindowMs: 0,
      concurrency: 2,
      timeoutMs: 60_000,
      pollSeconds,
    });
  const queue = async (name: string) =>
    (await sqs().send(new CreateQueueCommand({ QueueName: name }))).QueueUrl as string;
  /** Starts the source and stops it once both its loops are in their long poll on the empty queue. */
  const stopWhilePolling = async (s: EventSource, abandonPolls: boolean) => {
    s.start();
    await new Promise((r) => setTimeout(r, 300));
    return Promise.race([
      s.stop({ abandonPolls }).then(() => 'stopped'),
      new Promise((r) => setTimeout(() => r('still polling'), 10_000)),
    ]);
  };

  it('abandoning the polls ends a 20-second long poll at once', async () => {
    const url = await queue('abandon');
    expect(await stopWhilePolling(source('abandon', url, 20), true)).toBe('stopped');
    expect(invoked).toBe(0);
  });

  it('a plain stop waits its polls out: a message sent after it is still in the queue', async () => {
    const url = await queue('plain');
    await stopWhilePolling(source('plain', url, 1), false);
    await sqs().send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'after stop' }));
    const got = await sqs().send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 2 }));
    expect(got.Messages?.map((m) => m.Body)).toEqual(['after stop']);
    expect(invoked).toBe(0);
  });

  // `run` reads the ledger again when a split or load ends, not up to a poll later (cli/run.ts).
  it('ended() resolves once an invocation has ended, and again for the next one', async () => {
    const url = await queue('ended');
    const s = source('ended', url, 1);
    s.start();
    try {
      const before = invoked;
      const first = s.ended();
      expect(s.ended()).toBe(first);
      await sqs().send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'one' }));
      await first;
      expect([invoked - before, s.busy]).toEqual([1, 0]);
      const second = s.ended();
      expect(second).not.toBe(first);
      await sqs().send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'two' }));
      await second;
      expect([invoked - before, s.busy]).toEqual([2, 0]);
    } finally {
      await s.stop({ abandonPolls: true });
    }
  });
});
