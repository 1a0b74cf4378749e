import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { EtagAnswer, EtagRequest } from './etag-worker.ts';
import type { FileEtag } from './object-etag.ts';

export interface EtagThread {
  /** The file's upload ETag (object-etag.ts), or undefined if the thread could not tell it: hash it then. */
  etagOf(file: string): Promise<FileEtag | undefined>;
  stop(): Promise<void>;
}

/**
 * Hashes files on a thread of its own while the caller goes on: `run` has its files' ETags worked out on
 * the other core while it loads its modules and migrates, instead of on its main thread after (the MD5
 * pass, about 0.2 CPU-s per 100 MB). The thread never keeps the process alive, and a file it could not
 * hash is hashed again where it is linked.
 */
export function startEtagThread(): EtagThread {
  // The sources (.ts) in this repository, the built package's .js: the entry sits beside this module.
  const ext = path.extname(fileURLToPath(import.meta.url));
  const worker = new Worker(new URL(`./etag-worker${ext}`, import.meta.url));
  worker.unref();
  const waiting = new Map<number, (hashed: FileEtag | undefined) => void>();
  const settleAll = () => {
    for (const resolve of waiting.values()) resolve(undefined);
    waiting.clear();
  };
  worker.on('message', ({ id, hashed }: EtagAnswer) => {
    waiting.get(id)?.(hashed);
    waiting.delete(id);
  });
  worker.on('error', settleAll);
  worker.on('exit', settleAll);
  let nextId = 0;
  return {
    etagOf: (file) =>
      new Promise((resolve) => {
        const id = nextId++;
        waiting.set(id, resolve);
        worker.postMessage({ id, path: path.resolve(file) } satisfies EtagRequest);
      }),
    stop: async () => {
      await worker.terminate();
    },
  };
}
