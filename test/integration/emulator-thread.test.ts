import net from 'node:net';
import { threadId } from 'node:worker_threads';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { LOOPBACK } from '../../local/embedded-emulator.ts';
import { startEmulatorThread } from '../../local/emulator-thread.ts';
import { awsClients } from '../../shared/runtime/environment.ts';

/**
 * The local stack's embedded emulator runs on a worker thread of its own, so serving a file's upload and
 * its chunks' ranged GETs takes no time from the load workers' thread (issue 14).
 */
describe('the embedded emulator on its own thread', () => {
  it('serves S3 from a worker thread, on loopback only, and stops', async () => {
    const emulator = await startEmulatorThread({ port: 0 });
    try {
      expect(threadId).toBe(0);
      expect(emulator.threadId).toBeGreaterThan(0);
      expect(emulator.address.address).toBe(LOOPBACK);
      const { s3 } = awsClients({ AWS_ENDPOINT_URL: emulator.endpoint });
      await s3.send(new CreateBucketCommand({ Bucket: 'thread-test' }));
      await s3.send(new PutObjectCommand({ Bucket: 'thread-test', Key: 'a.csv', Body: 'id\n1\n2\n' }));
      const got = await s3.send(
        new GetObjectCommand({ Bucket: 'thread-test', Key: 'a.csv', Range: 'bytes=3-4' }),
      );
      expect(await got.Body?.transformToString()).toBe('1\n');
    } finally {
      await emulator.stop();
    }
    await expect(fetch(`${emulator.endpoint}/health`)).rejects.toThrow();
  });

  it('a port in use fails the start with the error code and port the CLI names', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, LOOPBACK, resolve));
    const { port } = busy.address() as net.AddressInfo;
    try {
      await expect(startEmulatorThread({ port })).rejects.toMatchObject({ code: 'EADDRINUSE', port });
    } finally {
      busy.close();
    }
  });
});
