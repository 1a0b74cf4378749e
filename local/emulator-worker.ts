import module from 'node:module';
import type { AddressInfo } from 'node:net';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import type { EmbeddedEmulatorOptions } from './embedded-emulator.ts';
import type { LinkedRef } from './linked-objects.ts';
import { startLinkingEmulator } from './linking-emulator.ts';
import type { FileEtag } from './object-etag.ts';

// The embedded emulator's thread (see emulator-thread.ts): starts it, says where it listens, links
// local files into its bucket (linked-objects.ts) and stops it when asked.

export type EmulatorThreadMessage =
  | { started: { endpoint: string; address: AddressInfo; threadId: number } }
  | { failed: FailedStart }
  | { linked: { id: number; ref?: LinkedRef; error?: string } }
  | { stopped: true };

/** What the thread is asked: link a file as bucket/key (answered by `linked` with the same id), or stop. */
export type EmulatorThreadRequest =
  | { link: { id: number; bucket: string; key: string; path: string; known?: FileEtag } }
  | 'stop';

/** Why the start failed: the fields the CLI's error messages read (EADDRINUSE and its port). */
export interface FailedStart {
  message: string;
  code?: unknown;
  port?: unknown;
  address?: unknown;
}

const port = parentPort;
if (!port) throw new Error('local/emulator-worker.ts runs as a worker thread (startEmulatorThread)');
const post = (m: EmulatorThreadMessage) => port.postMessage(m);
// As in load-worker.ts: a worker's compile cache is its own to enable, before fauxqs is imported
// (startEmbeddedEmulator imports it).
module.enableCompileCache?.();
try {
  const emulator = await startLinkingEmulator(workerData as EmbeddedEmulatorOptions, threadId);
  port.on('message', async (request: EmulatorThreadRequest) => {
    if (request === 'stop') {
      await emulator.stop();
      post({ stopped: true });
      port.close();
      return;
    }
    const { id, bucket, key, path, known } = request.link;
    await emulator.link(bucket, key, path, known).then(
      (ref) => post({ linked: { id, ref } }),
      (err: unknown) => post({ linked: { id, error: (err as Error).message ?? String(err) } }),
    );
  });
  post({ started: { endpoint: emulator.endpoint, address: emulator.address, threadId } });
} catch (err) {
  const { message, code, port: busy, address } = err as FailedStart;
  post({ failed: { message: message ?? String(err), code, port: busy, address } });
  port.close();
}
