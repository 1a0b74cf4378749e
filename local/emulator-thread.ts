import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { EmbeddedEmulator, EmbeddedEmulatorOptions } from './embedded-emulator.ts';
import type { EmulatorThreadMessage } from './emulator-worker.ts';

/** The emulator on a thread of its own: which one (a worker thread's id; the main thread's is 0). */
export interface EmulatorOnThread extends EmbeddedEmulator {
  threadId: number;
}

/**
 * The embedded emulator (startEmbeddedEmulator) on a worker thread: serving uploads and ranged GETs
 * takes CPU that would otherwise come out of the load workers' JavaScript thread.
 */
export async function startEmulatorThread(options: EmbeddedEmulatorOptions): Promise<EmulatorOnThread> {
  // The sources (.ts) in this repository, the built package's .js: the entry sits beside this module.
  const ext = path.extname(fileURLToPath(import.meta.url));
  const worker = new Worker(new URL(`./emulator-worker${ext}`, import.meta.url), { workerData: options });
  const next = async (): Promise<EmulatorThreadMessage> => {
    const [message] = (await once(worker, 'message')) as [EmulatorThreadMessage];
    return message;
  };
  const first = await next();
  if (!('started' in first)) {
    await worker.terminate();
    if (!('failed' in first)) throw new Error('the emulator thread did not start');
    const { message, ...fields } = first.failed;
    throw Object.assign(new Error(message), fields);
  }
  const { endpoint, address, threadId } = first.started;
  return {
    endpoint,
    address,
    threadId,
    stop: async () => {
      const stopped = next();
      worker.postMessage('stop');
      await stopped;
      await worker.terminate();
    },
  };
}
