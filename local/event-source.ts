import { randomUUID } from 'node:crypto';
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';

export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | undefined>;

/** Wait after a failed receive before the next. */
export const RECEIVE_AGAIN_MS = 500;

/**
 * What failed, and so what happens next: a receive (no message was taken: the loop receives again), an
 * invocation that threw (its records' messages come back after the visibility timeout), or deleting the
 * messages of records the handler finished (they come back too, and are then found done).
 */
export type SourceFailure =
  | { stage: 'receive' }
  | { stage: 'invoke'; records: SQSRecord[] }
  | { stage: 'delete'; records: SQSRecord[] };

export interface EventSourceOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  functionName: string;
  handler: SqsHandler;
  /** Records per invocation, as the mapping's BatchSize. */
  batchSize: number;
  /** How long to gather a batch, as MaximumBatchingWindowInSeconds (in ms here). */
  batchingWindowMs: number;
  /** Concurrent invocations, as the mapping's MaximumConcurrency. */
  concurrency: number;
  /** The function's timeout, reported by context.getRemainingTimeInMillis(). */
  timeoutMs: number;
  /** Seconds a receive waits for a message on an empty queue (long polling); default 1. */
  pollSeconds?: number;
  region?: string;
  onError?: (err: unknown, failure: SourceFailure) => void;
}

/** A received message as Lambda's event source mapping hands it to a function. */
export function toRecord(m: Message, arn: string, region: string): SQSRecord {
  const a = m.Attributes ?? {};
  return {
    messageId: m.MessageId as string,
    receiptHandle: m.ReceiptHandle as string,
    body: m.Body ?? '',
    attributes: {
      ApproximateReceiveCount: a.ApproximateReceiveCount ?? '1',
      SentTimestamp: a.SentTimestamp ?? String(Date.now()),
      SenderId: a.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: a.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: arn,
    awsRegion: region,
  };
}

/** The context Lambda hands a function: its name, and a deadline `timeoutMs` from now. */
export function lambdaContext(functionName: string, timeoutMs: number, region: string): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/**
 * What Lambda's SQS event source mapping does, in-process: long-poll the queue, gather up to
 * `batchSize` records within the batching window, invoke the handler, delete what succeeded and
 * leave `batchItemFailures` (or the whole batch, if the handler throws) to come back after the
 * visibility timeout — the queue's redrive policy then moves repeat failures to its DLQ.
 */
export class EventSource {
  readonly #o: EventSourceOptions;
  #running = false;
  #loops: Promise<void>[] = [];
  #inFlight = 0;
  /** Aborts the receives in progress (see `stop`). */
  #polls = new AbortController();
  /** What `ended()` handed out, and how to settle it when an invocation next ends. */
  #ended?: { promise: Promise<void>; resolve: () => void };

  constructor(options: EventSourceOptions) {
    this.#o = options;
  }

  /** Invocations running now. */
  get busy(): number {
    return this.#inFlight;
  }

  /**
   * Resolves when an invocation next ends (its handler returned or threw; `busy` counts it no more):
   * what it committed is then in the ledger, so a runner waiting on it need not poll into a gap.
   */
  ended(): Promise<void> {
    if (!this.#ended) {
      let resolve = () => {};
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.#ended = { promise, resolve };
    }
    return this.#ended.promise;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#polls = new AbortController();
    for (let i = 0; i < this.#o.concurrency; i++) this.#loops.push(this.#loop());
  }

  /**
   * Stops receiving and waits for the invocations in progress. A receive in progress is waited out
   * (up to `pollSeconds`), unless `abandonPolls`: then it is aborted. Only for a queue that ends with
   * this process (the in-memory emulator): an endpoint may still hand an aborted poll a message sent
   * later, which then stays invisible for the visibility timeout (fauxqs does).
   */
  async stop(options: { abandonPolls?: boolean } = {}): Promise<void> {
    this.#running = false;
    if (options.abandonPolls) this.#polls.abort();
    await Promise.all(this.#loops);
    this.#loops = [];
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      try {
        const batch = await this.#gather();
        if (batch.length > 0) await this.#invoke(batch);
      } catch (err) {
        // A receive aborted by stop is the end of the loop, not a failure.
        if (!this.#running) break;
        this.#o.onError?.(err, { stage: 'receive' });
        await new Promise((r) => setTimeout(r, RECEIVE_AGAIN_MS));
      }
    }
  }

  async #receive(max: number, waitSeconds: number): Promise<Message[]> {
    const res = await this.#o.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.#o.queueUrl,
        MaxNumberOfMessages: Math.min(10, max),
        WaitTimeSeconds: waitSeconds,
        MessageSystemAttributeNames: ['All'],
      }),
      { abortSignal: this.#polls.signal },
    );
    return res.Messages ?? [];
  }

  /** The first record opens the batching window; the batch closes when full or when the window ends. */
  async #gather(): Promise<Message[]> {
    const o = this.#o;
    const batch = await this.#receive(o.batchSize, o.pollSeconds ?? 1);
    const windowEnds = Date.now() + o.batchingWindowMs;
    while (batch.length > 0 && batch.length < o.batchSize && Date.now() < windowEnds && this.#running) {
      const more = await this.#receive(o.batchSize - batch.length, 0);
      if (more.length === 0) await new Promise((r) => setTimeout(r, Math.min(50, windowEnds - Date.now())));
      batch.push(...more);
    }
    return batch;
  }

  async #invoke(batch: Message[]): Promise<void> {
    const o = this.#o;
    const region = o.region ?? 'us-east-1';
    const event: SQSEvent = { Records: batch.map((m) => toRecord(m, o.queueArn, region)) };
    let failed: Set<string>;
    this.#inFlight++;
    try {
      const response = await o.handler(event, lambdaContext(o.functionName, o.timeoutMs, region));
      failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch (err) {
      o.onError?.(err, { stage: 'invoke', records: event.Records });
      failed = new Set(batch.map((m) => m.MessageId as string));
    } finally {
      this.#inFlight--;
      this.#ended?.resolve();
      this.#ended = undefined;
    }
    const done = event.Records.filter((r) => !failed.has(r.messageId));
    for (let i = 0; i < done.length; i += 10) {
      const records = done.slice(i, i + 10);
      await o.sqs
        .send(
          new DeleteMessageBatchCommand({
            QueueUrl: o.queueUrl,
            Entries: records.map((r, j) => ({ Id: String(j), ReceiptHandle: r.receiptHandle })),
          }),
        )
        .catch((err: unknown) => o.onError?.(err, { stage: 'delete', records }));
    }
  }
}
