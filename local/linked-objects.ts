import type { Stats } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { parse as parseRange } from 'range-parser';
import { type FileEtag, sameFile, uploadEtag } from './object-etag.ts';

/** What linking a file made: the object's ETag and size, as an upload of it would have. */
export interface LinkedRef {
  etag: string;
  size: number;
}

interface Linked extends LinkedRef {
  file: FileHandle;
  /** The file as it was hashed: a later change in place means these bytes are gone. */
  mtimeMs: number;
  lastModified: Date;
}

/** Query parameters a GET or HEAD of a linked object may carry; anything else is not served from the file. */
const SERVED_QUERY = new Set(['x-id']);

const sameVersion = (a: Stats, b: Linked) => a.size === b.size && a.mtimeMs === b.mtimeMs;

/**
 * Objects of the embedded emulator whose bytes are a local file, read where it lies: `run` links the
 * user's file instead of copying it into the emulator (fauxqs keeps an object's every byte in memory,
 * and its parts once more while it joins them). HEAD and GET of a linked key, ranges and If-Match
 * included, are answered here from the file, as S3 answers them; every other request (and every other
 * key) goes to fauxqs, and a PUT or DELETE of a linked key ends its link first. The file is held open:
 * replaced by a rename, it still serves the bytes that were linked; changed in place, the version is gone
 * and every request for it fails as S3 fails a GET pinned to an overwritten ETag (412).
 */
export class LinkedObjects {
  private readonly linked = new Map<string, Linked>();

  /**
   * Links `path` as bucket/key, with the ETag an upload would give it: `known`, when it was worked out
   * beforehand (etag-thread.ts) from this very file, unchanged since; else hashed here.
   */
  async link(bucket: string, key: string, path: string, known?: FileEtag): Promise<LinkedRef> {
    const file = await open(path, 'r');
    try {
      const before = await file.stat();
      const etag = known && sameFile(known, before) ? known.etag : await uploadEtag(file, before.size);
      const after = await file.stat();
      if (after.size !== before.size || after.mtimeMs !== before.mtimeMs) {
        throw new Error(`${path} changed while it was read: run it again once it is written`);
      }
      await this.unlink(`${bucket}/${key}`);
      this.linked.set(`${bucket}/${key}`, {
        file,
        etag,
        size: before.size,
        mtimeMs: before.mtimeMs,
        lastModified: new Date(),
      });
      return { etag, size: before.size };
    } catch (err) {
      await file.close();
      throw err;
    }
  }

  /** Answers the request if it is for a linked object; false: it is fauxqs's. */
  serve = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const id = decodeURIComponent(url.pathname.slice(1));
    const object = this.linked.get(id);
    if (!object) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      void this.unlink(id);
      return false;
    }
    if ([...url.searchParams.keys()].some((k) => !SERVED_QUERY.has(k))) {
      sendError(
        res,
        501,
        'NotImplemented',
        `only plain GET and HEAD are served from a linked file (${url.search})`,
      );
      return true;
    }
    this.answer(req, res, object, id).catch((err: unknown) => res.destroy(err as Error));
    return true;
  };

  private async answer(req: IncomingMessage, res: ServerResponse, object: Linked, id: string) {
    const etag = `"${object.etag}"`;
    const ifMatch = req.headers['if-match'];
    if (!sameVersion(await object.file.stat(), object) || (ifMatch && ifMatch !== etag && ifMatch !== '*')) {
      return sendError(res, 412, 'PreconditionFailed', `s3://${id} is not the version asked for`);
    }
    let start = 0;
    let end = object.size - 1;
    const range = req.headers.range;
    if (range) {
      const parsed = parseRange(object.size, range);
      const [first] = parsed.ranges;
      if (parsed.code !== 0 || parsed.type !== 'bytes' || parsed.ranges.length !== 1 || !first) {
        res.setHeader('content-range', `bytes */${object.size}`);
        return sendError(res, 416, 'InvalidRange', 'The requested range is not satisfiable');
      }
      ({ start, end } = first);
      res.statusCode = 206;
      res.setHeader('content-range', `bytes ${start}-${end}/${object.size}`);
    }
    res.setHeader('etag', etag);
    res.setHeader('last-modified', object.lastModified.toUTCString());
    res.setHeader('content-type', 'application/octet-stream');
    res.setHeader('accept-ranges', 'bytes');
    res.setHeader('content-length', Math.max(0, end - start + 1));
    if (req.method === 'HEAD' || end < start) return void res.end();
    await pipeline(bytesOf(object, start, end + 1), res);
  }

  private async unlink(id: string): Promise<void> {
    const object = this.linked.get(id);
    this.linked.delete(id);
    await object?.file.close();
  }

  async close(): Promise<void> {
    await Promise.all([...this.linked.keys()].map((id) => this.unlink(id)));
  }
}

/** Bytes the response sends at a time: a reader never makes the emulator hold more of the file. */
const PIECE_BYTES = 256 * 1024;

/**
 * Bytes [start, end) of the linked file, read where they lie (positioned reads: responses in parallel do
 * not share a file position). If the file changed in place while they were read, the response fails
 * before its last piece: the reader sees a broken response (and retries), never a mix of two versions.
 */
async function* bytesOf(object: Linked, start: number, end: number): AsyncGenerator<Buffer> {
  let held: Buffer | undefined;
  for (let at = start; at < end; ) {
    const piece = Buffer.allocUnsafe(Math.min(PIECE_BYTES, end - at));
    const { bytesRead } = await object.file.read(piece, 0, piece.length, at);
    if (bytesRead === 0) throw new Error('the linked file ended early: it changed while it was read');
    if (held) yield held;
    held = piece.subarray(0, bytesRead);
    at += bytesRead;
  }
  if (!sameVersion(await object.file.stat(), object))
    throw new Error('the linked file changed while it was read');
  if (held) yield held;
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/xml');
  const text = message.replace(/[<>&]/g, (c) => `&#${c.charCodeAt(0)};`);
  res.end(
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${text}</Message></Error>`,
  );
}
