import type { SQSClient } from '@aws-sdk/client-sqs';
import { queueDepth } from '../aws/queue-depth.ts';

/**
 * Messages in a dead-letter queue: those waiting there and those a replay (or a reader) holds right
 * now. Nothing else reads a DLQ, so the sum is what an operator has to act on.
 */
export async function deadLetterDepth(sqs: SQSClient, dlqUrl: string): Promise<number> {
  const { visible, inFlight } = await queueDepth(sqs, dlqUrl);
  return visible + inFlight;
}
