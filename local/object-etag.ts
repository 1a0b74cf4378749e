import { createHash, type Hash } from 'node:crypto';
import type { Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/** Parts under the embedded emulator's 11 MiB request limit and over S3's 5 MiB minimum. */
export const PART_BYTES = 8 * 1024 * 1024;

/**
 * The ETag S3 gives the file when uploadFile puts it there: a single PUT's MD5 up to PART_BYTES (lib-storage
 * sends a file that fits one part as one PUT), else the multipart form, the MD5 of the parts' MD5s and
 * their count. A linked file gets the same one, so the ledger knows it as the same version either way.
 */
export async function uploadEtag(file: FileHandle, size: number): Promise<string> {
  if (size <= PART_BYTES) return (await md5Of(file, 0, size)).digest('hex');
  const digests: Buffer[] = [];
  for (let start = 0; start < size; start += PART_BYTES) {
    digests.push((await md5Of(file, start, Math.min(size, start + PART_BYTES))).digest());
  }
  return `${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${digests.length}`;
}

/** MD5 of bytes [start, end) of the open file, read in pieces (a part is never held whole). */
async function md5Of(file: FileHandle, start: number, end: number): Promise<Hash> {
  const hash = createHash('md5');
  const piece = Buffer.allocUnsafeSlow(1024 * 1024);
  for (let at = start; at < end; ) {
    const { bytesRead } = await file.read(piece, 0, Math.min(piece.length, end - at), at);
    if (bytesRead === 0) break;
    hash.update(piece.subarray(0, bytesRead));
    at += bytesRead;
  }
  return hash;
}

/** A file's upload ETag with the identity it was hashed at: reused only while the file is that one, unchanged. */
export interface FileEtag {
  etag: string;
  size: number;
  mtimeMs: number;
  ino: number;
}

/** Whether `stats` describe the file, unchanged, that `hashed` was computed from. */
export const sameFile = (hashed: FileEtag, stats: Stats): boolean =>
  hashed.size === stats.size && hashed.mtimeMs === stats.mtimeMs && hashed.ino === stats.ino;
