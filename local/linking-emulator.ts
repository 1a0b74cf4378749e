import {
  type EmbeddedEmulator,
  type EmbeddedEmulatorOptions,
  startEmbeddedEmulator,
} from './embedded-emulator.ts';
import { LinkedObjects, type LinkedRef } from './linked-objects.ts';
import type { FileEtag } from './object-etag.ts';

/** The embedded emulator with local files linked into its buckets (see linked-objects.ts). */
export interface LinkingEmulator extends EmbeddedEmulator {
  /** The thread it serves on (a worker thread's id; the main thread's is 0). */
  threadId: number;
  /**
   * Makes the local file the object bucket/key without copying it (see linked-objects.ts), and says
   * which version that is: the ETag and size an upload of the file would have made (`known`, if it
   * is still this file's: see LinkedObjects.link).
   */
  link(bucket: string, key: string, file: string, known?: FileEtag): Promise<LinkedRef>;
}

/**
 * The embedded emulator on the calling thread, linked files in front of fauxqs. `run` hosts it on its
 * main thread: its files are linked, not uploaded, so the emulator only serves ranged reads and queue
 * calls, and a thread of its own would cost a second isolate (README, Performance). Stopping it twice
 * is stopping it once.
 */
export async function startLinkingEmulator(
  options: EmbeddedEmulatorOptions,
  threadId = 0,
): Promise<LinkingEmulator> {
  const linked = new LinkedObjects();
  const emulator = await startEmbeddedEmulator(options, linked.serve);
  let stopping: Promise<void> | undefined;
  return {
    ...emulator,
    threadId,
    link: (bucket, key, file, known) => linked.link(bucket, key, file, known),
    stop: () => {
      stopping ??= emulator.stop().then(() => linked.close());
      return stopping;
    },
  };
}
