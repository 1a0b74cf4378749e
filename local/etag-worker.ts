import { open } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';
import { type FileEtag, sameFile, uploadEtag } from './object-etag.ts';

// The ETag thread (see etag-thread.ts): hashes the files it is sent, one at a time, in order.

export interface EtagRequest {
  id: number;
  path: string;
}

/** The file's ETag, or undefined when it could not be read or changed while it was: the caller hashes it then. */
export interface EtagAnswer {
  id: number;
  hashed?: FileEtag;
}

const port = parentPort;
if (!port) throw new Error('local/etag-worker.ts runs as a worker thread (startEtagThread)');

async function hash(path: string): Promise<FileEtag | undefined> {
  const file = await open(path, 'r');
  try {
    const before = await file.stat();
    const etag = await uploadEtag(file, before.size);
    const hashed = { etag, size: before.size, mtimeMs: before.mtimeMs, ino: before.ino };
    return sameFile(hashed, await file.stat()) ? hashed : undefined;
  } finally {
    await file.close();
  }
}

let queue = Promise.resolve();
port.on('message', ({ id, path }: EtagRequest) => {
  queue = queue.then(async () => {
    const hashed = await hash(path).catch(() => undefined);
    port.postMessage({ id, hashed } satisfies EtagAnswer);
  });
});
