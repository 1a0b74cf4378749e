import { mkdtemp, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { threadId } from 'node:worker_threads';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { LOOPBACK } from '../../local/embedded-emulator.ts';
import { startEmulatorThread } from '../../local/emulator-thread.ts';
import { startLinkingEmulator } from '../../local/linking-emulator.ts';
import { startLocalStack } from '../../local/local-stack.ts';
import { resolveConfig } from '../../shared/config/config.ts';
import { defineDataset } from '../../shared/config/dataset.ts';
import { awsClients } from '../../shared/runtime/environment.ts';

/**
 * The local stack's embedded emulator runs on a worker thread of its own, so serving a file's upload and
 * its chunks' ranged GETs takes no time from the load workers' thread (issue 14).
 */
/** A dataset and no migrations of its own: the stack migrates only the ledger. */
const config = resolveConfig(
  {
    datasets: [
      defineDataset({
        name: 'things',
        format: 'csv',
        table: 'it_things',
        schema: z.object({ id: z.string() }),
      }),
    ],
  },
  'test config',
);

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

  it('stops once: a second stop resolves instead of waiting for an ended thread', async () => {
    const emulator = await startEmulatorThread({ port: 0 });
    await emulator.stop();
    // Before, the second stop waited for the ended thread's answer for ever (the test's timeout).
    await Promise.race([
      emulator.stop(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('second stop hung')), 5_000)),
    ]);
    await expect(fetch(`${emulator.endpoint}/health`)).rejects.toThrow();
  });

  // `run` starts the thread before loading its modules and hands it to the stack (cli/dropload.ts).
  it('a thread handed to the stack serves it, and stopping the stack stops it', async () => {
    const emulator = startEmulatorThread({ port: 0 });
    const stack = await startLocalStack({
      config,
      emulator,
      env: { ...process.env, AWS_ENDPOINT_URL: undefined },
    });
    const { endpoint } = await emulator;
    try {
      expect(stack.endpoint).toBe(endpoint);
      expect((await fetch(`${endpoint}/health`)).ok).toBe(true);
    } finally {
      await stack.stop();
    }
    await expect(fetch(`${endpoint}/health`)).rejects.toThrow();
  });

  it('a stack that fails to start stops the thread it was handed', async () => {
    const emulator = startEmulatorThread({ port: 0 });
    const env = {
      ...process.env,
      AWS_ENDPOINT_URL: undefined,
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none',
    };
    await expect(startLocalStack({ config, emulator, env })).rejects.toThrow(/ECONNREFUSED/);
    await expect(fetch(`${(await emulator).endpoint}/health`)).rejects.toThrow();
  });
});

/** `run` hosts the emulator on its main thread: its files are linked, so it serves only reads and queues. */
describe('the embedded emulator on the calling thread', () => {
  it('serves a linked file from this thread, is handed to the stack like a thread, and stops once', async () => {
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'dropload-here-')), 'a.csv');
    await writeFile(file, 'id\n1\n2\n');
    const emulator = startLinkingEmulator({ port: 0 });
    const stack = await startLocalStack({
      config,
      emulator,
      env: { ...process.env, AWS_ENDPOINT_URL: undefined },
    });
    const started = await emulator;
    try {
      expect(started.threadId).toBe(0);
      expect(stack.endpoint).toBe(started.endpoint);
      expect(started.address.address).toBe(LOOPBACK);
      await stack.link?.('incoming/a.csv', file);
      const got = await stack.s3.send(
        new GetObjectCommand({ Bucket: stack.bucket, Key: 'incoming/a.csv', Range: 'bytes=3-4' }),
      );
      expect(await got.Body?.transformToString()).toBe('1\n');
    } finally {
      await stack.stop();
    }
    await started.stop();
    await expect(fetch(`${started.endpoint}/health`)).rejects.toThrow();
  });
});
