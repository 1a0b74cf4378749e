import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { expect } from 'vitest';
import { ChunkMessage } from '../../shared/aws/messages.ts';
import { loadChunk } from '../../shared/load/load-service.ts';
import type { PipelineDeps } from '../../shared/pipeline/services.ts';
import { splitObject } from '../../shared/split/split-service.ts';
import type { TestPipeline } from './pipeline.ts';

/*
 * A file split and loaded by hand through `parked`: deps whose chunk queue no worker reads, so a test
 * runs each chunk (and each retry of waiting rows, whose messages are never taken) itself.
 */

/** Uploads `body` under `key` and splits that version into the parked queue; returns its file and chunks. */
export async function splitParked(
  p: TestPipeline,
  parked: PipelineDeps,
  key: string,
  body: string | Uint8Array,
): Promise<{ fileId: number; chunks: ChunkMessage[] }> {
  const put = await p.stack.s3.send(new PutObjectCommand({ Bucket: p.stack.bucket, Key: key, Body: body }));
  const outcome = await splitObject(parked, {
    bucket: p.stack.bucket,
    key,
    etag: put.ETag?.replace(/"/g, ''),
  });
  expect(outcome.result).toBe('split');
  const chunks: ChunkMessage[] = [];
  while (chunks.length < outcome.chunks) {
    const res = await p.stack.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: parked.chunkQueueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      }),
    );
    for (const m of res.Messages ?? []) {
      await p.stack.sqs.send(
        new DeleteMessageCommand({ QueueUrl: parked.chunkQueueUrl, ReceiptHandle: m.ReceiptHandle }),
      );
      const body = JSON.parse(m.Body ?? '{}');
      // A retry of waiting rows is the test's to run, not a chunk.
      if (body.kind === 'orphans') continue;
      const chunk = ChunkMessage.parse(body);
      if (chunk.fileId === outcome.fileId) chunks.push(chunk);
    }
  }
  return { fileId: outcome.fileId, chunks: chunks.sort((a, b) => a.index - b.index) };
}

/** Splits the file as `splitParked` does and loads its chunks in order; returns the file's id. */
export async function loadParked(
  p: TestPipeline,
  parked: PipelineDeps,
  key: string,
  body: string,
): Promise<number> {
  const { fileId, chunks } = await splitParked(p, parked, key, body);
  for (const chunk of chunks) await loadChunk(parked, chunk);
  return fileId;
}
