import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import { ChunkMessage } from '../aws/messages.ts';
import { objectRefsFromBody } from '../aws/s3-events.ts';
import { MIN_VISIBILITY_SECONDS } from '../core/backoff.ts';
import type { QueueName } from '../core/topology.ts';
import type { Log } from '../pipeline/services.ts';

export interface ReplayDeps {
  sqs: SQSClient;
  logger: Log;
}

export interface ReplayOptions {
  queue: QueueName;
  /** The queue the messages failed out of, and go back to. */
  sourceUrl: string;
  dlqUrl: string;
  /** List what would move; move nothing. */
  dryRun?: boolean;
  /** Only messages about this S3 key. */
  file?: string;
  /** Move at most this many messages. */
  max?: number;
  /** How long a received message stays hidden while this replay decides on it. */
  visibilityTimeoutSeconds?: number;
  /** How often to ask a move task how far it got. */
  pollIntervalMs?: number;
}

export interface ReplayedMessage {
  queue: QueueName;
  messageId: string;
  /** The S3 key(s) the message is about; empty when its body cannot be read. */
  keys: string[];
  /** The chunk index, for chunk messages. */
  chunk: number | null;
  /** Matches `file` and fits under `max`: moved, or under `dryRun` would be. */
  selected: boolean;
  moved: boolean;
}

export type ReplayResult =
  | { mode: 'move-task'; taskHandle: string; status: string; moved: number; failure?: string }
  | {
      mode: 'messages';
      messages: ReplayedMessage[];
      /** Messages matching the filters (under `dryRun`, what would move). */
      selected: number;
      moved: number;
      dryRun: boolean;
    };

/** What an endpoint without the message-move API answers (fauxqs: InvalidAction). */
const UNSUPPORTED = new Set([
  'InvalidAction',
  'UnsupportedOperation',
  'AWS.SimpleQueueService.UnsupportedOperation',
  'UnknownOperationException',
  'UnknownOperation',
  'NotImplemented',
]);

/** What a dead-lettered message is about, for the printout and for `--file`. */
export function describeMessage(queue: QueueName, body: string): { keys: string[]; chunk: number | null } {
  try {
    if (queue === 'chunks') {
      const chunk = ChunkMessage.parse(JSON.parse(body));
      return { keys: [chunk.key], chunk: chunk.index };
    }
    return { keys: objectRefsFromBody(body).map((r) => r.key), chunk: null };
  } catch {
    // A poison body is exactly what ends up in a DLQ; it still moves when no filter names a file.
    return { keys: [], chunk: null };
  }
}

async function queueArn(sqs: SQSClient, url: string): Promise<string> {
  const res = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
  const arn = res.Attributes?.QueueArn;
  if (!arn) throw new Error(`queue ${url} reports no QueueArn`);
  return arn;
}

/** Starts SQS's own redrive; undefined when the endpoint has no such API. */
async function startMoveTask(
  deps: ReplayDeps,
  options: ReplayOptions,
): Promise<{ taskHandle: string; dlqArn: string } | undefined> {
  const [sourceArn, dlqArn] = await Promise.all([
    queueArn(deps.sqs, options.sourceUrl),
    queueArn(deps.sqs, options.dlqUrl),
  ]);
  try {
    const res = await deps.sqs.send(
      new StartMessageMoveTaskCommand({ SourceArn: dlqArn, DestinationArn: sourceArn }),
    );
    return { taskHandle: res.TaskHandle as string, dlqArn };
  } catch (err) {
    if (!UNSUPPORTED.has((err as Error).name)) throw err;
    deps.logger.info('endpoint has no StartMessageMoveTask; moving messages one by one', {
      error: (err as Error).name,
    });
    return undefined;
  }
}

/** Waits for the move task to finish: the DLQ is empty (or the task failed) when this returns. */
async function awaitMoveTask(
  deps: ReplayDeps,
  task: { taskHandle: string; dlqArn: string },
  pollMs: number,
): Promise<ReplayResult> {
  const { taskHandle, dlqArn } = task;
  for (;;) {
    const res = await deps.sqs.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn, MaxResults: 10 }));
    const entry = res.Results?.find((t) => t.TaskHandle === taskHandle);
    const status = entry?.Status ?? 'UNKNOWN';
    if (status !== 'RUNNING' && status !== 'CANCELLING') {
      return {
        mode: 'move-task',
        taskHandle,
        status,
        moved: entry?.ApproximateNumberOfMessagesMoved ?? 0,
        failure: entry?.FailureReason,
      };
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * Moves dead-lettered messages back to the queue they failed out of. Without filters it asks SQS to
 * do it (StartMessageMoveTask); with filters, or where the endpoint lacks that API, it receives,
 * sends, then deletes each message itself.
 */
export async function replayDeadLetters(deps: ReplayDeps, options: ReplayOptions): Promise<ReplayResult> {
  const filtered = options.dryRun || options.file !== undefined || options.max !== undefined;
  if (!filtered) {
    const task = await startMoveTask(deps, options);
    if (task) return awaitMoveTask(deps, task, options.pollIntervalMs ?? 1000);
  }
  return moveOneByOne(deps, options);
}

/** Sends first, deletes after: a crash in between leaves a duplicate (loads are idempotent), never a loss. */
async function moveMessage(sqs: SQSClient, options: ReplayOptions, m: Message): Promise<void> {
  await sqs.send(new SendMessageCommand({ QueueUrl: options.sourceUrl, MessageBody: m.Body ?? '' }));
  await sqs.send(new DeleteMessageCommand({ QueueUrl: options.dlqUrl, ReceiptHandle: m.ReceiptHandle }));
}

/**
 * Receive → send → delete, one message at a time. Messages not moved stay hidden until the end, so
 * every receive sees new ones, then become visible again within a second (MIN_VISIBILITY_SECONDS).
 */
async function moveOneByOne(deps: ReplayDeps, options: ReplayOptions): Promise<ReplayResult> {
  const { sqs } = deps;
  const max = options.max ?? Number.POSITIVE_INFINITY;
  const messages: ReplayedMessage[] = [];
  const seen = new Set<string>();
  const held = new Map<string, string>();
  let taken = 0;
  try {
    while (taken < max) {
      const batch = await receive(sqs, options, Math.min(10, max - taken));
      // A message seen twice came back from its visibility timeout: the whole DLQ has been seen.
      const fresh = batch.filter((m) => !seen.has(m.MessageId as string));
      for (const m of batch) held.set(m.MessageId as string, m.ReceiptHandle as string);
      if (fresh.length === 0) break;
      for (const m of fresh) {
        seen.add(m.MessageId as string);
        const about = describeMessage(options.queue, m.Body ?? '');
        const selected = taken < max && (options.file === undefined || about.keys.includes(options.file));
        const move = selected && !options.dryRun;
        if (move) {
          await moveMessage(sqs, options, m);
          held.delete(m.MessageId as string);
        }
        if (selected) taken++;
        messages.push({
          queue: options.queue,
          messageId: m.MessageId as string,
          ...about,
          selected,
          moved: move,
        });
      }
    }
  } finally {
    await release(sqs, options.dlqUrl, held);
  }
  const moved = messages.filter((m) => m.moved).length;
  const dryRun = Boolean(options.dryRun);
  deps.logger.info('replay', { queue: options.queue, selected: taken, moved, dryRun });
  return { mode: 'messages', messages, selected: taken, moved, dryRun };
}

async function receive(sqs: SQSClient, options: ReplayOptions, max: number): Promise<Message[]> {
  const res = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: options.dlqUrl,
      MaxNumberOfMessages: max,
      VisibilityTimeout: options.visibilityTimeoutSeconds ?? 30,
      // Long polling asks every SQS server, so an empty answer means an empty queue.
      WaitTimeSeconds: 1,
    }),
  );
  return res.Messages ?? [];
}

/** Makes the messages this replay held but did not move visible again, for the next replay or a person. */
async function release(sqs: SQSClient, queueUrl: string, held: Map<string, string>): Promise<void> {
  for (const receiptHandle of held.values()) {
    await sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queueUrl,
        ReceiptHandle: receiptHandle,
        VisibilityTimeout: MIN_VISIBILITY_SECONDS,
      }),
    );
  }
}
