import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { EmbeddedEmulatorOptions } from './embedded-emulator.ts';
import type { EmulatorThreadMessage, EmulatorThreadRequest } from './emulator-worker.ts';
import type { LinkedRef } from './linked-objects.ts';
import type { LinkingEmulator } from './linking-emulator.ts';

/** The emulator on a thread of its own (its `threadId`). */
export type EmulatorOnThread = LinkingEmulator;

/**
 * The embedded emulator (startEmbeddedEmulator) on a worker thread: serving uploads and ranged GETs
 * takes CPU that would otherwise come out of the load workers' JavaScript thread.
 */
export async function startEmulatorThread(options: EmbeddedEmulatorOptions): Promise<EmulatorOnThread> {
  // The sources (.ts) in this repository, the built package's .js: the entry sits beside this module.
  const ext = path.extname(fileURLToPath(import.meta.url));
  const worker = new Worker(new URL(`./emulator-worker${ext}`, import.meta.url), { workerData: options });
  const [first] = (await once(worker, 'message')) as [EmulatorThreadMessage];
  if (!('started' in first)) {
    await worker.terminate();
    if (!('failed' in first)) throw new Error('the emulator thread did not start');
    const { message, ...fields } = first.failed;
    throw Object.assign(new Error(message), fields);
  }
  const links = new Map<number, { resolve: (ref: LinkedRef) => void; reject: (err: Error) => void }>();
  let stopped: (() => void) | undefined;
  worker.on('message', (message: EmulatorThreadMessage) => {
    if ('stopped' in message) stopped?.();
    if (!('linked' in message)) return;
    const { id, ref, error } = message.linked;
    const waiting = links.get(id);
    links.delete(id);
    if (ref) waiting?.resolve(ref);
    else waiting?.reject(new Error(error));
  });
  const send = (request: EmulatorThreadRequest) => worker.postMessage(request);
  let nextId = 0;
  const { endpoint, address, threadId } = first.started;
  let stopping: Promise<void> | undefined;
  return {
    endpoint,
    address,
    threadId,
    link: (bucket, key, file, known) =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        links.set(id, { resolve, reject });
        send({ link: { id, bucket, key, path: path.resolve(file), known } });
      }),
    // Once: a second stop would wait for an answer from a thread that has ended.
    stop: () => {
      stopping ??= new Promise<void>((resolve) => {
        stopped = resolve;
        send('stop');
      }).then(async () => {
        await worker.terminate();
      });
      return stopping;
    },
  };
}
