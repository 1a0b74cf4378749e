import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';

export interface TempFolder {
  /** The folder (set once the test file's `beforeAll` ran). */
  readonly dir: string;
  /** Writes `content` to `name` in the folder: its path. */
  file(name: string, content: string | Uint8Array): Promise<string>;
}

/** A folder of the test file's own under the system's temporary one, made before its tests and removed after. */
export function tempFolder(prefix: string): TempFolder {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), prefix));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return {
    get dir() {
      return dir;
    },
    async file(name, content) {
      const p = path.join(dir, name);
      await writeFile(p, content);
      return p;
    },
  };
}
