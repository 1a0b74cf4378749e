import module from 'node:module';
import type { AddressInfo } from 'node:net';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { type EmbeddedEmulatorOptions, startEmbeddedEmulator } from './embedded-emulator.ts';

// The embedded emulator's thread (see emulator-thread.ts): starts it, says where it listens, and stops
// it when asked.

export type EmulatorThreadMessage =
  | { started: { endpoint: string; address: AddressInfo; threadId: number } }
  | { failed: FailedStart }
  | { stopped: true };

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
  const emulator = await startEmbeddedEmulator(workerData as EmbeddedEmulatorOptions);
  port.once('message', async () => {
    await emulator.stop();
    post({ stopped: true });
    port.close();
  });
  post({ started: { endpoint: emulator.endpoint, address: emulator.address, threadId } });
} catch (err) {
  const { message, code, port: busy, address } = err as FailedStart;
  post({ failed: { message: message ?? String(err), code, port: busy, address } });
  port.close();
}
