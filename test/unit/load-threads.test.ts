import type { SQSEvent } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { lambdaContext } from '../../local/event-source.ts';
import {
  defaultLoadConcurrency,
  type LoadThreads,
  loadThreadsWanted,
  startLoadThreads,
  threadPlan,
} from '../../local/load-threads.ts';

describe('threadPlan', () => {
  it('runs the threads asked for, no more than loads at once, and keeps two connections for the main thread', () => {
    expect(threadPlan(8, 8, 2)).toEqual({ threads: 2, perThread: 3, main: 2 });
    expect(threadPlan(8, 8, 16)).toEqual({ threads: 6, perThread: 1, main: 2 });
    expect(threadPlan(2, 8, 16)).toEqual({ threads: 2, perThread: 3, main: 2 });
    expect(threadPlan(8, 8, 1)).toEqual({ threads: 1, perThread: 6, main: 2 });
    expect(threadPlan(4, 9, 4)).toEqual({ threads: 4, perThread: 1, main: 5 });
  });

  it('runs the loads on the main thread when none are asked for or the budget leaves no connection for one', () => {
    expect(threadPlan(8, 8, 0)).toEqual({ threads: 0, perThread: 0, main: 8 });
    expect(threadPlan(1, 1, 2)).toEqual({ threads: 0, perThread: 0, main: 1 });
    expect(threadPlan(2, 2, 2)).toEqual({ threads: 0, perThread: 0, main: 2 });
  });
});

describe('defaultLoadConcurrency', () => {
  it('runs one load per core, within the connection budget, and at least one', () => {
    expect(defaultLoadConcurrency(8, 2)).toBe(2);
    expect(defaultLoadConcurrency(8, 16)).toBe(8);
    expect(defaultLoadConcurrency(1, 2)).toBe(1);
    expect(defaultLoadConcurrency(8, 0)).toBe(1);
  });
});

describe('loadThreadsWanted', () => {
  it('reads DROPLOAD_LOAD_THREADS, 0 when unset, and names the setting when it is not a count', () => {
    expect(loadThreadsWanted({})).toBe(0);
    expect(loadThreadsWanted({ DROPLOAD_LOAD_THREADS: '' })).toBe(0);
    expect(loadThreadsWanted({ DROPLOAD_LOAD_THREADS: '2' })).toBe(2);
    expect(() => loadThreadsWanted({ DROPLOAD_LOAD_THREADS: 'two' })).toThrow(
      'DROPLOAD_LOAD_THREADS must be a whole number (0: none), got "two"',
    );
    expect(() => loadThreadsWanted({ DROPLOAD_LOAD_THREADS: '-1' })).toThrow(
      'DROPLOAD_LOAD_THREADS must be a whole number (0: none), got "-1"',
    );
  });
});

const event = (body: string): SQSEvent => ({
  Records: [
    {
      messageId: 'm1',
      receiptHandle: 'r1',
      body,
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: '0',
        SenderId: 'test',
        ApproximateFirstReceiveTimestamp: '0',
      },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:q',
      awsRegion: 'us-east-1',
    },
  ],
});

describe('startLoadThreads', () => {
  let threads: LoadThreads | undefined;
  afterEach(async () => {
    await threads?.stop();
    threads = undefined;
  });

  const start = (count: number) =>
    startLoadThreads({
      count,
      entry: new URL('../support/faulty-load-worker.ts', import.meta.url),
      setup: {
        configFile: 'unused',
        endpoint: 'http://127.0.0.1:1',
        databaseUrl: 'postgres://unused',
        poolMax: 1,
        chunkQueueUrl: 'unused',
        ingestQueueUrl: 'unused',
        logLevel: 'SILENT',
        env: {},
      },
    });
  const invoke = (t: LoadThreads, body: string) =>
    t.handler(event(body), lambdaContext('dropload-load', 1000, 'us-east-1'));

  it("hands back the thread's response", async () => {
    threads = start(2);
    await expect(invoke(threads, 'a')).resolves.toEqual({
      batchItemFailures: [{ itemIdentifier: 'a in dropload-load' }],
    });
  });

  it('fails the invocation whose thread dies, as a crashed Lambda, and replaces the thread', async () => {
    threads = start(1);
    await expect(invoke(threads, 'exit')).rejects.toThrow(/^load thread \d+ ended \(exit code 7\)$/);
    // The only thread died: the next invocation runs on its replacement.
    await expect(invoke(threads, 'b')).resolves.toEqual({
      batchItemFailures: [{ itemIdentifier: 'b in dropload-load' }],
    });
  });

  it("fails the invocation whose handler throws, with the handler's message", async () => {
    threads = start(1);
    await expect(invoke(threads, 'throw')).rejects.toThrow(/^the handler failed$/);
    await expect(invoke(threads, 'c')).resolves.toBeDefined();
  });
});
