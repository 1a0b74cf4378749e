import type { SQSClient } from '@aws-sdk/client-sqs';
import { queueDepth } from '../shared/aws/queue-depth.ts';
import { sweepWaiting } from '../shared/load/sweep.ts';
import type { PipelineDeps } from '../shared/pipeline/services.ts';

export interface Sweeper {
  stop(): Promise<void>;
}

/**
 * What the deployed stack's minute schedule does, on this machine: the sweep of waiting rows, once at
 * start and then every `everyMs`. `firstSweepsEverything`: the chunk queue started empty (an in-memory
 * emulator, one whose state was lost), so no retry message of an earlier run survived: the first sweep
 * re-drives every file whose rows wait, whatever its chain said, instead of waiting for the chain to
 * look lost.
 */
export function startSweeper(
  deps: PipelineDeps,
  options: {
    everyMs: number;
    firstSweepsEverything: boolean;
    onError: (err: unknown) => void;
    /** After each sweep that worked: the database answered. */
    onSuccess?: () => void;
  },
): Sweeper {
  let stopped = false;
  let wake: (() => void) | undefined;
  const loop = async () => {
    let everything = options.firstSweepsEverything;
    while (!stopped) {
      await sweepWaiting(deps, { everything }).then(() => {
        everything = false;
        options.onSuccess?.();
      }, options.onError);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.everyMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };
  const running = loop();
  return {
    stop: async () => {
      stopped = true;
      wake?.();
      await running;
    },
  };
}

/** No message in the queue at all: visible, in flight or delayed. */
export async function queueIsEmpty(sqs: SQSClient, queueUrl: string): Promise<boolean> {
  const { visible, inFlight, delayed } = await queueDepth(sqs, queueUrl);
  return visible + inFlight + delayed === 0;
}
