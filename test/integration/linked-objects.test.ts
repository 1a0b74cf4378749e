import { randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, open, rename, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmulatorOnThread, startEmulatorThread } from '../../local/emulator-thread.ts';
import { startEtagThread } from '../../local/etag-thread.ts';
import { LinkedObjects } from '../../local/linked-objects.ts';
import { uploadFile } from '../../local/local-pipeline.ts';
import { PART_BYTES, uploadEtag } from '../../local/object-etag.ts';
import { awsClients } from '../../shared/runtime/environment.ts';

/**
 * `run` links the user's file into the embedded emulator instead of uploading a copy (issue 14): split
 * and load read it through the same S3 calls, so what they get must be what S3 would answer for the
 * uploaded file, byte for byte, ETag for ETag.
 */
const BUCKET = 'linked';
let emulator: EmulatorOnThread;
let s3: S3Client;
let dir: string;

beforeAll(async () => {
  emulator = await startEmulatorThread({ port: 0 });
  s3 = awsClients({ AWS_ENDPOINT_URL: emulator.endpoint }).s3;
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  dir = await mkdtemp(path.join(tmpdir(), 'dropload-linked-'));
});
afterAll(() => emulator.stop());

async function fileOf(name: string, bytes: Buffer): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, bytes);
  return file;
}

async function get(key: string, options: { range?: string; ifMatch?: string } = {}) {
  const res = await s3.send(
    new GetObjectCommand({ Bucket: BUCKET, Key: key, Range: options.range, IfMatch: options.ifMatch }),
  );
  return { res, bytes: Buffer.from((await res.Body?.transformToByteArray()) ?? []) };
}

const statusOf = (err: unknown) =>
  (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

describe('a local file linked into the embedded emulator', () => {
  it.each([
    ['empty', 0],
    ['small', 1000],
    ['exactly one part', PART_BYTES],
    ['one byte over a part', PART_BYTES + 1],
    ['three parts', 2 * PART_BYTES + 12345],
  ])('has the ETag and size its upload gets, and the same bytes (%s)', async (name, size) => {
    const file = await fileOf(`${name}.bin`, randomBytes(size));
    const linked = await emulator.link(BUCKET, `linked/${name}`, file);
    const uploaded = await uploadFile(s3, BUCKET, `uploaded/${name}`, file);
    expect(linked).toEqual({ etag: uploaded.etag, size });
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `linked/${name}` }));
    expect([head.ETag, head.ContentLength]).toEqual([`"${uploaded.etag}"`, size]);
    const [mine, theirs] = await Promise.all([get(`linked/${name}`), get(`uploaded/${name}`)]);
    expect(mine.bytes.equals(theirs.bytes)).toBe(true);
  });

  it('answers ranges, If-Match and bad ranges as S3 does', async () => {
    const file = await fileOf('ranges.csv', Buffer.from('id,name\n1,a\n2,b\n'));
    const { etag } = await emulator.link(BUCKET, 'in/ranges.csv', file);
    const key = 'in/ranges.csv';
    const part = await get(key, { range: 'bytes=8-11', ifMatch: `"${etag}"` });
    expect([part.bytes.toString(), part.res.ContentRange]).toEqual(['1,a\n', 'bytes 8-11/16']);
    expect((await get(key, { range: 'bytes=12-' })).bytes.toString()).toBe('2,b\n');
    expect((await get(key, { range: 'bytes=-4' })).bytes.toString()).toBe('2,b\n');
    expect((await get(key, { range: 'bytes=10-99' })).bytes.toString()).toBe('a\n2,b\n');
    await expect(get(key, { range: 'bytes=16-20' })).rejects.toMatchObject({ name: 'InvalidRange' });
    await expect(get(key, { ifMatch: '"0123"' })).rejects.toMatchObject({ name: 'PreconditionFailed' });
  });

  it('keeps serving the linked bytes when the file is replaced, and none once it is changed in place', async () => {
    const file = await fileOf('moving.csv', Buffer.from('id\n1\n'));
    const { etag } = await emulator.link(BUCKET, 'in/moving.csv', file);
    // Replaced by a rename (as editors save): the open file is still the linked version.
    await writeFile(`${file}.new`, 'id\n9\n');
    await rename(`${file}.new`, file);
    expect((await get('in/moving.csv', { ifMatch: `"${etag}"` })).bytes.toString()).toBe('id\n1\n');

    const inPlace = await fileOf('in-place.csv', Buffer.from('id\n1\n'));
    const linked = await emulator.link(BUCKET, 'in/in-place.csv', inPlace);
    await appendFile(inPlace, '2\n');
    const failures = await Promise.all([
      get('in/in-place.csv', { ifMatch: `"${linked.etag}"` }).catch(statusOf),
      s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'in/in-place.csv' })).catch(statusOf),
    ]);
    expect(failures).toEqual([412, 412]);
  });

  it('a PUT of a linked key replaces it, as in S3; a file that does not exist is not linked', async () => {
    const file = await fileOf('put.csv', Buffer.from('id\n1\n'));
    await emulator.link(BUCKET, 'in/put.csv', file);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'in/put.csv', Body: 'id\n7\n' }));
    expect((await get('in/put.csv')).bytes.toString()).toBe('id\n7\n');
    await expect(emulator.link(BUCKET, 'in/none.csv', path.join(dir, 'none.csv'))).rejects.toThrow(/ENOENT/);
  });
});

/** `run` works its files' ETags out on a thread of its own while it starts (local/etag-thread.ts). */
describe('ETags worked out beforehand', () => {
  const etagHere = async (file: string) => {
    const handle = await open(file, 'r');
    try {
      return await uploadEtag(handle, (await handle.stat()).size);
    } finally {
      await handle.close();
    }
  };

  it('the thread gives the ETag linking would, with the file it hashed; undefined for a missing file', async () => {
    const small = await fileOf('ahead-small.bin', randomBytes(1000));
    const parts = await fileOf('ahead-parts.bin', randomBytes(PART_BYTES + 17));
    const thread = startEtagThread();
    try {
      const [a, b, missing] = await Promise.all([
        thread.etagOf(small),
        thread.etagOf(parts),
        thread.etagOf(path.join(dir, 'no-such-file')),
      ]);
      const s = await stat(parts);
      expect(a?.etag).toBe(await etagHere(small));
      expect(b).toEqual({ etag: await etagHere(parts), size: s.size, mtimeMs: s.mtimeMs, ino: s.ino });
      expect(b?.etag).toMatch(/-2$/);
      expect(missing).toBeUndefined();
    } finally {
      await thread.stop();
    }
  });

  it('linking takes a known ETag only while the file is the one it was worked out from', async () => {
    const file = await fileOf('ahead-known.bin', randomBytes(1000));
    const s = await stat(file);
    const known = { etag: 'worked-out-ahead', size: s.size, mtimeMs: s.mtimeMs, ino: s.ino };
    const linked = new LinkedObjects();
    try {
      expect(await linked.link(BUCKET, 'known.bin', file, known)).toEqual({
        etag: 'worked-out-ahead',
        size: 1000,
      });
      // Another file (a rename over it), or the same one changed since: hashed again.
      const real = await etagHere(file);
      expect((await linked.link(BUCKET, 'known.bin', file, { ...known, ino: s.ino + 1 })).etag).toBe(real);
      expect((await linked.link(BUCKET, 'known.bin', file, { ...known, mtimeMs: s.mtimeMs - 1 })).etag).toBe(
        real,
      );
    } finally {
      await linked.close();
    }
  });
});
